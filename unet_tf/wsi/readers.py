"""Images larger than memory, read lazily: (OME-)TIFF through tifffile's Zarr store, Zarr and
OME-Zarr arrays, and plain image files (which fit in memory and are read at once).

:func:`open_image` returns a :class:`LazyImage`: its ``shape`` is (height, width) and
``read(rows, cols)`` returns one region as uint8 RGB, converted the way
:func:`unet_tf.imageio.as_rgb` converts a whole image (gray repeated, 16 bits ``>> 8``). Only
the chunks (TIFF tiles or strips, Zarr chunks) that a region touches are read.

Examples:
    >>> import numpy as np, tifffile, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "slide.tif")
    >>> tifffile.imwrite(path, np.full((300, 500), 9, np.uint8), tile=(128, 128))
    >>> image = open_image(path)
    >>> image.shape, image.read(slice(0, 2), slice(0, 3)).shape
    ((300, 500), (2, 3, 3))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unet_tf.data.files import IMAGE_SUFFIXES
from unet_tf.imageio import as_rgb, read_image

ZARR_SUFFIX = ".zarr"  # also ".ome.zarr"
TIFF_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".svs", ".ndpi", ".scn")


@dataclass
class LazyImage:
    """One 2-D image (level of a pyramid) whose pixels stay on disk until read.

    Attributes:
        array: anything indexable like NumPy (a zarr array, or a NumPy array).
        axes: one letter per dimension of ``array``: ``y``, ``x`` and optionally ``c``
            (channels: TIFF's ``S`` or ``C``).
        path: where it came from (for messages).
        level: the pyramid level read (0 = full resolution).
        levels: how many levels the file has.
    """

    array: Any
    axes: str
    path: Path
    level: int = 0
    levels: int = 1

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return (int(self.array.shape[self.axes.index("y")]),
                int(self.array.shape[self.axes.index("x")]))

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """The region ``[rows, cols]`` (steps of 1, inside the image) as uint8 RGB [h, w, 3]."""
        index = tuple(rows if a == "y" else cols if a == "x" else slice(None)
                      for a in self.axes)
        region = np.asarray(self.array[index])
        order = [self.axes.index(a) for a in "yxc" if a in self.axes]
        return as_rgb(np.transpose(region, order))


def open_image(path: str | Path, level: int | None = None) -> LazyImage:
    """Open an image lazily: TIFF / OME-TIFF (tiled, pyramidal), Zarr / OME-Zarr, or a plain
    image file.

    Args:
        path: the file (``.tif``, ``.tiff``, ``.ome.tif``, ``.png``, ``.jpg``, ...) or the
            Zarr folder (``.zarr``, ``.ome.zarr``).
        level: pyramid level (0 = full resolution; default 0). Files without a pyramid have
            level 0 only.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: not an image, no such level, or not a 2-D image with 1, 3 or 4 channels;
            the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    name = path.name.lower()
    if name.endswith(ZARR_SUFFIX):
        levels, axes = _zarr_levels(path)
    elif name.endswith(TIFF_SUFFIXES):
        levels, axes = _tiff_levels(path)
    elif name.endswith(IMAGE_SUFFIXES):
        levels, axes = [read_image(path)], "yxc"
    else:
        raise ValueError(f"{path}: not a TIFF, Zarr or image file (expected one of "
                         f"{', '.join(TIFF_SUFFIXES + (ZARR_SUFFIX,) + IMAGE_SUFFIXES)})")
    level = 0 if level is None else level
    if not 0 <= level < len(levels):
        raise ValueError(f"{path} has {len(levels)} pyramid level(s) (0 to {len(levels) - 1}); "
                         f"got --level {level}")
    image = LazyImage(levels[level], axes, path, level, len(levels))
    _check_axes(image)
    return image


def _tiff_levels(path: Path) -> tuple[list[Any], str]:
    import tifffile
    import zarr

    try:
        with tifffile.TiffFile(path) as tif:
            axes = tif.series[0].axes
        store = tifffile.imread(path, aszarr=True)  # holds the file open for lazy reads
    except (tifffile.TiffFileError, IndexError, ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a readable TIFF image ({exc})") from None
    axes = axes.lower().replace("s", "c")
    opened = zarr.open(store, mode="r")
    if isinstance(opened, zarr.Group):  # a pyramid: arrays "0", "1", ... largest first
        keys = sorted(opened.array_keys(), key=int)
        return [opened[k] for k in keys], axes
    return [opened], axes


def _zarr_levels(path: Path) -> tuple[list[Any], str]:
    import zarr

    try:
        opened = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises several kinds for a folder that is not Zarr
        raise ValueError(f"{path}: not a readable Zarr array or group ({exc})") from None
    if isinstance(opened, zarr.Array):
        return [opened], _guess_axes(opened.shape, path)
    multiscales = opened.attrs.get("multiscales") or opened.attrs.get("ome", {}).get(
        "multiscales")
    if not multiscales:
        raise ValueError(f"{path}: a Zarr group without OME-Zarr 'multiscales' metadata; pass "
                         "the path of its image array or of an OME-Zarr image")
    scales = multiscales[0]
    axes = "".join(a["name"] if isinstance(a, dict) else a for a in scales["axes"])
    levels = [opened[d["path"]] for d in scales["datasets"]]
    return [_squeeze(a, axes) for a in levels], "".join(c for c in axes if c in "cyx")


def _squeeze(array: Any, axes: str) -> Any:
    """OME-Zarr's t and z axes (length 1 for a 2-D image) dropped by indexing lazily."""
    extra = {a: n for a, n in zip(axes, array.shape, strict=True) if a not in "cyx"}
    if any(n != 1 for n in extra.values()):
        raise ValueError(f"only 2-D images are segmented; this one has axes {axes} "
                         f"with sizes {dict(zip(axes, array.shape, strict=True))}")
    if not extra:
        return array
    return _Indexed(array, tuple(0 if a not in "cyx" else slice(None) for a in axes))


class _Indexed:
    """A lazy view with some leading axes fixed at 0 (a zarr array's singleton t / z)."""

    def __init__(self, array: Any, fixed: tuple):
        self.array, self.fixed = array, fixed
        self.shape = tuple(n for n, f in zip(array.shape, fixed, strict=True)
                           if isinstance(f, slice))

    def __getitem__(self, index: tuple) -> np.ndarray:
        it = iter(index)
        return self.array[tuple(next(it) if isinstance(f, slice) else f for f in self.fixed)]


def _guess_axes(shape: tuple, path: Path) -> str:
    if len(shape) == 2:
        return "yx"
    if len(shape) == 3 and shape[-1] in (1, 3, 4):
        return "yxc"
    if len(shape) == 3 and shape[0] in (1, 3, 4):
        return "cyx"
    raise ValueError(f"{path}: expected a 2-D image [y, x], [y, x, c] or [c, y, x] with 1, 3 "
                     f"or 4 channels; got an array of shape {tuple(shape)}")


def _check_axes(image: LazyImage) -> None:
    axes, shape = image.axes, image.array.shape
    ok = set(axes) <= set("cyx") and "y" in axes and "x" in axes and len(axes) == len(shape)
    if ok and "c" in axes:
        ok = shape[axes.index("c")] in (1, 3, 4)
    if not ok or 0 in shape:
        raise ValueError(f"{image.path}: expected a 2-D image with 1, 3 or 4 channels; got axes "
                         f"{axes!r} of shape {tuple(shape)}")
