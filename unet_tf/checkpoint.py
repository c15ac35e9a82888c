"""Run directories: a trained model plus the config.json that lets anything rebuild or serve it.

A run directory holds ``model.keras`` and ``config.json`` with the model config, class
names, input size and preprocessing. A ``.keras`` file on its own loads too; then the class
names and input size come from a ``config.json`` beside it when there is one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unet_tf.config import IGNORE_LABEL, ModelConfig

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
FORMAT = "unet_tf/1"


@dataclass
class RunInfo:
    """What serving a model needs to know, read from a run's config.json."""

    model: ModelConfig
    class_names: tuple[str, ...]
    input_size: tuple[int, int]
    preprocessing: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "model": self.model.to_dict(),
            "class_names": list(self.class_names),
            "input_size": list(self.input_size),
            "input_channels": self.model.input_channels,
            "preprocessing": self.preprocessing,
            "ignore_label": IGNORE_LABEL,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunInfo:
        known = {"format", "model", "class_names", "input_size", "input_channels",
                 "preprocessing", "ignore_label"}
        return cls(
            model=ModelConfig.from_dict(values["model"]),
            class_names=tuple(values["class_names"]),
            input_size=tuple(values["input_size"]),
            preprocessing=dict(values["preprocessing"]),
            extra={k: v for k, v in values.items() if k not in known},
        )

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / CONFIG_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> RunInfo:
        path = Path(path)
        if path.is_dir():
            path = path / CONFIG_FILE
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"{path} not found: a run directory needs the config.json written by training"
            ) from exc
        except (KeyError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a unet_tf config.json ({exc})") from exc


def resolve_model_path(path: str | Path) -> tuple[Path, Path]:
    """Return (model.keras path, run directory) for a run directory or a .keras file."""
    path = Path(path)
    if path.is_dir():
        model_path = path / MODEL_FILE
        if not model_path.exists():
            raise FileNotFoundError(f"{path} is a folder without {MODEL_FILE}")
        return model_path, path
    if path.suffix != ".keras":
        raise ValueError(f"{path}: expected a run directory or a .keras file")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    return path, path.parent


def load_run(path: str | Path):
    """Load a trained Keras model and its RunInfo from a run directory or .keras file.

    Example:
        >>> model, info = load_run("saved_models/synthetic")  # doctest: +SKIP
    """
    import keras

    import unet_tf.losses  # noqa: F401  (registers the custom loss and metric for loading)
    import unet_tf.metrics  # noqa: F401

    model_path, run_dir = resolve_model_path(path)
    model = keras.saving.load_model(model_path, compile=False)
    if (run_dir / CONFIG_FILE).exists():
        info = RunInfo.load(run_dir)
    else:  # a bare .keras file: infer what the model itself says
        from unet_tf.data.preprocess import PREPROCESSING

        shape = model.input_shape
        info = RunInfo(
            model=ModelConfig(num_classes=model.output_shape[-1], input_channels=shape[-1]),
            class_names=tuple(f"class_{i}" for i in range(model.output_shape[-1])),
            input_size=(256, 256),
            preprocessing=dict(PREPROCESSING),
        )
    return model, info
