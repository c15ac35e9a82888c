"""Augmentations applied to an image and its mask together, deterministic under a seed.

Geometric transforms (flips, 90-degree rotations, scale + crop, rotation by any angle and the
U-Net paper's elastic deformation) run on the image and the mask stacked along channels, so
they can never drift apart; masks are resampled with nearest neighbour so labels never blend.
Colour transforms touch the image only.

Why not Keras' ``RandomElasticTransform``: it has no segmentation-mask transform (masks
would pass through undeformed), it draws its field from a stateful seed generator (the image
and a mask transformed in a second call would get different fields), and its smoothing
sigma is 5% of the image size rather than the paper's coarse grid. The elastic deformation
here follows the paper: displacements drawn on a coarse grid (3 x 3, standard deviation
10 px), bicubically interpolated to every pixel, then one resampling with reflected borders
(bilinear for the image, nearest for the mask), combined with the rotation so that the
image is interpolated only once.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from unet_tf.config import AugmentConfig


def augment_pair(image: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor, config: AugmentConfig):
    """Augment one float image [H, W, C] in [0, 1] and its int32 mask [H, W, 1].

    Args:
        image: preprocessed image.
        mask: class indices (255 = ignore).
        seed: int32/int64 tensor of shape [2]; the same seed gives the same result.
        config: which augmentations to apply.

    Returns:
        (image, mask) with the input dtypes, and the input size or ``config.crop``.

    Examples:
        >>> import numpy as np
        >>> cfg = AugmentConfig(rotate=15.0, elastic=10.0, crop=(32, 32))
        >>> image, mask = np.zeros((64, 64, 3), "float32"), np.ones((64, 64, 1), "int32")
        >>> out = augment_pair(image, mask, tf.constant([0, 1]), cfg)
        >>> tuple(out[0].shape), tuple(out[1].shape), int(out[1].numpy().max())
        ((32, 32, 3), (32, 32, 1), 1)
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=8)
    # new augmentations draw from seeds[7] so that older ones keep their random streams
    extra = tf.random.experimental.stateless_split(seeds[7], num=4)
    height, width = image.shape[0], image.shape[1]
    channels = image.shape[-1]
    crop_h, crop_w = config.crop or (height, width)
    if crop_h > height or crop_w > width:
        raise ValueError(
            f"crop {crop_h}x{crop_w} is larger than the image size {height}x{width}; "
            "crop to at most the data's image_size"
        )
    stacked = tf.concat([image, tf.cast(mask, tf.float32)], axis=-1)
    stacked = _flip_rotate_zoom(stacked, seeds, config, height, width, channels)
    stacked = _warp_and_crop(stacked, extra, config, height, width, channels)
    image = _colour(stacked[..., :channels], seeds, extra, config)
    mask = tf.cast(tf.round(stacked[..., channels:]), tf.int32)
    image.set_shape([crop_h, crop_w, channels])
    mask.set_shape([crop_h, crop_w, 1])
    return image, mask


def _flip_rotate_zoom(stacked: tf.Tensor, seeds: tf.Tensor, config: AugmentConfig,
                      height: int, width: int, channels: int) -> tf.Tensor:
    """Image and mask channels stacked [H, W, C + 1], flipped, turned by multiples of 90
    degrees and zoomed in (then cropped back to H x W): the same transform for both."""
    if config.flip:
        stacked = tf.image.stateless_random_flip_left_right(stacked, seeds[0])
    if config.vertical_flip:
        stacked = tf.image.stateless_random_flip_up_down(stacked, seeds[1])
    if config.rotate90:
        if height == width:
            k = tf.random.stateless_uniform([], seeds[2], 0, 4, tf.int32)
        else:  # a non-square image keeps its shape only under 0 or 180 degrees
            k = 2 * tf.random.stateless_uniform([], seeds[2], 0, 2, tf.int32)
        stacked = tf.image.rot90(stacked, k)
    low, high = config.scale
    if high > 1.0 or low != 1.0:
        factor = tf.random.stateless_uniform([], seeds[3], max(low, 1.0), high)
        new_size = tf.cast(tf.math.ceil(factor * tf.cast([height, width], tf.float32)), tf.int32)
        img = tf.image.resize(stacked[..., :channels], new_size, method="bilinear")
        msk = tf.image.resize(stacked[..., channels:], new_size, method="nearest")
        stacked = tf.image.stateless_random_crop(
            tf.concat([img, msk], -1), [height, width, channels + 1], seeds[4]
        )
    return stacked


def _warp_and_crop(stacked: tf.Tensor, extra: tf.Tensor, config: AugmentConfig,
                   height: int, width: int, channels: int) -> tf.Tensor:
    """Stacked image and mask rotated by any angle and elastically deformed (bilinear for
    the image, nearest for the mask), and cropped to ``config.crop``."""
    crop_h, crop_w = config.crop or (height, width)
    if config.rotate or config.elastic:
        coords = warp_coordinates(
            height, width, extra[0], config.rotate, config.elastic, config.elastic_grid
        )
        if config.crop is not None:
            # Warp only the crop: crop the source coordinates with the seed (and so the
            # offsets) that cropping the warped image would use. The same pixels, and 4x
            # less resampling for 256 px crops of 512 px images.
            coords = tf.transpose(tf.image.stateless_random_crop(
                tf.transpose(coords, [1, 2, 0]), [crop_h, crop_w, 2], extra[3]), [2, 0, 1])
        read = resample if config.elastic else resample_affine  # rotation alone is affine
        return tf.concat([
            read(stacked[..., :channels], coords, order=1),
            read(stacked[..., channels:], coords, order=0),
        ], axis=-1)
    if config.crop is not None:
        return tf.image.stateless_random_crop(stacked, [crop_h, crop_w, channels + 1], extra[3])
    return stacked


def _colour(image: tf.Tensor, seeds: tf.Tensor, extra: tf.Tensor,
            config: AugmentConfig) -> tf.Tensor:
    """The image's saturation and hue (RGB only), brightness and contrast, clipped to [0, 1]."""
    channels = image.shape[-1]
    if channels == 3 and config.saturation:
        image = tf.image.stateless_random_saturation(
            image, 1 - config.saturation, 1 + config.saturation, extra[1]
        )
    if channels == 3 and config.hue:
        image = tf.image.stateless_random_hue(image, config.hue, extra[2])
    if config.brightness:
        image = tf.image.stateless_random_brightness(image, config.brightness, seeds[5])
    if config.contrast:
        image = tf.image.stateless_random_contrast(
            image, 1 - config.contrast, 1 + config.contrast, seeds[6]
        )
    return tf.clip_by_value(image, 0.0, 1.0)


def warp_coordinates(
    height: int,
    width: int,
    seed: tf.Tensor,
    max_degrees: float = 0.0,
    elastic_sigma: float = 0.0,
    grid: int = 3,
) -> tf.Tensor:
    """Source coordinates [2, H, W] of a random rotation plus elastic deformation.

    Output pixel (y, x) is read from the returned (row, column): the rotation about the image
    centre by an angle drawn from [-max_degrees, max_degrees], plus a displacement field
    drawn as N(0, elastic_sigma^2) pixels on a ``grid`` x ``grid`` lattice and bicubically
    interpolated to every pixel (Ronneberger et al. 2015, section 3.1).

    Args:
        height, width: output size.
        seed: stateless seed, shape [2].
        max_degrees: largest rotation angle; 0 disables rotation.
        elastic_sigma: displacement standard deviation in pixels; 0 disables the field.
        grid: lattice points per side (>= 2).

    Examples:
        >>> c = warp_coordinates(4, 4, tf.constant([1, 2]))  # nothing to do: the identity
        >>> bool(tf.reduce_all(c[0] == tf.range(4.0)[:, None]))
        True
    """
    if grid < 2:
        raise ValueError(f"elastic_grid must be >= 2 lattice points per side; got {grid}")
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=2)
    rows, cols = tf.meshgrid(
        tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32), indexing="ij"
    )
    if max_degrees:
        angle = tf.random.stateless_uniform(
            [], seeds[0], -max_degrees, max_degrees) * (math.pi / 180.0)
        cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
        cos, sin = tf.cos(angle), tf.sin(angle)
        rows, cols = (
            cy + cos * (rows - cy) - sin * (cols - cx),
            cx + sin * (rows - cy) + cos * (cols - cx),
        )
    if elastic_sigma:
        coarse = tf.random.stateless_normal([grid, grid, 2], seeds[1], stddev=elastic_sigma)
        field = tf.image.resize(coarse, [height, width], method="bicubic")
        rows, cols = rows + field[..., 0], cols + field[..., 1]
    return tf.stack([rows, cols])


def resample(image: tf.Tensor, coords: tf.Tensor, order: int) -> tf.Tensor:
    """Read [H, W, C] at ``coords`` [2, H, W] (order 1 bilinear, 0 nearest), reflected edges."""
    channels = image.shape[-1]
    shape = tf.shape(coords[0])
    channel = tf.broadcast_to(tf.range(channels, dtype=tf.float32), [shape[0], shape[1], channels])
    full = tf.stack([
        tf.broadcast_to(coords[0][..., None], tf.shape(channel)),
        tf.broadcast_to(coords[1][..., None], tf.shape(channel)),
        channel,
    ])
    return keras.ops.image.map_coordinates(image, full, order=order, fill_mode="reflect")


def resample_affine(image: tf.Tensor, coords: tf.Tensor, order: int) -> tf.Tensor:
    """:func:`resample` for ``coords`` that are an affine map of the output pixel (a rotation,
    cropped or not), with TensorFlow's image-transform kernel, 10x faster than the general
    gather that elastic fields need. Pixels read from inside the image are the same (tested);
    beyond its edges this reflects about the edge (d c b a | a b c d), where Keras'
    ``map_coordinates`` mirrors about the first pixel (d c b | a b c d)."""
    if coords.shape[1] is not None and coords.shape[2] is not None and min(coords.shape[1:]) < 2:
        return resample(image, coords, order)  # a single row or column has no second point
    rows, cols = coords[0], coords[1]
    # the map's value at output pixel (0, 0) and its steps along x (columns) and y (rows)
    transform = tf.stack([
        cols[0, 1] - cols[0, 0], cols[1, 0] - cols[0, 0], cols[0, 0],
        rows[0, 1] - rows[0, 0], rows[1, 0] - rows[0, 0], rows[0, 0], 0.0, 0.0,
    ])[None]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform, output_shape=tf.shape(rows),
        fill_value=0.0, interpolation="BILINEAR" if order == 1 else "NEAREST",
        fill_mode="REFLECT")[0]


def reflect_pad_to(image: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Mirror-pad [H, W, C] on all sides to at least ``height`` x ``width`` (any deficit).

    The padding repeats the reflection as often as needed, so even an image much smaller
    than the target is padded (``tf.pad``'s REFLECT mode allows less than one image size).

    Examples:
        >>> x = tf.reshape(tf.range(3), [1, 3, 1])
        >>> reflect_pad_to(x, 1, 7)[0, :, 0].numpy().tolist()
        [2, 1, 0, 1, 2, 1, 0]
    """

    def indices(size, target):
        pad = tf.maximum(target - size, 0)
        before = pad // 2
        i = tf.range(-before, size + pad - before)
        period = tf.maximum(2 * (size - 1), 1)
        i = tf.math.floormod(i, period)
        return tf.where(i >= size, period - i, i)

    shape = tf.shape(image)
    image = tf.gather(image, indices(shape[0], height), axis=0)
    return tf.gather(image, indices(shape[1], width), axis=1)


def crop_pair(image: tf.Tensor, mask: tf.Tensor, size: tuple[int, int], seed=None):
    """Crop an image [H, W, C] and its mask [H, W, 1] together to ``size`` at native scale.

    Images smaller than ``size`` are mirror-padded first (:func:`reflect_pad_to`). With a
    stateless ``seed`` the crop is random (training); without one it is the centre crop
    (validation: deterministic, one shape per batch).

    Examples:
        >>> img, msk = tf.zeros([100, 300, 3], tf.uint8), tf.ones([100, 300, 1], tf.int32)
        >>> [tuple(t.shape) for t in crop_pair(img, msk, (128, 128), tf.constant([0, 1]))]
        [(128, 128, 3), (128, 128, 1)]
    """
    height, width = size
    channels = image.shape[-1]
    stacked = tf.concat([tf.cast(image, tf.int32), tf.cast(mask, tf.int32)], axis=-1)
    stacked = reflect_pad_to(stacked, height, width)
    if seed is None:
        shape = tf.shape(stacked)
        stacked = tf.image.crop_to_bounding_box(
            stacked, (shape[0] - height) // 2, (shape[1] - width) // 2, height, width
        )
    else:
        stacked = tf.image.stateless_random_crop(
            stacked, [height, width, channels + 1], tf.cast(seed, tf.int64)
        )
    out_image = tf.cast(stacked[..., :channels], image.dtype)
    out_mask = tf.cast(stacked[..., channels:], mask.dtype)
    out_image.set_shape([height, width, channels])
    out_mask.set_shape([height, width, 1])
    return out_image, out_mask
