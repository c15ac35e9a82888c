"""Background blur ("portrait mode") on top of any :class:`unet_tf.Predictor`.

The kept classes' probabilities make a soft mask: a ramp turns confident pixels fully sharp
or fully blurred while the uncertain band around the subject's outline stays in between,
and a Gaussian feather softens the seam. The background is blurred with a *masked*
(normalized) Gaussian, so the subject's colours do not bleed into a halo around it. Work
happens at the photo's own resolution; files are read upright (EXIF orientation applied)
and written upright, with their other EXIF data kept.

Examples:
    >>> from unet_tf.apps import blur_background
    >>> from unet_tf import Predictor
    >>> predictor = Predictor.from_path("saved_models/pets-export")  # doctest: +SKIP
    >>> result = blur_background("cat.jpg", predictor, keep=["pet"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from unet_tf.imageio import as_rgb
from unet_tf.predictors import Predictor


def keep_indices(keep: Sequence[str | int] | str, class_names: Sequence[str]) -> list[int]:
    """Class names or indices to keep sharp -> sorted indices.

    A string is a class name (case-insensitive), never an index: ``"0"`` is refused even
    when the model has a class 0, since a class may be named by a number. Python ints are
    indices (the command line's ``--keep`` takes names only).

    Examples:
        >>> keep_indices(["Pet", 2], ["pet", "background", "border"])
        [0, 2]
    """
    if isinstance(keep, (str, int, np.integer)):
        keep = [keep]
    names = [str(n) for n in class_names]
    lower = [n.lower() for n in names]
    # the example names a subject, not the background, when the model has one
    example = next((n for n in names if n.lower() != "background"), names[0] if names else "")
    indices = set()
    for item in keep:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not 0 <= int(item) < len(names):
                raise ValueError(
                    f"keep={int(item)} is not a class index of this model: its classes are "
                    f"0..{len(names) - 1} {names}; or name them, e.g. keep=[{example!r}]"
                )
            indices.add(int(item))
        elif str(item).lower() in lower:
            indices.add(lower.index(str(item).lower()))
        else:
            text = str(item).strip()
            if text.isdigit() and int(text) < len(names):  # an index typed as text
                name = names[int(text)]
                what = (f"--keep takes class names, not indices: class {text} is {name!r}, "
                        f"so --keep {name}")
            else:
                what = f"keep classes by name, e.g. --keep {example} (keep=[{example!r}])"
            raise ValueError(
                f"keep={item!r} is not one of the model's classes {names}; {what}")
    if not indices:
        raise ValueError(f"keep is empty; name classes to keep sharp from {names}, e.g. "
                         f"--keep {example}")
    return sorted(indices)


def gaussian_blur(array: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of float32 [H, W] or [H, W, C] with standard deviation ``sigma`` pixels.

    Large blurs are done at a reduced resolution (a Gaussian is smooth, so nothing is lost)
    to keep a 12-megapixel photo at well under a second.
    """
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    array = np.asarray(array, np.float32)
    if sigma <= 0:
        return array
    h, w = array.shape[:2]
    factor = max(1.0, sigma / 4.0)
    if factor < 1.5:
        axes = (sigma, sigma) + (0,) * (array.ndim - 2)
        return gaussian_filter(array, axes, mode="nearest", truncate=3.0)
    small = (max(1, round(w / factor)), max(1, round(h / factor)))
    channels = array[..., None] if array.ndim == 2 else array
    out = []
    for c in range(channels.shape[-1]):
        plane = Image.fromarray(np.ascontiguousarray(channels[..., c]), mode="F")
        reduced = np.asarray(plane.resize(small, Image.Resampling.BOX))
        reduced = gaussian_filter(reduced, sigma / factor, mode="nearest", truncate=3.0)
        out.append(np.asarray(Image.fromarray(reduced, mode="F").resize(
            (w, h), Image.Resampling.BILINEAR)))
    result = np.stack(out, axis=-1)
    return result[..., 0] if array.ndim == 2 else result


def soft_mask(probabilities: np.ndarray, keep: Sequence[int], feather: float,
              ramp: tuple[float, float] = (0.3, 0.7)) -> np.ndarray:
    """Probabilities [H, W, K] -> float32 alpha [H, W] in [0, 1] (1 = keep sharp).

    Args:
        probabilities: softmax output at the photo's size.
        keep: class indices to keep sharp.
        feather: Gaussian sigma of the edge, in pixels.
        ramp: kept-probability range mapped smoothly onto 0..1 (below: background).
    """
    p = np.sum(np.asarray(probabilities, np.float32)[..., list(keep)], axis=-1)
    low, high = ramp
    t = np.clip((p - low) / (high - low), 0.0, 1.0)
    alpha = t * t * (3.0 - 2.0 * t)  # smoothstep: no visible kink at the ends of the ramp
    return np.clip(gaussian_blur(alpha, feather), 0.0, 1.0)


def blur_background(
    image: Any,
    predictor: Predictor,
    keep: Sequence[str | int] | str,
    strength: float = 0.02,
    feather: float = 0.01,
    return_mask: bool = False,
    **predict_options: Any,
):
    """Blur everything but the kept classes, at the image's own resolution.

    Args:
        image: uint8 RGB [H, W, 3] (or gray / RGBA), or an image file path (read upright
            following its EXIF orientation).
        predictor: any :class:`~unet_tf.Predictor` (.keras, SavedModel, .tflite).
        keep: class names (or int indices) to keep sharp, e.g. ``["pet"]``.
        strength: blur sigma as a fraction of the image's shorter side (0.02 = 10 px on a
            500 px photo), so photos of any resolution look alike; 0 disables the blur.
        feather: sigma of the mask's soft edge, as a fraction of the shorter side.
        return_mask: also return the soft mask (float32 [H, W], 1 = kept sharp).
        **predict_options: passed to :meth:`unet_tf.Predictor.predict`, e.g. ``tile=512``.

    Returns:
        uint8 RGB [H, W, 3], or (image, mask).

    Examples:
        >>> out = blur_background(photo, predictor, keep=["pet"], strength=0.03)  # doctest: +SKIP
        >>> out.shape == photo.shape  # doctest: +SKIP
        True
    """
    if strength < 0 or feather < 0:
        raise ValueError(f"strength and feather must be >= 0; got {strength}, {feather}")
    rgb = as_rgb(image)
    indices = keep_indices(keep, predictor.class_names)
    _, probabilities = predictor.predict(rgb, return_probabilities=True, **predict_options)
    short = min(rgb.shape[:2])
    alpha = soft_mask(probabilities, indices, feather * short)
    sigma = strength * short
    image_f = rgb.astype(np.float32)
    # Normalized convolution: blur the background alone and divide by the blurred weight,
    # so the subject's colours are not smeared into the background around it.
    weight = 1.0 - alpha
    numerator = gaussian_blur(image_f * weight[..., None], sigma)
    denominator = gaussian_blur(weight, sigma)[..., None]
    plain = gaussian_blur(image_f, sigma)
    background = np.where(denominator > 1e-3, numerator / np.maximum(denominator, 1e-3), plain)
    result = alpha[..., None] * image_f + (1.0 - alpha[..., None]) * background
    result = np.clip(np.rint(result), 0, 255).astype(np.uint8)
    return (result, alpha) if return_mask else result
