"""The SavedModel: serving signatures around the model, for TensorFlow Serving or plain TF.

``serving_default`` takes uint8 images of any size and returns the mask and probabilities
at that size, through :func:`unet_tf.serving.serving_function` (the training
preprocessing, the model, the logits resized back). ``segment_tiles`` segments images at
their own pixel size (tiled inference, native-resolution runs). Loading the result needs
TensorFlow only.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import tensorflow as tf

from unet_tf.checkpoint import RunInfo
from unet_tf.serving import (
    TILE_SIGNATURE,
    serving_function,
    serving_signature,
    tile_function,
)


@contextlib.contextmanager
def quiet_tensorflow_logs():
    """Hide TensorFlow's INFO lines ("Assets written to ...") while saving, then restore."""
    tf_logger = tf.get_logger()
    level = tf_logger.level
    tf_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        tf_logger.setLevel(level)


def save_saved_model(model, info: RunInfo, path: str | Path) -> Path:
    """Write a SavedModel whose ``serving_default`` segments uint8 images of any size.

    Args:
        model: Keras model returning logits.
        info: the run's config (input size, channels, depth, resolution policy).
        path: folder to create.

    Returns:
        ``path``. Load it anywhere with ``tf.saved_model.load(path)
        .signatures["serving_default"](images=uint8_batch)`` -> {"mask", "probabilities"}.

    Examples:
        >>> save_saved_model(model, info, "export/saved_model")  # doctest: +SKIP
    """
    import keras

    channels, multiple = info.model.input_channels, info.model.size_multiple
    size = None if info.native else info.input_size
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serving_function(model, size, channels, multiple),
                         input_signature=[serving_signature()])
    archive.add_endpoint(TILE_SIGNATURE, tile_function(model, channels, multiple),
                         input_signature=[serving_signature()])
    with quiet_tensorflow_logs():
        archive.write_out(str(path), verbose=False)
    return Path(path)
