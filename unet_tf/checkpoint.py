"""Run directories: a trained model plus the config.json that lets anything rebuild or serve it.

A run directory holds ``model.keras`` and ``config.json`` with the model config, class
names, input size and preprocessing. ``model.keras`` is saved without its training
configuration, so it loads with plain ``keras.saving.load_model`` in any process (no
``unet_tf`` import, no custom objects); ``compile`` it to fine-tune. A ``.keras`` file is
served or scored only with the ``config.json`` of its run beside it: class names and input
size are never guessed.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
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

    @property
    def native(self) -> bool:
        """True when the run was trained at native resolution (images are not resized)."""
        return self.preprocessing.get("resolution") == "native"

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
        return atomic_write_text(Path(directory) / CONFIG_FILE,
                                 json.dumps(self.to_dict(), indent=2) + "\n")

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
    """Return (model.keras path, run directory) for a run directory, a .keras file or the
    name of a shipped model (:func:`unet_tf.models.resolve`)."""
    from unet_tf.models.registry import resolve

    path = resolve(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; expected a run directory or a .keras "
                                "file")
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

    Examples:
        >>> model, info = load_run("saved_models/synthetic")  # doctest: +SKIP
    """
    import keras

    model_path, run_dir = resolve_model_path(path)
    if not (run_dir / CONFIG_FILE).exists():
        raise ValueError(
            f"{model_path}: no {CONFIG_FILE} beside it, so its class names, input size and "
            "preprocessing are unknown; put the config.json of its run in "
            f"{run_dir} (plain Keras loads the file itself: keras.saving.load_model)"
        )
    info = RunInfo.load(run_dir)
    if not zipfile.is_zipfile(model_path):  # Keras would call it "File not found"
        raise ValueError(
            f"{model_path} exists ({model_path.stat().st_size} bytes) but Keras cannot load "
            "it: it is not a complete .keras (zip) file, probably truncated or corrupt (an "
            "interrupted copy or download); copy it again or train it again"
        )
    try:
        # safe_mode stays on: a .keras file holding Python code (a Lambda layer) is refused
        model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    except Exception as exc:  # bad entries or JSON, unknown layers, Lambda refusals
        raise ValueError(f"{model_path}: Keras cannot load this model ({exc})") from exc
    return model, info


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically: a temporary file beside it, then a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_run_dir(out: str | Path, settings: dict[str, Any]) -> str | None:
    """Check that training may write into ``out``; return the status of a run to resume.

    A file, a finished run (not silently replaced) and an unfinished run trained with other
    settings are refused; an interrupted, diverged or killed run ("running") is resumed.

    Examples:
        >>> check_run_dir("/nonexistent/run", {}) is None
        True
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the run (it is created "
                         "if missing)")
    path = out / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable ({exc}); delete {out} or give another --out") from exc
    # a config.json without status (RunInfo.save, not train): finished if it has a model
    status = saved.get("status") or ("finished" if (out / MODEL_FILE).exists() else "running")
    if status == "finished":
        raise ValueError(f"{out} holds a finished run ({MODEL_FILE}, {CONFIG_FILE}); give "
                         "another output folder (--out) or delete this one to train again")
    before = saved.get("settings")
    now = json.loads(json.dumps(settings))
    if before is not None and before != now:
        changed = [f"{part}.{key}: {before.get(part, {}).get(key)!r} -> {value!r}"
                   for part, values in now.items() for key, value in values.items()
                   if before.get(part, {}).get(key) != value]
        raise ValueError(f"{out} holds an unfinished ({status}) run with other settings "
                         f"({'; '.join(changed)}); resume it with the same command, or give "
                         "another --out")
    return status


def strip_training_config(path: Path) -> None:
    """Re-save a checkpoint without optimizer and loss, so plain Keras loads it anywhere.

    ``ModelCheckpoint`` saves the compiled model, whose loss (``SegmentationLoss``) only
    loads where ``unet_tf`` is imported; the released ``model.keras`` holds the network
    alone (fine-tuning compiles it again).
    """
    if not path.exists():
        return
    import keras

    from unet_tf.distributed import synchronize_batch_norm
    from unet_tf.precision import as_float32

    model = keras.saving.load_model(path, compile=False)
    synchronize_batch_norm(model, False)  # plain layers, loadable by any Keras backend
    model = as_float32(model)  # a model trained in mixed precision is served in float32
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    tmp.replace(path)
