"""A SavedModel folder with the signatures written by :func:`unet_tf.export`.

A SavedModel is a program: its graph may hold any TensorFlow op, file writes included.
Loading one may run its initializers and calling it runs its graph, so a graph holding ops
that touch files, print or call Python is refused unless ``trusted``
(:mod:`unet_tf.predictors.trust`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from unet_tf.predictors.base import Predictor, check_classes, read_config
from unet_tf.predictors.trust import check_saved_model
from unet_tf.serving import SERVING_INPUT, TILE_SIGNATURE


class SavedModelPredictor(Predictor, kind="savedmodel"):
    """``serving_default`` for whole images, ``segment_tiles`` for tiles at their pixel size."""

    format = "savedmodel"

    @classmethod
    def open(cls, path, num_threads=None, trusted=False, **options) -> SavedModelPredictor:
        return cls(path, trusted=trusted, **options)

    def __init__(self, path: Path, trusted: bool = False):
        config = read_config(path, path, path.parent)
        check_saved_model(path, trusted)  # before loading: initializers run at load time
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as exc:  # corrupt protobufs raise DecodeError, OSError, ...
            raise ValueError(f"{path}: TensorFlow cannot load this SavedModel ({exc})") from exc
        if "serving_default" not in loaded.signatures:
            raise ValueError(
                f"{path}: the SavedModel has no serving_default signature (found "
                f"{sorted(loaded.signatures)}); export it with unet_tf.export"
            )
        self._loaded = loaded  # keeps the variables alive
        self._serve = loaded.signatures["serving_default"]
        self._tiles = loaded.signatures.get(TILE_SIGNATURE)
        check_classes(config, self._serve.structured_outputs["probabilities"].shape[-1], path)
        super().__init__(path, config)

    def _segment(self, images):
        out = self._serve(**{SERVING_INPUT: tf.constant(images)})
        return out["mask"], out["probabilities"]

    def _segment_tiles(self, tiles):
        if self._tiles is None:
            raise ValueError(
                f"{self.path}: this SavedModel has no {TILE_SIGNATURE} signature (exported by "
                "an older unet_tf); export it again to use tiled inference"
            )
        return np.asarray(self._tiles(**{SERVING_INPUT: tf.constant(tiles)})["probabilities"])
