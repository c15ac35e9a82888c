"""The one image preprocessing shared by training, evaluation, export and prediction.

Training/serving skew is a bug: every path from pixels to model input goes through
:func:`preprocess_image`, and every path from a label image to a training target goes
through :func:`resize_mask`.
"""

from __future__ import annotations

import tensorflow as tf

# Written into every config.json so that anything serving the model can reproduce it.
PREPROCESSING = {"scale": 1.0 / 255.0, "offset": 0.0, "resize": "bilinear", "layout": "NHWC"}


def resize_image(image: tf.Tensor, size: tuple[int, int] | None, channels: int) -> tf.Tensor:
    """Float32 pixels 0..255 with the model's channels, resized to ``size`` (not scaled).

    The geometric half of :func:`preprocess_image`; TFLite files, which scale pixels
    themselves, are fed this.

    Args:
        image: [H, W, C] or [N, H, W, C], any numeric dtype, values 0..255.
        size: (height, width) to resize to (bilinear, antialiased when shrinking), or None
            to keep the size.
        channels: channels the model expects; RGB(A) and grayscale are converted as needed.

    Examples:
        >>> import numpy as np
        >>> x = resize_image(np.full((50, 70, 3), 255, np.uint8), (32, 32), 1)
        >>> tuple(x.shape), float(x.numpy().max()) <= 255.01
        ((32, 32, 1), True)
    """
    image = tf.cast(tf.convert_to_tensor(image), tf.float32)
    have = image.shape[-1]
    if have == 4:  # RGBA: drop alpha
        image = image[..., :3]
        have = 3
    if have == 3 and channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    elif have == 1 and channels == 3:
        image = tf.image.grayscale_to_rgb(image)
    elif have is not None and have != channels:
        raise ValueError(f"Cannot turn an image with {have} channels into {channels} channels")
    if size is not None:
        image = tf.image.resize(image, size, method="bilinear", antialias=True)
    return image


def scale_pixels(pixels: tf.Tensor) -> tf.Tensor:
    """Pixels 0..255 -> model input (the scaling half of :func:`preprocess_image`)."""
    return tf.cast(pixels, tf.float32) * PREPROCESSING["scale"] + PREPROCESSING["offset"]


def preprocess_image(image: tf.Tensor, size: tuple[int, int] | None, channels: int) -> tf.Tensor:
    """Turn uint8 (or float 0..255) images into float32 model input in [0, 1].

    :func:`resize_image` (channels, bilinear resize) followed by :func:`scale_pixels`.

    Args:
        image: [H, W, C] or [N, H, W, C], any numeric dtype, values 0..255.
        size: (height, width) to resize to, or None to keep the size.
        channels: channels the model expects; RGB and grayscale are converted as needed.

    Examples:
        >>> import numpy as np
        >>> x = preprocess_image(np.zeros((300, 200, 3), np.uint8), (128, 128), 3)
        >>> tuple(x.shape), x.dtype.name
        ((128, 128, 3), 'float32')
    """
    return scale_pixels(resize_image(image, size, channels))


def resize_mask(mask: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Resize an integer label mask [..., H, W, 1] with nearest neighbour (labels never blend)."""
    return tf.cast(tf.image.resize(mask, size, method="nearest"), tf.int32)
