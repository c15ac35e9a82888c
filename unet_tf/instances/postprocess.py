"""From per-pixel probabilities to objects: seeded watershed, connected components, a table.

The instance model predicts background / interior / boundary. Interiors of touching objects
are separated by the boundary class, so thresholded interior probability gives one marker
per object; a watershed of the interior probability then grows each marker over the
foreground (interior + boundary probability), which hands the boundary pixels back to their
objects. :func:`semantic_label` is the baseline without a boundary class: connected
components of the foreground, which merge touching objects. :func:`object_separator` picks
one of them for a model from its run's config.json, and refuses a model that has neither
kind of classes. SciPy and scikit-image only.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from unet_tf.instances.targets import INSTANCE_CLASS_NAMES

# Probabilities of object pixels (interior + boundary) and of marker pixels (interior). On
# DSB 2018 training images 0.5 let objects spread past the nuclei and split them into
# fragments; every pair of thresholds from 0.6 to 0.8 scored better (`python -m benchmarks
# recipe_dsb` picks them per model on training images; benchmarks/results/recipe_dsb.jsonl).
DEFAULT_INTERIOR_THRESHOLD = 0.7
DEFAULT_FOREGROUND_THRESHOLD = 0.7
DEFAULT_MIN_SIZE = 8  # pixels; smaller objects are noise (the smallest DSB nuclei are ~10 px)
POSTPROCESS_KEY = "postprocess"  # config.json entry written by unet-tf tune


def _probabilities(probabilities: np.ndarray, min_classes: int) -> np.ndarray:
    probabilities = np.asarray(probabilities, np.float32)
    if probabilities.ndim != 3 or probabilities.shape[-1] < min_classes:
        raise ValueError(
            f"probabilities must be [H, W, K] softmax output with K >= {min_classes} "
            f"(background, interior, boundary for instances); got shape {probabilities.shape}"
        )
    return probabilities


def _finish(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Drop objects under ``min_size`` pixels and number the rest 1..n (int32)."""
    from skimage.morphology import remove_small_objects
    from skimage.segmentation import relabel_sequential

    if min_size > 1 and labels.any():
        with warnings.catch_warnings():  # one object only: skimage asks "a boolean array?"
            warnings.simplefilter("ignore", UserWarning)
            labels = remove_small_objects(labels, max_size=min_size - 1)
    return relabel_sequential(labels)[0].astype(np.int32)


def foreground_mask(
    probabilities: np.ndarray, threshold: float = DEFAULT_FOREGROUND_THRESHOLD
) -> np.ndarray:
    """Pixels whose probability of not being background (class 0) exceeds ``threshold``.

    Holes inside objects are filled (nuclei and cells have none).
    """
    from scipy.ndimage import binary_fill_holes

    probabilities = _probabilities(probabilities, 2)
    return binary_fill_holes(1.0 - probabilities[..., 0] > threshold)


def label(
    probabilities: np.ndarray,
    interior_threshold: float = DEFAULT_INTERIOR_THRESHOLD,
    foreground_threshold: float = DEFAULT_FOREGROUND_THRESHOLD,
    min_size: int = DEFAULT_MIN_SIZE,
) -> np.ndarray:
    """Objects from background / interior / boundary probabilities (seeded watershed).

    Markers are the connected components of ``interior > interior_threshold``; each grows,
    by a watershed of the negated interior probability, over the foreground mask
    (``interior + boundary > foreground_threshold``, holes filled). A foreground blob with
    no marker (an object too small to have an interior) becomes one object by itself.

    Args:
        probabilities: float [H, W, 3] softmax output (background, interior, boundary).
        interior_threshold: interior probability of marker pixels.
        foreground_threshold: probability of object pixels.
        min_size: objects of fewer pixels are dropped.

    Returns:
        int32 [H, W] labels, 0 = background, objects numbered 1..n.

    Examples:
        >>> p = np.zeros((5, 9, 3), np.float32); p[..., 0] = 1  # two objects, one boundary
        >>> p[1:4, 1:8] = [0, 1, 0]; p[1:4, 4] = [0, 0, 1]
        >>> label(p, min_size=1)[2]  # the boundary column goes to one of its neighbours
        array([0, 1, 1, 1, 2, 2, 2, 2, 0], dtype=int32)
    """
    from scipy import ndimage
    from skimage.segmentation import watershed

    probabilities = _probabilities(probabilities, 3)
    interior = probabilities[..., 1]
    foreground = foreground_mask(probabilities, foreground_threshold)
    markers, count = ndimage.label((interior > interior_threshold) & foreground)
    blobs, _ = ndimage.label(foreground)
    orphans = np.setdiff1d(np.unique(blobs[foreground]), np.unique(blobs[markers > 0]))
    if orphans.size:
        lookup = np.zeros(blobs.max() + 1, np.int32)
        lookup[orphans] = np.arange(count + 1, count + 1 + orphans.size)
        markers = np.where(markers > 0, markers, lookup[blobs])
    labels = watershed(-interior, markers, mask=foreground)
    return _finish(labels, min_size)


def semantic_label(
    probabilities: np.ndarray,
    foreground_threshold: float = DEFAULT_FOREGROUND_THRESHOLD,
    min_size: int = DEFAULT_MIN_SIZE,
) -> np.ndarray:
    """Objects as connected components (4-connected) of the foreground: the baseline.

    Works on any probabilities whose class 0 is the background (2-class foreground models
    as well as 3-class ones); touching objects come out merged.

    Examples:
        >>> p = np.zeros((5, 9, 3), np.float32); p[..., 0] = 1
        >>> p[1:4, 1:8] = [0, 1, 0]; p[1:4, 4] = [0, 0, 1]
        >>> semantic_label(p, min_size=1)[2]
        array([0, 1, 1, 1, 1, 1, 1, 1, 0], dtype=int32)
    """
    from skimage.measure import label as components

    foreground = foreground_mask(probabilities, foreground_threshold)
    return _finish(components(foreground, connectivity=1), min_size)


def object_table(labels: np.ndarray, probabilities: np.ndarray | None = None) -> list[dict]:
    """One row per object: id, area (pixels), centroid and mean foreground probability.

    Args:
        labels: int [H, W] object ids (0 = background).
        probabilities: float [H, W, K] softmax output (class 0 background), or None.

    Returns:
        Dicts with keys id, area, centroid_y, centroid_x, mean_probability (the mean of
        1 - P(background) over the object's pixels; None without probabilities).

    Examples:
        >>> ids = np.zeros((4, 4), np.int32); ids[1:3, 1:3] = 1
        >>> object_table(ids)
        [{'id': 1, 'area': 4, 'centroid_y': 1.5, 'centroid_x': 1.5, 'mean_probability': None}]
    """
    from skimage.measure import regionprops

    labels = np.asarray(labels)
    intensity = None
    if probabilities is not None:
        intensity = 1.0 - _probabilities(probabilities, 2)[..., 0]
    rows = []
    for region in regionprops(labels.astype(np.int32), intensity_image=intensity):
        y, x = region.centroid
        rows.append({
            "id": int(region.label),
            "area": int(region.area),
            "centroid_y": round(float(y), 2),
            "centroid_x": round(float(x), 2),
            "mean_probability": (
                None if intensity is None else round(float(region.intensity_mean), 4)
            ),
        })
    return rows


def trained_on(config: Mapping[str, Any]) -> str | None:
    """The data spec a run's config.json records it was trained on (None: not recorded)."""
    data = config.get("data")
    return data.get("spec") if isinstance(data, Mapping) else None


def is_instance_model(config: Mapping[str, Any]) -> bool:
    """Whether a run's config.json describes an instance model.

    An instance model learnt background / interior / boundary from ``instances:DIR`` data,
    which its config.json records under ``data.spec``; a config.json without a recorded
    spec is judged by its class names alone.

    Examples:
        >>> is_instance_model({"class_names": ["background", "interior", "boundary"],
        ...                    "data": {"spec": "instances:nuclei"}})
        True
        >>> is_instance_model({"class_names": ["pet", "background", "border"]})
        False
    """
    spec = trained_on(config)
    return tuple(config.get("class_names") or ()) == INSTANCE_CLASS_NAMES and (
        spec is None or spec.partition(":")[0] == "instances")


def stored_postprocess(config: Mapping[str, Any]) -> dict[str, Any]:
    """The post-processing a run's config.json stores (``unet-tf tune``): thresholds,
    ``min_size`` and ``tta``; empty when none was stored (the library defaults apply)."""
    stored = config.get(POSTPROCESS_KEY)
    return dict(stored) if isinstance(stored, Mapping) else {}


def object_separator(
    config: Mapping[str, Any], where: Any, **overrides: Any
) -> Callable[..., np.ndarray]:
    """The post-processing that separates a model's objects, chosen from its config.json.

    :func:`label` (seeded watershed) for an instance model (:func:`is_instance_model`),
    :func:`semantic_label` (connected components of every class but 0) for a 2-class model
    (background / foreground). Any other model would have its classes misread: a 3-class
    semantic model's second class taken for object interiors, its first for the background.
    The thresholds and ``min_size`` stored in the config.json (:func:`stored_postprocess`)
    are bound, and ``overrides`` that are not None replace them.

    Args:
        config: the run's config.json (``Predictor.config``, ``RunInfo.to_dict()``).
        where: the model's path, for the message.
        **overrides: ``interior_threshold``, ``foreground_threshold``, ``min_size``.

    Raises:
        ValueError: the model is neither an instance model nor a 2-class one.

    Examples:
        >>> object_separator({"class_names": ["background", "foreground"]}, "run").__name__
        'semantic_label'
    """
    names = list(config.get("class_names") or ())
    if is_instance_model(config):
        separate = label
    elif len(names) == 2:
        separate = semantic_label
    else:
        separate = None
    if separate is not None:
        accepted = set(inspect.signature(separate).parameters) - {"probabilities"}
        unknown = {k for k, v in overrides.items() if v is not None} - accepted
        if unknown:
            raise ValueError(f"{where}: {separate.__name__} takes no {sorted(unknown)}; "
                             f"its parameters are {sorted(accepted)}")
        params = {k: v for k, v in stored_postprocess(config).items() if k in accepted}
        params.update({k: v for k, v in overrides.items() if v is not None})
        return functools.partial(separate, **params) if params else separate
    spec = trained_on(config)
    raise ValueError(
        f"{where} is not an instance model (classes {names}"
        f"{f', trained on {spec}' if spec else ''}): separating objects needs a model trained "
        f"on instances:DIR data ({', '.join(INSTANCE_CLASS_NAMES)}) or a 2-class background / "
        "foreground one; segment images with this one by class (unet-tf predict)"
    )
