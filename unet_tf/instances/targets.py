"""Training targets derived from instance label images (0 background, k = k-th object).

The instance model learns three classes: background, object interior and object boundary.
The boundary is the inner contour of every object (one pixel wide, so two pixels where
objects touch), which separates touching objects; their interiors are then disconnected,
and a watershed from the interiors (:func:`unet_tf.instances.label`) recovers the objects.
NumPy and scikit-image only.
"""

from __future__ import annotations

import numpy as np

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


def boundary_target(instances: np.ndarray) -> np.ndarray:
    """Classes 0 background / 1 interior / 2 boundary of an instance label image.

    Args:
        instances: integer ids [H, W] (or [H, W, 1]), 0 = background.

    Returns:
        int32 [H, W] classes: every object pixel on the object's inner contour (next to the
        background or to another object) is 2, the other object pixels are 1.

    Example:
        >>> ids = np.zeros((6, 8), np.uint16); ids[1:5, 1:4] = 1; ids[1:5, 4:7] = 2
        >>> boundary_target(ids)[2]  # two touching squares: 2 px of boundary between them
        array([0, 2, 1, 2, 2, 1, 2, 0], dtype=int32)
    """
    from skimage.segmentation import find_boundaries

    instances = _as_2d(instances)
    target = (instances > 0).astype(np.int32)
    target[find_boundaries(instances, mode="inner") & (instances > 0)] = 2
    return target


def foreground_target(instances: np.ndarray) -> np.ndarray:
    """Classes 0 background / 1 foreground (any object): the semantic-only target.

    Example:
        >>> foreground_target(np.array([[0, 3], [7, 0]]))
        array([[0, 1],
               [1, 0]], dtype=int32)
    """
    return (_as_2d(instances) > 0).astype(np.int32)


def make_target(instances: np.ndarray, target: str = "boundary") -> np.ndarray:
    """The training target called ``target`` ("boundary" or "foreground"), int32 [H, W]."""
    if target == "boundary":
        return boundary_target(instances)
    if target == "foreground":
        return foreground_target(instances)
    raise ValueError(f"unknown instance target {target!r}; choose one of {sorted(TARGETS)}")
