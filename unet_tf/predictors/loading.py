"""Pick the predictor class for a path: run directory, .keras, SavedModel, .tflite, .onnx."""

from __future__ import annotations

from pathlib import Path

from unet_tf.checkpoint import MODEL_FILE
from unet_tf.predictors.base import Predictor

SAVED_MODEL_DIR = "saved_model"  # SavedModel folder inside an export directory


def load_predictor(path: str | Path, num_threads: int | None = None, trusted: bool = False,
                   **options) -> Predictor:
    """See :meth:`unet_tf.Predictor.from_path`."""
    from unet_tf.models.registry import resolve

    path = resolve(path)  # a shipped model's name, or a path
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; expected a run directory, a .keras file, a SavedModel "
            "folder, an export directory or a .tflite file"
        )
    if path.suffix == ".tflite" and path.is_file():
        from unet_tf.predictors.tflite import TFLitePredictor

        return TFLitePredictor(path, num_threads=num_threads)
    if path.suffix == ".onnx" and path.is_file():
        from unet_tf.predictors.onnx import OnnxPredictor

        return OnnxPredictor(path, num_threads=num_threads, **options)
    if path.suffix == ".keras" and path.is_file():
        from unet_tf.predictors.keras_model import KerasPredictor

        return KerasPredictor(path, **options)
    if path.is_dir():
        from unet_tf.predictors.keras_model import KerasPredictor
        from unet_tf.predictors.savedmodel import SavedModelPredictor

        if (path / "saved_model.pb").exists():
            return SavedModelPredictor(path, trusted=trusted, **options)
        if (path / SAVED_MODEL_DIR / "saved_model.pb").exists():
            return SavedModelPredictor(path / SAVED_MODEL_DIR, trusted=trusted, **options)
        if (path / MODEL_FILE).exists():
            return KerasPredictor(path, **options)
        contents = sorted(p.name for p in path.iterdir())[:10]
        raise ValueError(
            f"{path} holds neither {MODEL_FILE}, saved_model.pb nor {SAVED_MODEL_DIR}/ "
            f"(found {contents}); pass a run directory, an export directory or a model file"
        )
    raise ValueError(
        f"{path}: unknown model format {path.suffix!r}; use a .keras, .tflite or .onnx file, "
        "a run directory, a SavedModel folder or a shipped model's name"
    )
