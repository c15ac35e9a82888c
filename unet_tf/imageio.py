"""Reading images for prediction the way training reads them: uint8 RGB, upright.

Examples:
    >>> import numpy as np
    >>> as_rgb(np.full((4, 5), 7, np.uint8)).shape
    (4, 5, 3)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# Images bigger than this are refused by Pillow as possible decompression bombs unless the
# caller raises the limit; 30 000 x 30 000 pixels covers whole-slide tiles people segment.
MAX_PIXELS = 30_000 * 30_000


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB [H, W, 3], turned upright by its EXIF orientation.

    Phone photos are often stored sideways with an EXIF tag saying how to rotate them;
    ``PIL.ImageOps.exif_transpose`` applies it, so masks match what people see. 16-bit
    images are reduced to 8 bits as TensorFlow's decoder does for training (``value >> 8``),
    palette and grayscale images become RGB, alpha is dropped.

    Examples:
        >>> read_image("cat.jpg").shape  # doctest: +SKIP
        (480, 640, 3)
    """
    from PIL import Image, ImageOps

    path = Path(path)
    Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, MAX_PIXELS)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit (or 32-bit) gray
                gray = np.asarray(im).astype(np.int64)
                bits = 16 if im.mode.startswith("I;16") or gray.max() < 65536 else 32
                gray = np.clip(gray >> (bits - 8), 0, 255).astype(np.uint8)
                return np.repeat(gray[..., None], 3, axis=-1)
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder; pass image files") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from exc


def as_rgb(image: Any) -> np.ndarray:
    """An image array or file path -> uint8 RGB [H, W, 3] (gray repeated, alpha dropped).

    Examples:
        >>> as_rgb(np.zeros((2, 3, 4), np.uint8)).shape
        (2, 3, 3)
    """
    if isinstance(image, (str, Path)):
        return read_image(image)
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4) or 0 in array.shape:
        raise ValueError(
            f"expected an image [H, W], [H, W, 1], [H, W, 3] or [H, W, 4]; got shape {array.shape}"
        )
    if array.dtype == np.uint16:  # as read_image and TensorFlow's decoder do
        array = (array >> 8).astype(np.uint8)
    elif array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"expected numeric pixels; got dtype {array.dtype}")
        if not np.all(np.isfinite(array)):
            raise ValueError("the image holds NaN or infinite values")
        if np.issubdtype(array.dtype, np.floating) and array.max() <= 1.0:
            raise ValueError(
                "got a float image with values in [0, 1]; pass uint8 pixels 0..255 "
                "(e.g. (image * 255).astype('uint8'))"
            )
        array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array[..., :3])
