"""unet_tf: U-Net semantic segmentation with Keras 3 and TensorFlow.

Public names are imported on first use, so ``import unet_tf`` (and ``unet-tf --help``) stays
fast and does not load TensorFlow until a model or dataset is needed.

Example:
    >>> import unet_tf
    >>> model = unet_tf.build_unet(unet_tf.model_preset("tiny", num_classes=2))
    >>> model.name
    'unet'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "IGNORE_LABEL": "unet_tf.config",
    "MODEL_PRESETS": "unet_tf.config",
    "AugmentConfig": "unet_tf.config",
    "DataConfig": "unet_tf.config",
    "ModelConfig": "unet_tf.config",
    "TrainConfig": "unet_tf.config",
    "model_preset": "unet_tf.config",
    "DataError": "unet_tf.data",
    "make_dataset": "unet_tf.data",
    "preprocess_image": "unet_tf.data",
    "unet_weight_map": "unet_tf.data.weightmap",
    "with_weight_map": "unet_tf.data.weightmap",
    "build_unet": "unet_tf.model",
    "check_input_size": "unet_tf.model",
    "SegmentationLoss": "unet_tf.losses",
    "PixelAccuracy": "unet_tf.metrics",
    "segmentation_metrics": "unet_tf.metrics",
    "compile_model": "unet_tf.train",
    "train": "unet_tf.train",
    "evaluate": "unet_tf.evaluate",
    "RunInfo": "unet_tf.checkpoint",
    "load_run": "unet_tf.checkpoint",
    "export": "unet_tf.export",
    "ParityThresholds": "unet_tf.export",
    "Predictor": "unet_tf.predict",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'unet_tf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and IDEs
    from unet_tf.checkpoint import RunInfo, load_run  # noqa: F401
    from unet_tf.config import (  # noqa: F401
        IGNORE_LABEL,
        MODEL_PRESETS,
        AugmentConfig,
        DataConfig,
        ModelConfig,
        TrainConfig,
        model_preset,
    )
    from unet_tf.data import DataError, make_dataset, preprocess_image  # noqa: F401
    from unet_tf.data.weightmap import unet_weight_map, with_weight_map  # noqa: F401
    from unet_tf.evaluate import evaluate  # noqa: F401
    from unet_tf.export import ParityThresholds, export  # noqa: F401
    from unet_tf.losses import SegmentationLoss  # noqa: F401
    from unet_tf.metrics import PixelAccuracy, segmentation_metrics  # noqa: F401
    from unet_tf.model import build_unet, check_input_size  # noqa: F401
    from unet_tf.predict import Predictor  # noqa: F401
    from unet_tf.train import compile_model, train  # noqa: F401
