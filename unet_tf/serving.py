"""The one inference path: an image of any size -> logits at the image's own size.

Every consumer segments through these functions: the SavedModel's ``serving_default``
signature (:func:`serving_function`), every :class:`unet_tf.Predictor` and
:func:`unet_tf.evaluate`, which therefore scores exactly what a served model returns.

1. :func:`unet_tf.data.preprocess_image`, the function training used: channels, bilinear
   resize to the training size (or, for runs trained at native resolution, no resize and a
   mirror padding to a multiple of ``2**depth``), scaling to [0, 1];
2. the network (optionally averaged over flips and rotations, :func:`network_logits`);
3. the logits resized back to the image's size, bilinearly (:func:`resize_logits`), so
   class boundaries are interpolated at full resolution instead of blocky upsampled masks;
4. softmax and argmax (:func:`postprocess`).

TFLite files hold step 2 only (with the scaling inside); their predictor runs steps 1 and 3
around the interpreter with the same functions.

Examples:
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 1)])
    >>> logits = segment_logits(model, np.zeros((1, 50, 70, 3), np.uint8), (32, 32), 3)
    >>> tuple(logits.shape)
    (1, 50, 70, 2)
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from unet_tf.data.preprocess import preprocess_image

SERVING_INPUT = "images"  # name of the SavedModel signatures' input
TILE_SIGNATURE = "segment_tiles"  # the SavedModel signature for tiles at their pixel size
TTA_MODES = (False, True, "all", "flips")


def resize_logits(logits: tf.Tensor, size) -> tf.Tensor:
    """Bring logits [N, h, w, K] to an image's own size (bilinear on logits, then argmax)."""
    return tf.image.resize(tf.cast(logits, tf.float32), size, method="bilinear")


def postprocess(logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Logits [N, H, W, K] -> (uint8 mask [N, H, W], float32 probabilities [N, H, W, K]).

    Examples:
        >>> mask, probs = postprocess(tf.zeros([1, 20, 30, 3]))
        >>> tuple(mask.shape), tuple(probs.shape)
        ((1, 20, 30), (1, 20, 30, 3))
    """
    logits = tf.cast(logits, tf.float32)
    mask = tf.cast(tf.argmax(logits, axis=-1), tf.uint8)
    return mask, tf.nn.softmax(logits, axis=-1)


def network_logits(
    model, x: tf.Tensor, tta: bool | str = False, any_shape: bool = False
) -> tf.Tensor:
    """The model's logits on preprocessed input; with ``tta``, averaged over transforms.

    The paper averaged predictions over rotated and flipped copies. ``tta="flips"`` uses the
    image and its mirror (photos with an up: pets, street scenes); ``True`` / ``"all"`` adds
    90-degree rotations for square inputs (180 degrees only otherwise, unless ``any_shape``:
    native-resolution runs take inputs of any shape, so a 90-degree turn is fine there too).
    Each copy's softmax is transformed back before averaging; the result is the log of the mean
    probabilities, which are logits whose softmax is that mean, so TTA feeds the same
    resize/argmax steps.

    Examples:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(2, 1)])
        >>> x = np.random.rand(1, 8, 8, 1).astype("float32")
        >>> plain = tf.nn.softmax(network_logits(model, x))
        >>> bool(np.allclose(plain, tf.nn.softmax(network_logits(model, x, True)), atol=1e-5))
        True
    """
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}; got {tta!r}")
    if not tta:
        return tf.cast(model(x, training=False), tf.float32)
    height, width = x.shape[1], x.shape[2]
    square = tta != "flips" and (any_shape or (height is not None and height == width))
    rotations = (0, 1, 2, 3) if square else (0,) if tta == "flips" else (0, 2)
    copies = [(flip, k) for flip in (False, True) for k in rotations]
    # one model call per shape (upright, turned by 90 degrees): tracing a Keras model once
    # per copy made an 8-copy TTA spend more time building its graph than running it
    batch = tf.shape(x)[0]
    total = 0.0
    for turned in sorted({k % 2 for _, k in copies}):
        group = [(flip, k) for flip, k in copies if k % 2 == turned]
        stacked = tf.concat([tf.image.rot90(tf.image.flip_left_right(x) if flip else x, k)
                             for flip, k in group], axis=0)
        probs = tf.nn.softmax(tf.cast(model(stacked, training=False), tf.float32), axis=-1)
        for i, (flip, k) in enumerate(group):
            back = tf.image.rot90(probs[i * batch:(i + 1) * batch], -k % 4)
            total += tf.image.flip_left_right(back) if flip else back
    return tf.math.log(tf.maximum(total / len(copies), 1e-12))


def pad_to_multiple(x: tf.Tensor, multiple: int) -> tf.Tensor:
    """Mirror-pad [N, H, W, C] at the bottom and right to multiples of ``multiple``.

    Examples:
        >>> tuple(pad_to_multiple(tf.zeros([1, 30, 17, 1]), 16).shape)
        (1, 32, 32, 1)
    """
    shape = tf.shape(x)
    pad_h = -shape[1] % multiple
    pad_w = -shape[2] % multiple
    # SYMMETRIC allows a pad as large as the image (REFLECT one pixel less); tiny images
    # are repeated first so that any pad fits
    reps = tf.stack([1, 1 + pad_h // tf.maximum(shape[1], 1), 1 + pad_w // tf.maximum(shape[2], 1),
                     1])
    x = tf.cond(tf.reduce_any(reps > 1), lambda: tf.tile(x, reps), lambda: x)
    x = x[:, : shape[1] + pad_h, : shape[2] + pad_w]  # tiling may overshoot
    rest_h = shape[1] + pad_h - tf.shape(x)[1]
    rest_w = shape[2] + pad_w - tf.shape(x)[2]
    return tf.pad(x, [[0, 0], [0, rest_h], [0, rest_w], [0, 0]], mode="SYMMETRIC")


def segment_logits(
    model,
    images: tf.Tensor,
    input_size: Sequence[int] | None,
    channels: int,
    multiple: int = 1,
    tta: bool | str = False,
) -> tf.Tensor:
    """Images [N, H, W, C] (uint8 or float 0..255, any size) -> float32 logits [N, H, W, K].

    Args:
        model: a Keras model (or callable) returning logits.
        images: pixel values 0..255; RGB, RGBA or grayscale (converted to ``channels``).
        input_size: (height, width) the model was trained at; the image is resized to it
            and the logits back. None: the run was trained at native resolution; the image
            keeps its pixel size, mirror-padded to a multiple of ``multiple`` (and cropped
            back).
        channels: channels the model expects.
        multiple: 2**depth of the U-Net (native resolution only).
        tta: test-time augmentation, see :func:`network_logits`.
    """
    images = tf.convert_to_tensor(images)
    size = tf.shape(images)[1:3]
    if input_size is not None:
        x = preprocess_image(images, (int(input_size[0]), int(input_size[1])), channels)
        return resize_logits(network_logits(model, x, tta), size)
    x = preprocess_image(images, None, channels)
    logits = network_logits(model, pad_to_multiple(x, multiple), tta, any_shape=True)
    return logits[:, : size[0], : size[1]]


def serving_function(model, input_size: Sequence[int] | None, channels: int, multiple: int = 1,
                     tta: bool | str = False):
    """The SavedModel's ``serving_default``: uint8 images of any size -> mask, probabilities.

    Args:
        model: a Keras model returning logits.
        input_size: (height, width) the model was trained at (config.json ``input_size``),
            or None for runs trained at native resolution (see :func:`segment_logits`).
        channels: channels the model expects (1 for grayscale models, converted inside).
        multiple: 2**depth of the U-Net.
        tta: test-time augmentation (evaluation; exports serve without it).

    Returns:
        A Python function of ``images`` (uint8 [batch, height, width, 3]) returning
        ``{"mask": uint8 [batch, height, width], "probabilities": float32
        [batch, height, width, classes]}``, ready for ``tf.function`` or
        ``keras.export.ExportArchive.add_endpoint``.
    """

    def serve(images):
        mask, probabilities = postprocess(
            segment_logits(model, images, input_size, channels, multiple, tta))
        return {"mask": mask, "probabilities": probabilities}

    return serve


def tile_function(model, channels: int, multiple: int = 1, tta: bool | str = False):
    """The SavedModel's ``segment_tiles``: uint8 images at their own pixel size, no resize.

    Used for tiled inference (:mod:`unet_tf.tiling`): each tile is segmented at the pixel
    size it has, so a model trained at a pixel size segments a large image at that size.
    Same outputs as :func:`serving_function`.
    """
    return serving_function(model, None, channels, multiple, tta)


def serving_signature() -> tf.TensorSpec:
    """The input spec of both signatures: uint8 RGB images, any batch and size."""
    return tf.TensorSpec([None, None, None, 3], tf.uint8, name=SERVING_INPUT)
