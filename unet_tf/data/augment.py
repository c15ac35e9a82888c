"""Augmentations applied to an image and its mask together, deterministic under a seed.

Geometric transforms (flips, 90-degree rotations, scale + crop) run on the image and the
mask stacked along channels, so they can never drift apart; the mask is resized with nearest
neighbour so labels never blend. Colour transforms touch the image only.
"""

from __future__ import annotations

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
        (image, mask) with the input shapes and dtypes.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=8)
    height, width = image.shape[0], image.shape[1]
    channels = image.shape[-1]
    stacked = tf.concat([image, tf.cast(mask, tf.float32)], axis=-1)

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

    image = stacked[..., :channels]
    mask = tf.cast(tf.round(stacked[..., channels:]), tf.int32)
    if config.brightness:
        image = tf.image.stateless_random_brightness(image, config.brightness, seeds[5])
    if config.contrast:
        image = tf.image.stateless_random_contrast(
            image, 1 - config.contrast, 1 + config.contrast, seeds[6]
        )
    image = tf.clip_by_value(image, 0.0, 1.0)
    image.set_shape([height, width, channels])
    mask.set_shape([height, width, 1])
    return image, mask
