"""One model trained on the Oxford pets sample and its export, shared by the export,
predict and blur tests and built once per test session (about 35 s on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import data_dir

_CACHE: dict[str, tuple[Path, Path, dict]] = {}

IMAGE_SIZE = (64, 64)


def pets_export(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(run directory, export directory, export report); skips without the real data."""
    root = data_dir("oxford_pets_sample")
    if "pets" not in _CACHE:
        from unet_tf import DataConfig, TrainConfig, export, model_preset, train

        base = tmp_path_factory.mktemp("pets_export")
        data = DataConfig(spec=f"oxford-pets:{root}", image_size=IMAGE_SIZE, batch_size=16)
        run = train(model_preset("tiny", depth=3, base_filters=8), data,
                    TrainConfig(epochs=8, verbose=0), base / "run")
        report = export(run, base / "export", quantize=("none", "fp16", "int8"),
                        parity_images=40, representative_images=60)
        _CACHE["pets"] = (run, base / "export", report)
    return _CACHE["pets"]


def pets_photos(count: int = 2) -> list[Path]:
    """The last ``count`` photos of the sample, by name (JPEGs of various sizes)."""
    images = sorted((data_dir("oxford_pets_sample") / "images").glob("*.jpg"))
    return images[-count:]


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.asarray(a) == np.asarray(b)))
