"""Data sources and the tf.data pipeline that turns them into training batches.

A source is named by a spec string:

- ``synthetic``: the embedded offline dataset of textured shapes (the default).
- ``tfds:NAME``: a tensorflow-datasets dataset, e.g. ``tfds:oxford_iiit_pet``.
- ``oxford-pets:DIR``: the Oxford-IIIT Pet archive layout.
- ``folder:DIR``: images/ + masks/ matched by file stem (optionally per split folder).
- ``instances:DIR``: images/ + instances/ label images (0 background, k = k-th object),
  trained as background / interior / boundary; ``instances-foreground:DIR`` trains the same
  files as background / foreground (the semantic baseline).

``DataConfig.resolution="native"`` keeps every image's pixel size: training batches are random
``image_size`` crops, validation batches centre crops (both mirror-padded when an image is
smaller).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from unet_tf.config import DataConfig
from unet_tf.data.augment import augment_pair, crop_pair
from unet_tf.data.files import DataError, MaskMapping
from unet_tf.data.folder import load_folder, load_oxford_pets
from unet_tf.data.instances import (
    load_instance_pairs,
    load_instances,
    load_instances_foreground,
)
from unet_tf.data.preprocess import PREPROCESSING, preprocess_image, resize_mask
from unet_tf.data.source import Source, class_lookup, remap_labels
from unet_tf.data.synthetic import CLASS_NAMES as SYNTHETIC_CLASS_NAMES
from unet_tf.data.synthetic import make_arrays
from unet_tf.data.tfds import load_tfds
from unet_tf.data.weightmap import unet_weight_map, with_weight_map

__all__ = [
    "PREPROCESSING",
    "DataError",
    "MaskMapping",
    "Source",
    "augment_pair",
    "class_lookup",
    "load_instance_pairs",
    "load_source",
    "make_dataset",
    "parse_spec",
    "preprocess_image",
    "remap_labels",
    "resize_mask",
    "unet_weight_map",
    "with_weight_map",
]

SYNTHETIC_SIZE = 480  # scenes in the default synthetic dataset


def load_synthetic(arg: str, split: str | None, subset: str | None, config: DataConfig) -> Source:
    """``synthetic``: seeded scenes of textured discs, squares and triangles (offline)."""
    from unet_tf.data.files import seeded_subset

    if split not in (None, "train", "all"):
        raise DataError(f"synthetic data has one split, 'train'; got {split!r}")
    size = max(config.image_size)
    total = config.num_examples or SYNTHETIC_SIZE
    images, masks = make_arrays(total, seed=config.seed, size=size)
    index = seeded_subset(list(range(total)), subset, config.validation_fraction, config.seed)
    examples = tf.data.Dataset.from_tensor_slices(
        (images[index], masks[index].astype("int32"))
    )
    return Source(
        examples=examples,
        class_names=SYNTHETIC_CLASS_NAMES,
        channels=3,
        size=len(index),
        description=f"synthetic ({len(index)} scenes, seed {config.seed})"
        + (f" ({subset})" if subset else ""),
    )


LOADERS: dict[str, Callable[[str, str | None, str | None, DataConfig], Source]] = {
    "synthetic": load_synthetic,
    "tfds": load_tfds,
    "oxford-pets": load_oxford_pets,
    "folder": load_folder,
    "instances": load_instances,
    "instances-foreground": load_instances_foreground,
}


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a data spec into (kind, argument).

    Examples:
        >>> parse_spec("folder:../shared/data/isbi2012_em")
        ('folder', '../shared/data/isbi2012_em')
    """
    kind, _, arg = spec.partition(":")
    if kind not in LOADERS:
        raise DataError(
            f"Unknown data spec {spec!r}; use synthetic, tfds:NAME, oxford-pets:DIR or "
            "folder:DIR (instance label images: instances:DIR or instances-foreground:DIR)"
        )
    if kind == "synthetic" and spec != kind:
        raise DataError(f"Data spec {spec!r}: synthetic takes no argument; use synthetic "
                        "(its number of scenes: --num-examples, DataConfig.num_examples)")
    if kind != "synthetic" and not arg:
        raise DataError(f"Data spec {spec!r} needs an argument, e.g. {kind}:PATH_OR_NAME")
    return kind, arg


def load_source(config: DataConfig, subset: str | None = None, split: str | None = None) -> Source:
    """Load the raw examples named by ``config.spec``.

    Args:
        config: data settings; ``config.split`` is used unless ``split`` is given.
        subset: None (the whole split), "training" or "validation" (a seeded
            ``config.validation_fraction`` of the split).
        split: overrides ``config.split``.
    """
    kind, arg = parse_spec(config.spec)
    return LOADERS[kind](arg, split or config.split, subset, config)


def make_dataset(
    config: DataConfig,
    subset: str | None = None,
    training: bool = False,
    split: str | None = None,
    channels: int | None = None,
) -> tuple[tf.data.Dataset, Source]:
    """Build batches of (float32 image [B, H, W, C], int32 mask [B, H, W, 1]).

    Images go through :func:`preprocess_image` (bilinear resize to ``config.image_size``),
    masks through nearest-neighbour :func:`resize_mask`; the result is cached, and for
    training shuffled and augmented (image and mask together) with seeds from
    ``config.seed``, so two runs see the same batches. With ``config.resolution ==
    "native"`` nothing is resized: the raw images are cached and cropped to
    ``config.image_size`` (random crops for training, centre crops otherwise).

    Args:
        config: data settings.
        subset: None, "training" or "validation" (see :func:`load_source`).
        training: shuffle, augment and repeat-friendly (drop nothing, reshuffle each epoch).
        split: overrides ``config.split``.
        channels: channels the model expects (default: the source's).

    Returns:
        (dataset, source) where ``source`` carries class names and size.

    Examples:
        >>> from unet_tf.config import DataConfig
        >>> ds, src = make_dataset(DataConfig(num_examples=8, batch_size=4, image_size=(64, 64)))
        >>> [tuple(t.shape) for t in next(iter(ds))]
        [(4, 64, 64, 3), (4, 64, 64, 1)]
    """
    source = load_source(config, subset=subset, split=split)
    if source.size == 0:
        raise DataError(f"{source.description}: no examples")
    channels = channels or source.channels
    size = tuple(config.image_size)
    native = config.resolution == "native"

    def crop(image, mask, seed=None):
        # native resolution: raw pixels are cached, each epoch crops them anew (the crop's
        # seed is folded from the example's so that augment_pair keeps its own stream)
        if seed is not None:
            seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 1)
        image, mask = crop_pair(image, mask, size, seed)
        return preprocess_image(image, None, channels), mask

    ds = source.examples
    if not native:
        ds = ds.map(lambda image, mask: (preprocess_image(image, size, channels),
                                         resize_mask(mask, size)),
                    num_parallel_calls=tf.data.AUTOTUNE)
    if config.cache:
        ds = ds.cache()
    if training:
        ds = _shuffle_and_augment(ds, config, source.size, crop if native else None)
    elif native:
        ds = ds.map(crop, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(config.batch_size).prefetch(tf.data.AUTOTUNE)
    return ds, source


def _shuffle_and_augment(ds: tf.data.Dataset, config: DataConfig, size: int,
                         crop=None) -> tf.data.Dataset:
    """Training examples shuffled, cropped by ``crop`` (native resolution) and augmented,
    each epoch anew, with seeds drawn from ``config.seed``: two runs see the same batches."""
    ds = ds.shuffle(
        min(config.shuffle_buffer, max(size, 1)),
        seed=config.seed,
        reshuffle_each_iteration=True,
    )
    seeds = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, seeds.batch(2))
    if crop is not None:
        ds = ds.map(
            lambda pair, seed: (crop(*pair, seed), seed), num_parallel_calls=tf.data.AUTOTUNE
        )
    return ds.map(
        lambda pair, seed: augment_pair(pair[0], pair[1], seed, config.augment),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
