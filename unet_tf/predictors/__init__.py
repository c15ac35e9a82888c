"""One predictor for every format: a run directory / .keras file, a SavedModel, a .tflite file.

Examples:
    >>> from unet_tf.predictors import Predictor
    >>> predictor = Predictor.from_path("pets-export/model_int8.tflite")  # doctest: +SKIP
    >>> mask = predictor.predict("cat.jpg")  # doctest: +SKIP
"""

from unet_tf.predictors.base import DEFAULT_OVERLAP, Predictor
from unet_tf.predictors.loading import SAVED_MODEL_DIR, load_predictor

__all__ = ["DEFAULT_OVERLAP", "SAVED_MODEL_DIR", "Predictor", "load_predictor"]
