"""unet_tf: U-Net semantic segmentation with Keras 3 and TensorFlow.

Example:
    >>> import unet_tf
    >>> model = unet_tf.build_unet(unet_tf.model_preset("tiny", num_classes=2))
    >>> model.name
    'unet'
"""

from unet_tf.checkpoint import RunInfo, load_run
from unet_tf.config import (
    IGNORE_LABEL,
    MODEL_PRESETS,
    AugmentConfig,
    DataConfig,
    ModelConfig,
    TrainConfig,
    model_preset,
)
from unet_tf.data import DataError, make_dataset, preprocess_image
from unet_tf.evaluate import evaluate
from unet_tf.losses import SegmentationLoss
from unet_tf.metrics import PixelAccuracy, segmentation_metrics
from unet_tf.model import build_unet, check_input_size
from unet_tf.train import compile_model, train

__version__ = "0.1.0"

__all__ = [
    "IGNORE_LABEL",
    "MODEL_PRESETS",
    "AugmentConfig",
    "DataConfig",
    "DataError",
    "ModelConfig",
    "PixelAccuracy",
    "RunInfo",
    "SegmentationLoss",
    "TrainConfig",
    "__version__",
    "build_unet",
    "check_input_size",
    "compile_model",
    "evaluate",
    "load_run",
    "make_dataset",
    "model_preset",
    "preprocess_image",
    "segmentation_metrics",
    "train",
]
