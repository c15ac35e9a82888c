"""unet_tf: U-Net semantic and instance segmentation with Keras 3 and TensorFlow.

``import unet_tf`` is light: TensorFlow is imported the first time a name that needs it is
used (``unet_tf.build_unet``, ``unet_tf.train``, ...), so the command line's ``--help`` and
``unet_tf.config`` never pay for it.

Examples:
    >>> import unet_tf
    >>> model = unet_tf.build_unet(unet_tf.model_preset("tiny", num_classes=2))
    >>> model.name
    'unet'
"""

from __future__ import annotations

import importlib
from typing import Any

from unet_tf.config import (
    DEFAULT_PRESET,
    IGNORE_LABEL,
    MODEL_PRESETS,
    AugmentConfig,
    DataConfig,
    ExportConfig,
    ModelConfig,
    ParityThresholds,
    TrainConfig,
    model_preset,
)

__version__ = "0.2.0"

# Public name -> module defining it, imported on first use (PEP 562).
_LAZY = {
    "RunInfo": "unet_tf.checkpoint",
    "load_run": "unet_tf.checkpoint",
    "DataError": "unet_tf.data",
    "make_dataset": "unet_tf.data",
    "preprocess_image": "unet_tf.data",
    "unet_weight_map": "unet_tf.data.weightmap",
    "with_weight_map": "unet_tf.data.weightmap",
    "evaluate": "unet_tf.evaluation",
    "export": "unet_tf.deploy",
    "SegmentationLoss": "unet_tf.losses",
    "PixelAccuracy": "unet_tf.metrics",
    "segmentation_metrics": "unet_tf.metrics",
    "build_unet": "unet_tf.model",
    "load_model": "unet_tf.models",
    "shipped_models": "unet_tf.models",
    "tune": "unet_tf.tuning",
    "check_input_size": "unet_tf.model",
    "replace_head": "unet_tf.model",
    "Predictor": "unet_tf.predictors",
    "compile_model": "unet_tf.training",
    "train": "unet_tf.training",
}

__all__ = [
    "AugmentConfig",
    "DataConfig",
    "DataError",
    "ExportConfig",
    "IGNORE_LABEL",
    "DEFAULT_PRESET",
    "MODEL_PRESETS",
    "ModelConfig",
    "ParityThresholds",
    "PixelAccuracy",
    "Predictor",
    "RunInfo",
    "SegmentationLoss",
    "TrainConfig",
    "__version__",
    "build_unet",
    "check_input_size",
    "compile_model",
    "evaluate",
    "export",
    "load_model",
    "load_run",
    "make_dataset",
    "model_preset",
    "preprocess_image",
    "replace_head",
    "segmentation_metrics",
    "shipped_models",
    "train",
    "tune",
    "unet_weight_map",
    "with_weight_map",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from unet_tf.quiet import import_tensorflow

        import_tensorflow()  # without TensorFlow's C++ start-up lines (unet_tf.quiet)
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'unet_tf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
