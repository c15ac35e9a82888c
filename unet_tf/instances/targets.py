"""Training targets derived from instance label images (0 background, k = k-th object).

The instance model learns three classes: background, object interior and object boundary.
The boundary is the inner rim of every object (``width`` pixels wide, so twice that where
objects touch), which separates touching objects; their interiors are then disconnected,
and a watershed from the interiors (:func:`unet_tf.instances.label`) recovers the objects.
NumPy and SciPy only.
"""

from __future__ import annotations

import numpy as np

from unet_tf.config import BOUNDARY_WIDTH

INSTANCE_CLASS_NAMES = ("background", "interior", "boundary")
FOREGROUND_CLASS_NAMES = ("background", "foreground")  # the semantic-only baseline
TARGETS = {"boundary": INSTANCE_CLASS_NAMES, "foreground": FOREGROUND_CLASS_NAMES}


def _as_2d(instances: np.ndarray) -> np.ndarray:
    instances = np.asarray(instances)
    if instances.ndim == 3 and instances.shape[-1] == 1:
        instances = instances[..., 0]
    if instances.ndim != 2:
        raise ValueError(
            f"instance ids must be [H, W] or [H, W, 1]; got shape {instances.shape}"
        )
    return instances


def boundary_target(instances: np.ndarray, width: int = BOUNDARY_WIDTH) -> np.ndarray:
    """Classes 0 background / 1 interior / 2 boundary of an instance label image.

    Args:
        instances: integer ids [H, W] (or [H, W, 1]), 0 = background.
        width: rim width in pixels: an object pixel is boundary when a pixel of another id
            (background or another object) lies within ``width`` steps (a disc of that
            radius; ``width=1`` is the 4-connected inner contour).

    Returns:
        int32 [H, W] classes: 2 on every object's rim, 1 on the rest of the object, 0 outside.

    Examples:
        >>> ids = np.zeros((6, 8), np.uint16); ids[1:5, 1:4] = 1; ids[1:5, 4:7] = 2
        >>> boundary_target(ids, width=1)[2]  # two touching squares: 2 px between them
        array([0, 2, 1, 2, 2, 1, 2, 0], dtype=int32)
    """
    from scipy import ndimage

    instances = _as_2d(instances)
    if int(width) < 1:
        raise ValueError(f"boundary width is at least 1 pixel; got {width}")
    radius = int(width)
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disc = yy**2 + xx**2 <= radius**2
    # an object pixel is interior when every pixel of the disc around it has its id; the
    # border counts as more of the image (mirror), so objects cut by the edge keep interiors
    ids = instances.astype(np.int64)
    same = ndimage.maximum_filter(ids, footprint=disc, mode="mirror") == ndimage.minimum_filter(
        ids, footprint=disc, mode="mirror"
    )
    target = (instances > 0).astype(np.int32)
    target[(instances > 0) & ~same] = 2
    return target


def foreground_target(instances: np.ndarray) -> np.ndarray:
    """Classes 0 background / 1 foreground (any object): the semantic-only target.

    Examples:
        >>> foreground_target(np.array([[0, 3], [7, 0]]))
        array([[0, 1],
               [1, 0]], dtype=int32)
    """
    return (_as_2d(instances) > 0).astype(np.int32)


def make_target(
    instances: np.ndarray, target: str = "boundary", width: int = BOUNDARY_WIDTH
) -> np.ndarray:
    """The training target called ``target`` ("boundary" or "foreground"), int32 [H, W]."""
    if target == "boundary":
        return boundary_target(instances, width)
    if target == "foreground":
        return foreground_target(instances)
    raise ValueError(f"unknown instance target {target!r}; choose one of {sorted(TARGETS)}")
