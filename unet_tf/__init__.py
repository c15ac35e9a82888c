"""unet_tf: U-Net semantic segmentation with Keras 3 and TensorFlow.

Example:
    >>> import unet_tf
    >>> model = unet_tf.build_unet(unet_tf.model_preset("tiny", num_classes=2))
    >>> model.name
    'unet'
"""

# The functions train, evaluate and export share their names with the modules that define
# them. Importing them here, eagerly, binds the package attributes to the functions once and
# for all: Python sets a package attribute to a submodule only when the submodule is first
# loaded, which happens above these lines (a lazy import would let a later
# ``from unet_tf.train import ...`` shadow the function with the module).
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
from unet_tf.data.weightmap import unet_weight_map, with_weight_map
from unet_tf.evaluate import evaluate
from unet_tf.export import ParityThresholds, export
from unet_tf.losses import SegmentationLoss
from unet_tf.metrics import PixelAccuracy, segmentation_metrics
from unet_tf.model import build_unet, check_input_size
from unet_tf.predict import Predictor
from unet_tf.train import compile_model, train

__version__ = "0.1.0"

__all__ = [
    "IGNORE_LABEL",
    "MODEL_PRESETS",
    "AugmentConfig",
    "DataConfig",
    "DataError",
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
    "load_run",
    "make_dataset",
    "model_preset",
    "preprocess_image",
    "segmentation_metrics",
    "train",
    "unet_weight_map",
    "with_weight_map",
]
