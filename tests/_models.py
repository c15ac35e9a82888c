"""A tiny model trained on the embedded synthetic data and its export, built once per test
session and shared by the export, predict and blur tests (about 40 s on 2 cores). It needs
no downloaded or shared data, so these tests run in every clone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_CACHE: dict[str, tuple[Path, Path, dict]] = {}

IMAGE_SIZE = (64, 64)
CLASS_NAMES = ("background", "disc", "square", "triangle")


def trained_export(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(run directory, export directory, export report) of the shared tiny model."""
    if "synthetic" not in _CACHE:
        from unet_tf import DataConfig, ExportConfig, TrainConfig, export, model_preset, train

        base = tmp_path_factory.mktemp("synthetic_export")
        data = DataConfig(num_examples=96, image_size=IMAGE_SIZE, batch_size=8)
        run = train(model_preset("tiny", depth=3, base_filters=8), data,
                    TrainConfig(epochs=6, learning_rate=3e-3, verbose=0), base / "run")
        report = export(run, base / "export", ExportConfig(parity_images=16,
                                                           representative_images=32))
        _CACHE["synthetic"] = (run, base / "export", report)
    return _CACHE["synthetic"]


def scenes(count: int = 2, size: int = 96, seed: int = 7) -> list[np.ndarray]:
    """Synthetic scenes the model never saw, uint8 RGB [size, size, 3]."""
    from unet_tf.data.synthetic import make_arrays

    images, _ = make_arrays(count, seed=seed, size=size)
    return [np.asarray(image, np.uint8) for image in images]


def scene_files(folder: Path, count: int = 2, size: int = 96) -> list[Path]:
    """``scenes`` written as PNG files into ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(scenes(count, size)):
        path = folder / f"scene{i}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.asarray(a) == np.asarray(b)))
