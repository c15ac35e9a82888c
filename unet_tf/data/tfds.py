"""``tfds:NAME``: tensorflow-datasets with an image and a segmentation-mask feature."""

from __future__ import annotations

import difflib

import tensorflow as tf

from unet_tf.config import DataConfig
from unet_tf.data.files import DataError, MaskMapping
from unet_tf.data.source import Source

# Class names of datasets whose masks hold class indices but whose features do not name them.
# oxford_iiit_pet stores trimap - 1: 0 pet, 1 background, 2 border (unlabelled outline).
KNOWN_CLASS_NAMES = {"oxford_iiit_pet": ("pet", "background", "border")}
MASK_WORDS = ("segmentation", "mask", "label")


def _find_features(name: str, features) -> tuple[str, str]:
    import tensorflow_datasets as tfds

    images = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
    masks = [k for k in images if any(w in k for w in MASK_WORDS)]
    pictures = [k for k in images if k not in masks]
    if not masks or not pictures:
        raise DataError(
            f"tfds:{name} needs an image feature and a segmentation-mask image feature; "
            f"its image features are {images}"
        )
    image_key = "image" if "image" in pictures else pictures[0]
    return image_key, masks[0]


def check_dataset_name(name: str) -> None:
    """Raise DataError naming the closest tfds datasets unless ``name`` is one.

    ``name`` may carry a config and version (``oxford_iiit_pet/cfg:4.0.0``); names with a
    community namespace (``huggingface:NAME``) are left to ``tfds.load``. Offline: only the
    datasets that tfds itself registers are listed.

    Examples:
        >>> check_dataset_name("oxford_iiit_pett")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        unet_tf.data.files.DataError: no tfds dataset named 'oxford_iiit_pett'; closest: ...
    """
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core import naming

    try:
        dataset, _ = naming.parse_builder_name_kwargs(name)
    except Exception:  # malformed: tfds.load says why
        return
    if dataset.namespace:
        return
    known = tfds.list_builders(with_community_datasets=False)
    base = dataset.name
    if base in known or naming.camelcase_to_snakecase(base) in known:
        return
    closest = difflib.get_close_matches(base, known, n=5, cutoff=0.6)
    raise DataError(
        f"no tfds dataset named {base!r}; "
        + (f"closest: {', '.join(closest)}" if closest else
           "tfds.list_builders() lists all, e.g. oxford_iiit_pet")
    )


def _split_with_subset(split: str, subset: str | None, fraction: float) -> str:
    if subset is None:
        return split
    cut = round(100 * (1 - fraction))
    return f"{split}[:{cut}%]" if subset == "training" else f"{split}[{cut}%:]"


def load_tfds(name: str, split: str | None, subset: str | None, config: DataConfig) -> Source:
    """Load a tfds dataset with ``tfds.load`` (downloads unless already prepared).

    A validation subset is the last ``validation_fraction`` of the split (tfds slicing), so it
    is the same in every run.
    """
    import tensorflow_datasets as tfds  # heavy: imported only when a tfds source is used

    split = split or "train"
    tfds_split = _split_with_subset(split, subset, config.validation_fraction)
    check_dataset_name(name)  # a misspelt name: no download attempt, no list of 450 names
    try:
        dataset, info = tfds.load(
            name, split=tfds_split, with_info=True, shuffle_files=False,
            download=config.download,
        )
    except Exception as exc:
        # tfds messages can run to hundreds of lines (every dataset name): the first says it
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DataError(
            f"tfds:{name} split {tfds_split!r} could not be loaded ({type(exc).__name__}: "
            f"{first}); tfds needs network access to download it once"
            + ("" if config.download else " (download=False / --no-download was set)")
        ) from exc
    image_key, mask_key = _find_features(name, info.features)
    names = config.class_names or KNOWN_CLASS_NAMES.get(name)
    if names is None:
        raise DataError(
            f"tfds:{name} does not name its mask classes; pass class_names (--classes)"
        )
    mapping = MaskMapping(values=tuple(range(len(names))), ignore=config.ignore_values)
    table = tf.constant(mapping.lookup_table())
    channels = info.features[image_key].shape[-1] or 3

    def convert(example):
        raw = tf.cast(example[mask_key], tf.int32)
        mask = tf.gather(table, tf.clip_by_value(raw, 0, 255))
        bad = tf.reduce_any(mask < 0)
        # tfds files are not checked up front as folders are; fail on the first bad mask
        check = tf.debugging.Assert(
            tf.logical_not(bad),
            [f"tfds:{name} {tfds_split}: mask values outside {mapping.describe()}:",
             tf.unique(tf.reshape(raw, [-1]))[0]],
            summarize=20,
        )
        with tf.control_dependencies([check]):
            mask = tf.identity(mask)
        return tf.cast(example[image_key], tf.uint8), mask

    dataset = dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
    if config.num_examples:
        dataset = dataset.take(config.num_examples)
    size = int(dataset.cardinality())
    return Source(
        examples=dataset,
        class_names=tuple(names),
        channels=channels,
        size=size,
        description=f"tfds:{name} split {tfds_split}",
    )
