"""The U-Net of Ronneberger et al. (2015) as a Keras functional model of built-in layers.

Encoder: double 3x3 convolutions and 2x2 max-pooling; decoder: 2x2 stride-2
``Conv2DTranspose`` upsampling, skip concatenation and double 3x3 convolutions; a 1x1 head
that returns logits (softmax and argmax belong to prediction and serving). ``padding="same"``
keeps the output the size of the input, so any height and width divisible by ``2**depth``
work. With ``output_stride=2`` a stride-2 convolution replaces the first (full-resolution)
block, the decoder ends at half resolution and the logits are upsampled bilinearly.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from unet_tf.config import ModelConfig


def conv_block(x, filters: int, name: str, config: ModelConfig):
    """Two 3x3 convolutions (+ batch norm) + ReLU, with an optional residual shortcut."""
    shortcut = x
    for i in (1, 2):
        x = layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=not config.batch_norm,
            kernel_initializer=config.kernel_initializer,
            name=f"{name}_conv{i}",
        )(x)
        if config.batch_norm:
            x = layers.BatchNormalization(
                momentum=config.batch_norm_momentum, name=f"{name}_bn{i}"
            )(x)
        if i == 2 and config.residual:
            shortcut = layers.Conv2D(filters, 1, padding="same", name=f"{name}_proj")(shortcut)
            x = layers.Add(name=f"{name}_add")([x, shortcut])
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def build_unet(config: ModelConfig, name: str = "unet") -> keras.Model:
    """Build a U-Net that maps (batch, H, W, C) float images to (batch, H, W, classes) logits.

    Args:
        config: the architecture, e.g. ``unet_tf.model_preset("f16", num_classes=3)``.
        name: the Keras model name.

    Returns:
        An uncompiled functional ``keras.Model`` with input shape (None, None, C).

    Examples:
        >>> from unet_tf import build_unet, model_preset
        >>> model = build_unet(model_preset("tiny", num_classes=2))
        >>> model.output_shape
        (None, None, None, 2)
    """
    inputs = keras.Input((None, None, config.input_channels), name="image")
    x = inputs
    first = 0 if config.output_stride == 1 else 1  # the level the decoder returns to
    skips = [None] * first
    if first:
        x = stem(x, config.base_filters * 2, config)
    for level in range(first, config.depth):
        x = conv_block(x, config.base_filters * 2**level, f"enc{level + 1}", config)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level + 1}_pool")(x)

    x = conv_block(x, config.base_filters * 2**config.depth, "bottleneck", config)
    if config.dropout:
        x = layers.SpatialDropout2D(config.dropout, name="bottleneck_dropout")(x)

    for level in reversed(range(first, config.depth)):
        filters = config.base_filters * 2**level
        x = layers.Conv2DTranspose(filters, 2, strides=2, name=f"dec{level + 1}_up")(x)
        x = layers.Concatenate(name=f"dec{level + 1}_concat")([skips[level], x])
        x = conv_block(x, filters, f"dec{level + 1}", config)

    logits = layers.Conv2D(config.num_classes, 1, name="head_logits", dtype="float32")(x)
    if first:
        logits = bilinear_upsample(logits, config.num_classes)
    return keras.Model(inputs, logits, name=name)


def bilinear_upsample(logits, channels: int):
    """x2 bilinear upsampling (half-pixel centres) as a frozen 4x4 stride-2 Conv2DTranspose.

    ``UpSampling2D(interpolation="bilinear")`` cannot trace images of unknown size (Keras
    3.15 compares the symbolic target size with 0), which the SavedModel's tile signature
    and native-resolution runs need; a transposed convolution with the bilinear weights
    [1/4, 3/4, 3/4, 1/4] (outer product, one per channel) computes the same values away from
    the outermost pixel, where the missing neighbour scales the logits by 3/4 (the argmax is
    unchanged).
    """
    up = layers.Conv2DTranspose(
        channels, 4, strides=2, padding="same", use_bias=False, trainable=False,
        name="head_upsample", dtype="float32",
    )
    out = up(logits)
    taps = np.array([0.25, 0.75, 0.75, 0.25], "float32")
    kernel = np.zeros((4, 4, channels, channels), "float32")  # (h, w, out, in)
    for c in range(channels):
        kernel[:, :, c, c] = np.outer(taps, taps)
    up.set_weights([kernel])
    return out


def replace_head(model: keras.Model, num_classes: int) -> keras.Model:
    """The same U-Net with a new, freshly initialised head for ``num_classes`` classes.

    Every layer up to ``head_logits`` is shared with ``model`` (weights included): the way to
    fine-tune a trained model on data with other classes. A model with ``output_stride=2``
    keeps its bilinear x2 upsampling after the new head.

    Examples:
        >>> from unet_tf import build_unet, model_preset
        >>> pets = build_unet(model_preset("f12-os2", num_classes=3))
        >>> replace_head(pets, 2).output_shape
        (None, None, None, 2)
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2; received {num_classes}")
    names = {layer.name for layer in model.layers}
    if "head_logits" not in names:
        raise ValueError(f"{model.name!r} has no 'head_logits' layer: not a unet_tf U-Net")
    features = model.get_layer("head_logits").input
    logits = layers.Conv2D(num_classes, 1, name="head_logits", dtype="float32")(features)
    if "head_upsample" in names:
        logits = bilinear_upsample(logits, num_classes)
    return keras.Model(model.input, logits, name=model.name)


def stem(x, filters: int, config: ModelConfig):
    """A stride-2 3x3 convolution (+ batch norm) + ReLU in place of the full-resolution block
    (named ``enc1_stem*``: it is the encoder's first level, frozen with the other ``enc``)."""
    x = layers.Conv2D(
        filters,
        3,
        strides=2,
        padding="same",
        use_bias=not config.batch_norm,
        kernel_initializer=config.kernel_initializer,
        name="enc1_stem",
    )(x)
    if config.batch_norm:
        x = layers.BatchNormalization(momentum=config.batch_norm_momentum, name="enc1_stem_bn")(x)
    return layers.ReLU(name="enc1_stem_relu")(x)


def check_input_size(height: int, width: int, config: ModelConfig) -> None:
    """Raise a ValueError when (height, width) cannot pass through the U-Net.

    Examples:
        >>> from unet_tf import model_preset
        >>> check_input_size(128, 96, model_preset("f16"))  # both divisible by 16
    """
    multiple = config.size_multiple
    if height % multiple or width % multiple:
        padded_h = -(-height // multiple) * multiple
        padded_w = -(-width // multiple) * multiple
        raise ValueError(
            f"Input size {height}x{width} does not fit a U-Net of depth {config.depth}: "
            f"height and width must be divisible by {multiple}; pad or resize to "
            f"{padded_h}x{padded_w}."
        )
