"""A run directory or .keras file, run through the same functions as the SavedModel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from unet_tf.instances.postprocess import stored_postprocess
from unet_tf.predictors.base import Predictor
from unet_tf.serving import serving_function, serving_signature, tile_function


class KerasPredictor(Predictor, kind="keras"):
    """A Keras model with its RunInfo; ``tta`` averages over flips (and rotations).

    ``tta=None`` takes the test-time augmentation stored with the run's post-processing
    (``unet-tf tune``; none when nothing is stored).
    """

    format = "keras"

    def __init__(self, path: Path, model=None, info=None, tta: bool | str | None = None):
        if model is None:
            from unet_tf.checkpoint import load_run

            model, info = load_run(path)
        super().__init__(path, info.to_dict())
        if tta is None:
            tta = stored_postprocess(self.config).get("tta") or False
        self.tta = tta
        self.model = model
        channels, multiple = info.model.input_channels, info.model.size_multiple
        size = None if self.native else info.input_size
        self._serve = tf.function(serving_function(model, size, channels, multiple, tta),
                                  input_signature=[serving_signature()])
        self._tiles = tf.function(tile_function(model, channels, multiple, tta),
                                  input_signature=[serving_signature()])

    @classmethod
    def from_model(cls, model, info, path: str | Path = "<memory>",
                   tta: bool | str | None = None) -> KerasPredictor:
        """A predictor for a Keras model already in memory and its RunInfo."""
        return cls(Path(path), model=model, info=info, tta=tta)

    def _segment(self, images):
        out = self._serve(tf.constant(images))
        return out["mask"], out["probabilities"]

    def _segment_tiles(self, tiles):
        return np.asarray(self._tiles(tf.constant(tiles))["probabilities"])

