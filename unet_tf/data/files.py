"""Image/mask file pairs: matching, checking and decoding, shared by folder and Oxford sources.

Every pair is checked once, in Python, before training starts: an unreadable or truncated
image, a mask whose size differs from its image or a mask value outside the mapping stops
with an error that names the file and what was found (or, with ``skip_bad``, a warning per
file and a count). A silent wrong label is the one thing a segmentation pipeline must not do.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from unet_tf.config import IGNORE_LABEL

logger = logging.getLogger("unet_tf")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
TF_FORMATS = ("PNG", "JPEG", "BMP", "GIF")  # what tf.io.decode_image reads in the pipeline


class DataError(ValueError):
    """A dataset file is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class MaskMapping:
    """How raw mask values become class indices.

    ``values[i]`` is the raw value (an int, or an (r, g, b) colour for palette masks) of
    class ``i``; raw values in ``ignore`` become ``IGNORE_LABEL``; anything else is an error.
    """

    values: tuple
    ignore: tuple = ()

    @property
    def is_palette(self) -> bool:
        return bool(self.values) and isinstance(self.values[0], (tuple, list))

    def lookup_table(self) -> np.ndarray:
        """A 256-entry table from raw index value to class (-1 where the value is invalid)."""
        table = np.full(256, -1, np.int32)
        for cls, raw in enumerate(self.values):
            table[int(raw)] = cls
        for raw in self.ignore:
            table[int(raw)] = IGNORE_LABEL
        return table

    def describe(self) -> str:
        pairs = ", ".join(f"{v}->{i}" for i, v in enumerate(self.values))
        ignore = f"; ignored: {list(self.ignore)}" if self.ignore else ""
        return f"{{{pairs}}}{ignore}"


def list_images(folder: Path) -> dict[str, Path]:
    """Map file stem -> path for every image file directly inside ``folder``."""
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    }


def _check_pair(image_path: Path, mask_path: Path, mapping: MaskMapping | None) -> str | None:
    """Return None when the pair is good, else a message naming the file and the problem.

    ``mapping`` None: the mask holds instance ids (any integer values are valid).
    """
    try:
        with Image.open(image_path) as im:
            im.load()  # full decode: catches truncated files that open() alone accepts
            image_size, image_format = im.size, im.format
    except Exception as exc:  # PIL raises many types for bad files
        return f"{image_path}: unreadable image ({type(exc).__name__}: {exc})"
    if mapping is not None and image_format not in TF_FORMATS:
        return (f"{image_path}: a {image_format} file; the training pipeline reads "
                f"{', '.join(TF_FORMATS)}: convert it (e.g. to PNG)")
    try:
        with Image.open(mask_path) as m:
            m.load()
            if mapping is not None and mapping.is_palette:
                arr = np.asarray(m.convert("RGB"))
            else:
                if m.mode not in ("L", "P", "I", "I;16", "1"):
                    return (
                        f"{mask_path}: mask has mode {m.mode!r}; index masks must be "
                        "single-channel (give a palette for RGB masks)"
                    )
                if mapping is not None and (m.mode.startswith("I") or m.format not in
                                            TF_FORMATS):
                    # TensorFlow decodes 16-bit PNGs scaled to 8 bits: labels would change
                    return (f"{mask_path}: a {m.format} mask of mode {m.mode!r}; class masks "
                            "must be 8-bit PNG (values 0..255, e.g. mode L or P)")
                arr = np.asarray(m)
    except Exception as exc:
        return f"{mask_path}: unreadable mask ({type(exc).__name__}: {exc})"
    if arr.shape[1::-1] != image_size:
        return (
            f"{mask_path}: mask is {arr.shape[1]}x{arr.shape[0]} but image {image_path.name} "
            f"is {image_size[0]}x{image_size[1]} (width x height)"
        )
    if mapping is None:
        return None
    if mapping.is_palette:
        colours = {tuple(int(c) for c in v) for v in np.unique(arr.reshape(-1, 3), axis=0)}
        known = {tuple(v) for v in mapping.values} | {tuple(v) for v in mapping.ignore}
        bad = sorted(colours - known)
    else:
        found = {int(v) for v in np.unique(arr)}
        bad = sorted(found - {int(v) for v in mapping.values} - {int(v) for v in mapping.ignore})
    if bad:
        return (
            f"{mask_path}: mask values {bad[:10]} are outside the mapping "
            f"{mapping.describe()}"
        )
    return None


def check_pairs(
    pairs: Sequence[tuple[Path, Path]], mapping: MaskMapping | None, skip_bad: bool = False
) -> list[tuple[Path, Path]]:
    """Check every pair (in threads); raise DataError on the first bad one, or skip them.

    ``mapping`` None checks instance label images (any integer ids) instead of class masks.

    Examples:
        >>> check_pairs([], MaskMapping(values=(0, 1)))
        []
    """
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 2)) as pool:
        problems = list(pool.map(lambda p: _check_pair(p[0], p[1], mapping), pairs))
    bad = [msg for msg in problems if msg]
    if bad and not skip_bad:
        more = f" (and {len(bad) - 1} more bad pairs)" if len(bad) > 1 else ""
        raise DataError(bad[0] + more + "; pass skip_bad=True (--skip-bad) to skip bad files")
    for msg in bad:
        warnings.warn(f"skipping {msg}", stacklevel=2)
    if bad:
        warnings.warn(f"skipped {len(bad)} of {len(pairs)} image/mask pairs", stacklevel=2)
    return [pair for pair, msg in zip(pairs, problems, strict=True) if not msg]


def scan_mask_values(mask_paths: Sequence[Path]) -> list[int]:
    """The sorted set of raw values found in single-channel masks (to infer a mapping)."""
    found: set[int] = set()
    for path in mask_paths:
        with Image.open(path) as m:
            found.update(int(v) for v in np.unique(np.asarray(m)))
    return sorted(found)


def image_channels(path: Path) -> int:
    """1 for grayscale image files, else 3 (alpha is dropped)."""
    with Image.open(path) as im:
        return 1 if im.mode in ("L", "I", "I;16", "1") else 3


def pairs_dataset(
    pairs: Sequence[tuple[Path, Path]], mapping: MaskMapping, channels: int
) -> tf.data.Dataset:
    """A dataset of raw (uint8 image [H, W, C], int32 mask [H, W, 1]) from checked pairs."""
    images = [str(p[0]) for p in pairs]
    masks = [str(p[1]) for p in pairs]
    if mapping.is_palette:
        palette = tf.constant(mapping.values, tf.int32)
        ignore = tf.constant(mapping.ignore or [[-1, -1, -1]], tf.int32)

        def to_labels(raw):
            raw = tf.cast(raw, tf.int32)[..., None, :]
            cls = tf.argmax(tf.reduce_all(raw == palette, -1), -1, output_type=tf.int32)
            ignored = tf.reduce_any(tf.reduce_all(raw == ignore, -1), -1)
            return tf.where(ignored, IGNORE_LABEL, cls)[..., None]

        mask_channels = 3
    else:
        table = tf.constant(mapping.lookup_table())

        def to_labels(raw):
            return tf.gather(table, tf.cast(raw, tf.int32))

        mask_channels = 1

    def load(image_path, mask_path):
        image = tf.io.decode_image(
            tf.io.read_file(image_path), channels=channels, expand_animations=False
        )
        raw = tf.io.decode_image(
            tf.io.read_file(mask_path), channels=mask_channels, expand_animations=False
        )
        return image, to_labels(raw)

    return tf.data.Dataset.from_tensor_slices((images, masks)).map(
        load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


def select_pairs(pairs: list, subset: str | None, config, mapping, what: str) -> list:
    """The seeded subset of ``pairs``, truncated to ``config.num_examples``, then checked."""
    pairs = seeded_subset(pairs, subset, config.validation_fraction, config.seed)
    if config.num_examples:
        pairs = pairs[: config.num_examples]
    pairs = check_pairs(pairs, mapping, config.skip_bad)
    if not pairs:
        raise DataError(f"{what}: no usable image/mask pairs")
    return pairs


def seeded_subset(items: list, subset: str | None, fraction: float, seed: int) -> list:
    """Split ``items`` into a seeded training / validation part (like Keras' ``subset``).

    ``subset`` is None (everything), "training" (1 - fraction) or "validation" (fraction).
    """
    if subset is None:
        return list(items)
    if subset not in ("training", "validation"):
        raise ValueError(f"subset must be None, 'training' or 'validation'; got {subset!r}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1); got {fraction}")
    order = np.random.default_rng(seed).permutation(len(items))
    n_val = max(1, round(len(items) * fraction))
    chosen = order[:n_val] if subset == "validation" else order[n_val:]
    return [items[i] for i in sorted(chosen)]
