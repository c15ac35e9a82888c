"""Instance label images: ``instances:DIR`` (3-class targets) and ``instances-foreground:DIR``.

Layout: ``DIR/images/NAME.png`` (RGB, RGBA or grayscale; the model sees 3 channels, alpha
dropped) and ``DIR/instances/NAME.png`` (8- or 16-bit label image, 0 = background, k = k-th
object), the layout of the Data Science Bowl 2018 nuclei. The one remap of this source: ids
become a training target, background / interior / boundary for ``instances:`` (see
:mod:`unet_tf.instances.targets`) or background / foreground for ``instances-foreground:``
(the semantic-only baseline, whose objects are connected components). Every pair is checked
up front like the folder source (unreadable or truncated files, size mismatch, missing ids
files, empty folder), and :func:`load_instance_pairs` gives evaluation the ids themselves.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from unet_tf.config import DataConfig
from unet_tf.data.files import DataError, select_pairs
from unet_tf.data.folder import match_pairs
from unet_tf.data.source import Source
from unet_tf.instances.targets import TARGETS, make_target

IMAGES, INSTANCES = "images", "instances"
CHANNELS = 3  # DSB images are RGB(A) of several modalities; grayscale files are converted


def read_instances(path: str | Path) -> np.ndarray:
    """The instance ids of a label image file, int32 [H, W] (0 = background).

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "ids.png"
        >>> Image.fromarray(np.array([[0, 300]], np.uint16)).save(path)
        >>> read_instances(path)
        array([[  0, 300]], dtype=int32)
    """
    with Image.open(path) as im:
        ids = np.asarray(im)
    if ids.ndim != 2:
        raise DataError(f"{path}: instance ids must be a single-channel image; got {ids.shape}")
    return ids.astype(np.int32)


def instance_files(root: str, subset: str | None, config: DataConfig) -> list[tuple[Path, Path]]:
    """Checked (image, ids) file pairs of ``root`` for ``subset`` (seeded like other sources)."""
    path = Path(root).expanduser()
    if not (path / IMAGES).is_dir() or not (path / INSTANCES).is_dir():
        raise DataError(
            f"{path} needs {IMAGES}/ and {INSTANCES}/ subfolders (images/NAME.png with "
            f"{INSTANCES}/NAME.png label images, 0 = background, k = k-th object)"
        )
    if config.split not in (None, "all"):
        raise DataError(f"instances:{path} has one split, 'all'; got {config.split!r}")
    pairs = match_pairs(path / IMAGES, path / INSTANCES)
    return select_pairs(pairs, subset, config, None, f"instances:{path}")


def _load(root: str, subset: str | None, config: DataConfig, target: str) -> Source:
    pairs = instance_files(root, subset, config)

    def to_target(ids_path: bytes) -> np.ndarray:
        ids = read_instances(ids_path.decode())
        return make_target(ids, target, config.boundary_width)[..., None]

    def load(image_path, ids_path):
        image = tf.io.decode_image(
            tf.io.read_file(image_path), channels=CHANNELS, expand_animations=False
        )
        mask = tf.numpy_function(to_target, [ids_path], tf.int32, stateful=False)
        mask.set_shape([None, None, 1])
        return image, mask

    files = ([str(i) for i, _ in pairs], [str(m) for _, m in pairs])
    kind = "instances" if target == "boundary" else "instances-foreground"
    return Source(
        examples=tf.data.Dataset.from_tensor_slices(files).map(
            load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        ),
        class_names=TARGETS[target],
        channels=CHANNELS,
        size=len(pairs),
        description=f"{kind}:{Path(root).expanduser()} ({len(pairs)} images)"
        + (f" ({subset})" if subset else ""),
    )


def load_instances(root: str, split: str | None, subset: str | None, config: DataConfig) -> Source:
    """``instances:DIR``: targets 0 background / 1 interior / 2 boundary from instance ids."""
    return _load(root, subset, _with_split(config, split), "boundary")


def load_instances_foreground(
    root: str, split: str | None, subset: str | None, config: DataConfig
) -> Source:
    """``instances-foreground:DIR``: 0 background / 1 foreground (the semantic baseline)."""
    return _load(root, subset, _with_split(config, split), "foreground")


def _with_split(config: DataConfig, split: str | None) -> DataConfig:
    return dataclasses.replace(config, split=split) if split != config.split else config


def load_instance_pairs(
    config: DataConfig, subset: str | None = None
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, uint8 RGB image [H, W, 3], int32 ids [H, W]) at native size, for evaluation.

    The same files, checks and seeded subset as the ``instances:`` source of ``config``.

    Args:
        config: a DataConfig whose spec is ``instances:DIR`` or ``instances-foreground:DIR``.
        subset: None (all), "training" or "validation".

    Examples:
        >>> cfg = DataConfig(spec="instances:../shared/data/dsb2018_nuclei")
        >>> name, image, ids = load_instance_pairs(cfg, "validation")[0]  # doctest: +SKIP
    """
    kind, _, root = config.spec.partition(":")
    if kind not in ("instances", "instances-foreground") or not root:
        raise DataError(
            f"load_instance_pairs needs an instances:DIR or instances-foreground:DIR spec; "
            f"got {config.spec!r}"
        )
    result = []
    for image_path, ids_path in instance_files(root, subset, config):
        with Image.open(image_path) as im:
            image = np.asarray(im.convert("RGB"))  # alpha dropped, grayscale to RGB
        result.append((image_path.stem, image, read_instances(ids_path)))
    return result
