"""Which model format a path holds: run directory, .keras, SavedModel, .tflite, .onnx.

:func:`locate` only reads the path (no model is loaded, no predictor imported);
:meth:`unet_tf.Predictor.from_path` opens what it finds with the format's predictor.
"""

from __future__ import annotations

from pathlib import Path

from unet_tf.checkpoint import MODEL_FILE

SAVED_MODEL_DIR = "saved_model"  # SavedModel folder inside an export directory


def locate(path: str | Path) -> tuple[str, Path]:
    """(format, the path to open): "tflite", "onnx", "keras" or "savedmodel".

    ``path`` may be a shipped model's name; an export directory gives its ``saved_model/``.

    Raises:
        FileNotFoundError: nothing at ``path`` (and no shipped model of that name).
        ValueError: a folder without a model, or a file of another format.

    Examples:
        >>> locate("pets-export/model_int8.tflite")  # doctest: +SKIP
        ('tflite', PosixPath('pets-export/model_int8.tflite'))
    """
    from unet_tf.models.registry import resolve

    path = resolve(path)  # a shipped model's name, or a path
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; expected a run directory, a .keras file, a SavedModel "
            "folder, an export directory or a .tflite file"
        )
    if path.is_file() and path.suffix in (".tflite", ".onnx", ".keras"):
        return path.suffix[1:], path
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            return "savedmodel", path
        if (path / SAVED_MODEL_DIR / "saved_model.pb").exists():
            return "savedmodel", path / SAVED_MODEL_DIR
        if (path / MODEL_FILE).exists():
            return "keras", path
        contents = sorted(p.name for p in path.iterdir())[:10]
        raise ValueError(
            f"{path} holds neither {MODEL_FILE}, saved_model.pb nor {SAVED_MODEL_DIR}/ "
            f"(found {contents}); pass a run directory, an export directory or a model file"
        )
    raise ValueError(
        f"{path}: unknown model format {path.suffix!r}; use a .keras, .tflite or .onnx file, "
        "a run directory, a SavedModel folder or a shipped model's name"
    )
