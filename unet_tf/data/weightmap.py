"""The U-Net paper's pixel-wise weight map, and the tf.data hook that adds it as sample weights.

Ronneberger et al. (2015), eq. 2:

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

where ``w_c`` balances class frequencies, ``d1`` and ``d2`` are the distances to the border
of the nearest and the second nearest object, and the border term applies to pixels that
belong to no object (the thin background gaps that separate touching objects), so that the
network has to learn them. Objects are instances when an instance image is given, otherwise
the connected components of ``object_classes`` (scikit-image labelling, scipy distance
transforms). Ignored pixels (label 255) get weight 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from unet_tf.config import IGNORE_LABEL

# Beyond d1 + d2 = 4 sigma the border term is below w0 * exp(-8) = 3e-4 * w0, so distances
# are only computed within that reach of each object (exact inside it, much faster).
REACH_SIGMAS = 4.0


def _objects(
    mask: np.ndarray, object_classes: Sequence[int] | None, instances: np.ndarray | None
) -> tuple[np.ndarray, int]:
    """An int32 image numbering objects 1..n (0 = no object), and n."""
    from skimage.measure import label

    if instances is not None:
        values = np.unique(instances)
        values = values[values != 0]
        lookup = np.zeros(int(instances.max()) + 1, np.int32)
        lookup[values] = np.arange(1, len(values) + 1, dtype=np.int32)
        return lookup[instances], len(values)
    objects = np.zeros(mask.shape, np.int32)
    count = 0
    for cls in object_classes:
        components, n = label(mask == cls, connectivity=1, return_num=True)
        objects[components > 0] = components[components > 0] + count
        count += n
    return objects, count


def unet_weight_map(
    mask: np.ndarray,
    object_classes: Sequence[int] | None = None,
    instances: np.ndarray | None = None,
    class_weights: Sequence[float] | None = None,
    w0: float = 10.0,
    sigma: float = 5.0,
    ignore_label: int = IGNORE_LABEL,
) -> np.ndarray:
    """Compute the U-Net weight map of one label mask.

    Args:
        mask: class indices [H, W] (or [H, W, 1]); ``ignore_label`` marks unlabelled pixels.
        object_classes: classes whose connected components (4-connectivity) are objects.
            None means every class but 0 (0 being the background that separates objects).
        instances: optional instance ids [H, W] (0 = none); when given, these are the
            objects and ``object_classes`` is not used.
        class_weights: ``w_c`` per class (e.g. median-frequency balancing); None means 1.
        w0: weight of the border term (10 in the paper).
        sigma: width of the border term in pixels (about 5 in the paper).
        ignore_label: label whose pixels get weight 0.

    Returns:
        float32 [H, W] weights.

    Examples:
        >>> m = np.zeros((8, 12), np.int32); m[:, :5] = 1; m[:, 7:] = 1  # two objects
        >>> w = unet_weight_map(m, sigma=2.0)
        >>> round(float(w[0, 5]), 3), float(w[0, 0])  # gap pixel: d1 = 1, d2 = 2
        (4.247, 1.0)
    """
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"mask must be [H, W] or [H, W, 1]; got shape {mask.shape}")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0 pixels; got {sigma}")
    valid = mask != ignore_label
    labels = np.where(valid, mask, 0).astype(np.int64)
    weights = _class_term(labels, class_weights)
    if object_classes is None:
        object_classes = [c for c in np.unique(labels) if c != 0]
    if instances is not None:
        instances = _instance_ids(instances, mask.shape)
    objects, count = _objects(np.where(valid, mask, -1), object_classes, instances)
    if w0 and count >= 2:
        weights += w0 * _border_term(objects, count, sigma) * (objects == 0)
    return (weights * valid).astype(np.float32)


def _class_term(labels: np.ndarray, class_weights: Sequence[float] | None) -> np.ndarray:
    """``w_c``: each pixel's class weight (1 without ``class_weights``), float32 [H, W]."""
    if class_weights is None:
        return np.ones(labels.shape, np.float32)
    table = np.asarray(class_weights, np.float32)
    if labels.max(initial=0) >= len(table):
        raise ValueError(
            f"mask holds class {int(labels.max())} but class_weights has only "
            f"{len(table)} values; give one weight per class"
        )
    return table[labels]


def _instance_ids(instances: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Instance ids as [H, W] (from [H, W] or [H, W, 1]); they must match the mask's shape."""
    instances = np.asarray(instances)
    instances = instances[..., 0] if instances.ndim == 3 else instances
    if instances.shape != shape:
        raise ValueError(
            f"instances have shape {instances.shape} but the mask {shape}; they must "
            "match"
        )
    return instances


def _border_term(objects: np.ndarray, count: int, sigma: float) -> np.ndarray:
    """exp(-(d1 + d2)^2 / (2 sigma^2)) with d1 <= d2 the two smallest object distances."""
    from scipy.ndimage import distance_transform_edt, find_objects

    height, width = objects.shape
    reach = int(np.ceil(REACH_SIGMAS * sigma))
    d1 = np.full(objects.shape, np.inf, np.float32)
    d2 = np.full(objects.shape, np.inf, np.float32)
    for index, box in enumerate(find_objects(objects), start=1):
        if box is None:
            continue
        rows = slice(max(box[0].start - reach, 0), min(box[0].stop + reach, height))
        cols = slice(max(box[1].start - reach, 0), min(box[1].stop + reach, width))
        # distance of every pixel in the window to the nearest pixel of this object
        dist = distance_transform_edt(objects[rows, cols] != index).astype(np.float32)
        near1, near2 = d1[rows, cols], d2[rows, cols]
        closer = dist < near1
        near2[:] = np.where(closer, near1, np.minimum(near2, dist))
        near1[:] = np.where(closer, dist, near1)
    return np.exp(-((d1 + d2) ** 2) / (2.0 * sigma**2))


def with_weight_map(
    dataset: tf.data.Dataset,
    object_classes: Sequence[int] | None = None,
    class_weights: Sequence[float] | None = None,
    w0: float = 10.0,
    sigma: float = 5.0,
) -> tf.data.Dataset:
    """Add U-Net weight maps as per-pixel sample weights to batches of (image, mask).

    The map is computed after augmentation (on the mask the model actually sees), in
    parallel tf.data workers; ``model.fit`` multiplies the per-pixel loss by it.

    Args:
        dataset: batches of (float image [B, H, W, C], int32 mask [B, H, W, 1]).
        object_classes, class_weights, w0, sigma: see :func:`unet_weight_map`.

    Returns:
        Batches of (image, mask, float32 weights [B, H, W]).

    Examples:
        >>> from unet_tf.config import DataConfig
        >>> from unet_tf.data import make_dataset
        >>> ds, _ = make_dataset(DataConfig(num_examples=4, batch_size=2, image_size=(32, 32)))
        >>> x, y, w = next(iter(with_weight_map(ds)))
        >>> tuple(w.shape)
        (2, 32, 32)
    """
    classes = None if object_classes is None else [int(c) for c in object_classes]
    table = None if class_weights is None else [float(c) for c in class_weights]

    def batch_maps(masks: np.ndarray) -> np.ndarray:
        return np.stack([
            unet_weight_map(m, classes, class_weights=table, w0=w0, sigma=sigma) for m in masks
        ])

    def add(images, masks):
        weights = tf.numpy_function(batch_maps, [masks], tf.float32, stateful=False)
        weights.set_shape(masks.shape[:-1])
        return images, masks, weights

    return dataset.map(add, num_parallel_calls=tf.data.AUTOTUNE)
