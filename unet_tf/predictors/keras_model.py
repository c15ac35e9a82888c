"""A run directory or .keras file, run through the same functions as the SavedModel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from unet_tf.predictors.base import Predictor
from unet_tf.serving import serving_function, serving_signature, tile_function


class KerasPredictor(Predictor):
    """A Keras model with its RunInfo; ``tta`` averages over flips (and rotations)."""

    format = "keras"

    def __init__(self, path: Path, model=None, info=None, tta: bool | str = False):
        if model is None:
            from unet_tf.checkpoint import load_run

            model, info = load_run(path)
        super().__init__(path, info.to_dict())
        self.model = model
        channels, multiple = info.model.input_channels, info.model.size_multiple
        size = None if self.native else info.input_size
        self._serve = tf.function(serving_function(model, size, channels, multiple, tta),
                                  input_signature=[serving_signature()])
        self._tiles = tf.function(tile_function(model, channels, multiple, tta),
                                  input_signature=[serving_signature()])

    @classmethod
    def from_model(cls, model, info, path: str | Path = "<memory>",
                   tta: bool | str = False) -> KerasPredictor:
        """A predictor for a Keras model already in memory and its RunInfo."""
        return cls(Path(path), model=model, info=info, tta=tta)

    def _segment(self, images):
        out = self._serve(tf.constant(images))
        return out["mask"], out["probabilities"]

    def _segment_tiles(self, tiles):
        return np.asarray(self._tiles(tf.constant(tiles))["probabilities"])

