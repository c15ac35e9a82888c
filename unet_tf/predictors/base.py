"""The predictor interface shared by every model format.

``Predictor.from_path`` opens any format: :func:`unet_tf.predictors.loading.locate` says
which one a path holds, and the predictor class that registered that format
(``class KerasPredictor(Predictor, kind="keras")``) opens it.
``predict(image)`` returns a uint8 class mask at the image's own size whatever the format;
``return_probabilities=True`` adds float32 softmax probabilities [H, W, K]; ``tile=N``
segments large images tile by tile at their own pixel size (:mod:`unet_tf.tiling`).
Subclasses implement two steps, both on uint8 RGB batches: ``_segment`` (a whole image,
through :mod:`unet_tf.serving`) and ``_segment_tiles`` (tiles at their own pixel size).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from unet_tf.checkpoint import CONFIG_FILE
from unet_tf.imageio import as_rgb
from unet_tf.predictors.loading import locate
from unet_tf.tiling import predict_tiled

DEFAULT_OVERLAP = 32  # pixels shared by neighbouring tiles (16 px of context each side)
# Whole-image inference holds float logits and probabilities at the image's size: above
# 64 MP (8000 x 8000) that is gigabytes, so such images are segmented in tiles instead.
WHOLE_IMAGE_MAX_PIXELS = 64_000_000


class Predictor:
    """Segment images with a trained model in any format; see :meth:`from_path`.

    Attributes:
        path: the model file or folder.
        format: "keras", "savedmodel" or the export format of a .tflite file
            ("tflite-fp32", "tflite-fp16", "tflite-int8", "tflite-dynamic").
        class_names: class names in index order.
        input_size: (height, width) the model was trained at.
        native: True when the run was trained at native resolution (images are segmented
            at their own pixel size instead of being resized to ``input_size``).
    """

    format = "unknown"
    # format ("keras", "savedmodel", "tflite", "onnx") -> the subclass that opens it; filled
    # by ``class ...(Predictor, kind=...)`` when unet_tf.predictors imports the subclasses
    formats: ClassVar[dict[str, type[Predictor]]] = {}

    def __init_subclass__(cls, kind: str | None = None, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if kind is not None:
            Predictor.formats[kind] = cls

    def __init__(self, path: Path, config: dict[str, Any]):
        self.path = Path(path)
        self.config = config
        self.class_names = tuple(config["class_names"])
        self.input_size = tuple(config["input_size"])
        self.native = config.get("preprocessing", {}).get("resolution") == "native"
        self.multiple = 2 ** int(config.get("model", {}).get("depth", 0))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.path)!r}, format={self.format!r}, "
            f"classes={list(self.class_names)}, input_size={self.input_size})"
        )

    @classmethod
    def from_path(
        cls, path: str | Path, num_threads: int | None = None, trusted: bool = False
    ) -> Predictor:
        """Load a predictor for a run directory, .keras file, SavedModel or .tflite file.

        Args:
            path: a run directory (with model.keras), a .keras file, a SavedModel folder,
                an export directory (its ``saved_model/`` is used) or a .tflite file. Each
                needs the run's ``config.json`` beside it (class names, input size).
            num_threads: CPU threads of the TFLite interpreter (None: its default). Keras
                and SavedModels use TensorFlow's global thread settings.
            trusted: run a SavedModel whose graph holds ops with side effects (file
                access, printing, Python calls); refused otherwise
                (:mod:`unet_tf.predictors.trust`). ``.keras`` files load with Keras'
                ``safe_mode`` (no Python code) and ``.tflite`` files run builtin ops only.

        Returns:
            A :class:`Predictor` whose ``predict`` works the same for every format.

        Examples:
            >>> p = Predictor.from_path("saved_models/pets")  # doctest: +SKIP
            >>> p.predict(np.zeros((300, 200, 3), np.uint8)).shape  # doctest: +SKIP
            (300, 200)
        """
        return load_predictor(path, num_threads=num_threads, trusted=trusted)

    @classmethod
    def open(cls, path: Path, num_threads: int | None = None, trusted: bool = False,
             **options) -> Predictor:
        """This format's predictor for ``path``, given the loader's arguments it takes (a
        Keras model runs with TensorFlow's threads and needs no trust)."""
        return cls(path, **options)

    def predict(
        self,
        image: Any,
        return_probabilities: bool = False,
        tile: int | None = None,
        overlap: int = DEFAULT_OVERLAP,
        tile_batch: int = 4,
    ):
        """Segment one image at its own size.

        Args:
            image: uint8 [H, W, 3] RGB (also [H, W], [H, W, 1], RGBA or 16-bit), or an
                image file path (read upright, following its EXIF orientation).
            return_probabilities: also return float32 softmax probabilities [H, W, K].
            tile: segment tiles of this many pixels at the image's own pixel size, blended
                over ``overlap`` pixels (large images at full resolution, bounded memory);
                None segments the whole image at once.
            overlap: pixels shared by neighbouring tiles.
            tile_batch: tiles per network call.

        Returns:
            uint8 class mask [H, W], or (mask, probabilities).

        Examples:
            >>> mask, probs = predictor.predict(image, return_probabilities=True)  # doctest: +SKIP
            >>> mask = predictor.predict(big_image, tile=256, overlap=32)  # doctest: +SKIP
        """
        rgb = as_rgb(image)
        if tile is None and rgb.shape[0] * rgb.shape[1] > WHOLE_IMAGE_MAX_PIXELS:
            raise ValueError(
                f"{image if isinstance(image, (str, Path)) else 'the image'} is "
                f"{rgb.shape[1]}x{rgb.shape[0]} pixels, too large to segment at once (its "
                "probabilities alone would fill gigabytes); segment it in tiles: --tile 512")
        if tile is not None:
            mask, probabilities = predict_tiled(
                self._segment_tiles, rgb, int(tile), int(overlap), self.num_classes,
                batch_size=tile_batch, return_probabilities=return_probabilities,
                multiple=self.multiple,
            )
        else:
            mask, probabilities = self._segment(rgb[None])
            mask, probabilities = np.asarray(mask)[0], np.asarray(probabilities)[0]
        return (mask, probabilities) if return_probabilities else mask

    def _segment(self, images: np.ndarray):  # -> (mask [1, H, W], probabilities [1, H, W, K])
        raise NotImplementedError

    def _segment_tiles(self, tiles: np.ndarray) -> np.ndarray:  # -> probabilities [n, t, t, K]
        raise NotImplementedError

    def tile_probabilities(self, tiles: np.ndarray) -> np.ndarray:
        """Float32 probabilities [n, h, w, K] of uint8 tiles [n, h, w, C] at their own pixel
        size (the per-tile step of :func:`unet_tf.tiling.predict_tiled`; h and w multiples
        of ``self.multiple``)."""
        return np.asarray(self._segment_tiles(tiles), np.float32)


def load_predictor(path: str | Path, num_threads: int | None = None, trusted: bool = False,
                   **options) -> Predictor:
    """See :meth:`unet_tf.Predictor.from_path`."""
    kind, target = locate(path)
    return Predictor.formats[kind].open(target, num_threads=num_threads, trusted=trusted,
                                        **options)


def read_config(path: Path, *folders: Path) -> dict[str, Any]:
    """The run's config.json from the first of ``folders`` that has one; a clear error else."""
    for folder in folders:
        file = Path(folder) / CONFIG_FILE
        if file.is_file():
            try:
                config = json.loads(file.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"{file}: not valid JSON ({exc})") from exc
            missing = [k for k in ("class_names", "input_size") if not config.get(k)]
            if missing:
                raise ValueError(f"{file}: not a unet_tf config.json (no {missing})")
            return config
    where = " or ".join(str(Path(f) / CONFIG_FILE) for f in folders)
    raise ValueError(
        f"{path}: no {where}; the model's class names and input size are unknown. Put the "
        "config.json of its run or export beside it"
    )


def check_classes(config: dict[str, Any], num_classes: int, path: Path) -> None:
    names: Sequence[str] = config["class_names"]
    if len(names) != num_classes:
        raise ValueError(
            f"{path}: config.json names {len(names)} classes {list(names)} but the model "
            f"outputs {num_classes}; is it the config of another model?"
        )
