"""One predictor for every format: a run directory / .keras file, a SavedModel, a .tflite file.

Examples:
    >>> from unet_tf.predictors import Predictor
    >>> predictor = Predictor.from_path("pets-export/model_int8.tflite")  # doctest: +SKIP
    >>> mask = predictor.predict("cat.jpg")  # doctest: +SKIP
"""

# each format's predictor registers itself with Predictor.from_path when imported
from unet_tf.predictors import keras_model, onnx, savedmodel, tflite  # noqa: F401
from unet_tf.predictors.base import DEFAULT_OVERLAP, Predictor, load_predictor
from unet_tf.predictors.loading import SAVED_MODEL_DIR

__all__ = ["DEFAULT_OVERLAP", "SAVED_MODEL_DIR", "Predictor", "load_predictor"]
