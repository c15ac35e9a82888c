"""Pictures and files of one image's objects: overlay, predicted vs true, label PNG and CSV.

Colours: in :func:`overlay` every object has its own colour and a yellow outline; in
:func:`comparison` true objects are outlined in green and predicted ones in blue, missed true
objects (false negatives) are filled red and predicted objects that match nothing (false
positives) are filled magenta, matching at IoU > 0.5 as the DSB 2018 score does.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from unet_tf.instances.metrics import overlaps
from unet_tf.instances.postprocess import object_table

OUTLINE = (1.0, 1.0, 0.0)
TRUE_OUTLINE, PRED_OUTLINE = (0.0, 1.0, 0.0), (0.2, 0.5, 1.0)
MISSED, FALSE = np.array([1.0, 0.0, 0.0]), np.array([1.0, 0.0, 1.0])
CSV_FIELDS = ("image", "id", "area", "centroid_y", "centroid_x", "mean_probability")


def _rgb_float(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]  # alpha dropped, as the model sees it
    if image.ndim == 2 or image.shape[-1] == 1:
        image = np.repeat(image.reshape(image.shape[:2] + (1,)), 3, axis=-1)
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return np.clip(image.astype(np.float32) / scale, 0.0, 1.0)


def _check_shapes(image: np.ndarray, *labels: np.ndarray) -> None:
    for lab in labels:
        if np.asarray(lab).shape != np.asarray(image).shape[:2]:
            raise ValueError(
                f"labels have shape {np.asarray(lab).shape} but the image "
                f"{np.asarray(image).shape}; give labels of the image's own height and width"
            )


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.35) -> np.ndarray:
    """The image with every object tinted its own colour and outlined, uint8 [H, W, 3].

    Examples:
        >>> ids = np.zeros((8, 8), np.int32); ids[2:6, 2:6] = 1
        >>> overlay(np.zeros((8, 8, 3), np.uint8), ids).shape
        (8, 8, 3)
    """
    from skimage.color import label2rgb
    from skimage.segmentation import mark_boundaries

    _check_shapes(image, labels)
    rgb = _rgb_float(image)
    tinted = label2rgb(labels, rgb, alpha=alpha, bg_label=0, image_alpha=1.0)
    outlined = mark_boundaries(tinted, labels, color=OUTLINE, mode="inner")
    return (np.clip(outlined, 0, 1) * 255).astype(np.uint8)


def unmatched(true: np.ndarray, pred: np.ndarray, iou: float = 0.5):
    """Ids of missed true objects and of false predicted objects (no partner with IoU > iou).

    Examples:
        >>> t = np.array([[1, 1, 0, 2]]); p = np.array([[3, 3, 4, 0]])
        >>> [a.tolist() for a in unmatched(t, p)]
        [[2], [4]]
    """
    _, ious = overlaps(true, pred)
    true_ids = np.unique(true)[np.unique(true) != 0]
    pred_ids = np.unique(pred)[np.unique(pred) != 0]
    missed = true_ids[~(ious > iou).any(1)] if ious.size else true_ids
    false = pred_ids[~(ious > iou).any(0)] if ious.size else pred_ids
    return missed, false


def comparison(
    image: np.ndarray, true: np.ndarray, pred: np.ndarray, iou: float = 0.5
) -> np.ndarray:
    """Predicted vs true objects on the image, uint8 [H, W, 3] (colours: module notes).

    Examples:
        >>> t = np.zeros((8, 8), np.int32); t[1:4, 1:4] = 1; t[4:8, 4:8] = 2
        >>> p = np.zeros_like(t); p[1:4, 1:4] = 1
        >>> comparison(np.zeros((8, 8), np.uint8), t, p)[5, 5].tolist()  # missed: red
        [255, 0, 0]
    """
    from skimage.segmentation import find_boundaries

    _check_shapes(image, true, pred)
    rgb = 0.7 * _rgb_float(image).mean(-1, keepdims=True).repeat(3, -1)
    missed, false = unmatched(true, pred, iou)
    rgb[np.isin(true, missed)] = MISSED
    rgb[np.isin(pred, false)] = FALSE
    rgb[find_boundaries(true, mode="inner")] = TRUE_OUTLINE
    rgb[find_boundaries(pred, mode="inner")] = PRED_OUTLINE
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def write_outputs(
    image: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray | None,
    out_dir: str | Path,
    stem: str,
    true: np.ndarray | None = None,
) -> dict:
    """Write one image's objects: labels PNG, overlay PNG, object CSV (and a comparison).

    Files: ``STEM_instances.png`` (16-bit label image, 0 background, k = k-th object),
    ``STEM_overlay.png``, ``STEM_objects.csv`` (image, id, area, centroid_y, centroid_x,
    mean_probability) and, when ``true`` labels are given, ``STEM_comparison.png``.

    Args:
        image: the image (uint8 RGB(A) or grayscale) at the labels' size.
        labels: int [H, W] objects, e.g. from :func:`unet_tf.instances.label`.
        probabilities: float [H, W, K] softmax output (for mean_probability), or None.
        out_dir: folder to write to (created).
        stem: file name stem, usually the image's.
        true: optional true labels [H, W] for the comparison picture.

    Returns:
        {"instances", "overlay", "objects", "comparison" (or None): paths, "rows": the
        table rows (dicts with the CSV fields)}.

    Examples:
        >>> import tempfile
        >>> ids = np.zeros((8, 8), np.int32); ids[2:6, 2:6] = 1
        >>> out = write_outputs(np.zeros((8, 8, 3), np.uint8), ids, None, tempfile.mkdtemp(), "a")
        >>> out["instances"].name, out["rows"][0]["area"]
        ('a_instances.png', 16)
    """
    labels = np.asarray(labels)
    _check_shapes(image, labels)
    if labels.max(initial=0) > 65535 or labels.min(initial=0) < 0:
        raise ValueError(
            f"{stem}: labels range {labels.min()}..{labels.max()} does not fit a 16-bit PNG; "
            "number objects 1..65535 (skimage.segmentation.relabel_sequential)"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "instances": out / f"{stem}_instances.png",
        "overlay": out / f"{stem}_overlay.png",
        "objects": out / f"{stem}_objects.csv",
        "comparison": out / f"{stem}_comparison.png" if true is not None else None,
    }
    Image.fromarray(labels.astype(np.uint16)).save(paths["instances"])
    Image.fromarray(overlay(image, labels)).save(paths["overlay"])
    if true is not None:
        Image.fromarray(comparison(image, true, labels)).save(paths["comparison"])
    rows = [{"image": stem, **row} for row in object_table(labels, probabilities)]
    with open(paths["objects"], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return {**paths, "rows": rows}
