"""Object-level scores: the Data Science Bowl 2018 metric and the aggregated Jaccard index.

All scores come from one contingency matrix per image (pixel counts of every true object
against every predicted object, a single ``np.bincount``), so they are vectorised.

- DSB 2018 score (Caicedo et al. 2019): at each IoU threshold t in 0.50, 0.55, ..., 0.95, a
  true and a predicted object match when their IoU exceeds t (one-to-one, since IoU > 0.5
  allows at most one partner), and the image scores TP / (TP + FP + FN); ``ap_50_95`` is
  the mean over thresholds, then over images; ``ap_50`` and ``ap_75`` are single thresholds.
- Aggregated Jaccard index (Kumar et al. 2017): every true object is paired with the
  predicted object of highest IoU; AJI = sum of paired intersections / (sum of paired
  unions + areas of predicted objects paired with nothing), per image, then averaged.
  A true object overlapping no prediction adds its area to the union only.

Empty images: when an image has no true and no predicted objects, every score is 1.0 for
it (nothing to find, nothing wrongly found); when only one side is empty, 0.0.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.50 .. 0.95


def _relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Ids numbered 0..n (0 stays background), as int64, and n."""
    values, inverse = np.unique(np.asarray(labels).ravel(), return_inverse=True)
    if values[0] != 0:
        inverse = inverse + 1
    return inverse.astype(np.int64), int(np.count_nonzero(values))


def overlaps(true: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intersections and IoUs [n_true, n_pred] of every pair of objects of two label images.

    Examples:
        >>> t = np.array([[1, 1, 0, 0]]); p = np.array([[0, 5, 5, 0]])
        >>> inter, iou = overlaps(t, p)
        >>> inter.tolist(), iou.round(3).tolist()
        ([[1]], [[0.333]])
    """
    true, pred = np.asarray(true), np.asarray(pred)
    if true.shape != pred.shape:
        raise ValueError(
            f"true labels have shape {true.shape} but predicted {pred.shape}; score label "
            "images of one size (predict at the image's own size)"
        )
    t, n_true = _relabel(true)
    p, n_pred = _relabel(pred)
    counts = np.bincount(t * (n_pred + 1) + p, minlength=(n_true + 1) * (n_pred + 1))
    counts = counts.reshape(n_true + 1, n_pred + 1)
    area_true, area_pred = counts.sum(1)[1:], counts.sum(0)[1:]
    inter = counts[1:, 1:]
    union = area_true[:, None] + area_pred[None, :] - inter
    return inter, inter / np.maximum(union, 1)


def dsb_scores(iou: np.ndarray, thresholds=THRESHOLDS) -> np.ndarray:
    """TP / (TP + FP + FN) at each threshold, from an IoU matrix [n_true, n_pred].

    Examples:
        >>> dsb_scores(np.array([[0.8, 0.0], [0.0, 0.6]]), (0.5, 0.7)).tolist()
        [1.0, 0.3333333333333333]
    """
    n_true, n_pred = iou.shape
    if n_true == 0 and n_pred == 0:
        return np.ones(len(thresholds))
    tp = np.array([np.count_nonzero(iou > t) for t in thresholds], np.float64)
    return tp / (n_true + n_pred - tp)  # TP + FP + FN = n_pred + (n_true - TP)


def aggregated_jaccard(true: np.ndarray, pred: np.ndarray) -> float:
    """Aggregated Jaccard index of one image (Kumar et al. 2017; see the module notes).

    Examples:
        >>> t = np.array([[1, 1, 2, 2]]); p = np.array([[1, 1, 1, 1]])  # a merged pair
        >>> aggregated_jaccard(t, p)  # (2 + 2) / (4 + 4): the merged object counted twice
        0.5
    """
    inter, iou = overlaps(true, pred)
    n_true, n_pred = iou.shape
    if n_true == 0 or n_pred == 0:
        return 1.0 if n_true == n_pred else 0.0
    area_true = np.bincount(_relabel(true)[0])[1:]
    area_pred = np.bincount(_relabel(pred)[0])[1:]
    best = iou.argmax(1)
    paired = iou[np.arange(n_true), best] > 0
    rows, cols = np.nonzero(paired)[0], best[paired]
    intersection = inter[rows, cols].sum()
    union = (area_true[rows] + area_pred[cols] - inter[rows, cols]).sum()
    union += area_true[~paired].sum()
    unused = np.ones(n_pred, bool)
    unused[cols] = False
    union += area_pred[unused].sum()
    return float(intersection / union)


def image_scores(true: np.ndarray, pred: np.ndarray) -> dict:
    """Scores of one image: ap_50_95, ap_50, ap_75, aji and the object counts.

    Examples:
        >>> ids = np.zeros((6, 6), np.int32); ids[:3] = 1; ids[3:] = 2
        >>> image_scores(ids, ids)["ap_50_95"]
        1.0
    """
    _, iou = overlaps(true, pred)
    per_threshold = dsb_scores(iou)
    return {
        "ap_50_95": float(per_threshold.mean()),
        "ap_50": float(per_threshold[THRESHOLDS.index(0.5)]),
        "ap_75": float(per_threshold[THRESHOLDS.index(0.75)]),
        "aji": aggregated_jaccard(true, pred),
        "per_threshold": [float(s) for s in per_threshold],
        "true_objects": iou.shape[0],
        "predicted_objects": iou.shape[1],
    }


def evaluate_instances(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Mean object scores over images of (true labels, predicted labels) pairs.

    Args:
        pairs: (true [H, W], predicted [H, W]) integer label images, 0 = background,
            one pair per image (sizes may differ between images).

    Returns:
        {"images", "ap_50_95", "ap_50", "ap_75", "aji" (means over images),
        "per_threshold" ({threshold: mean score}), "true_objects", "predicted_objects"
        (totals)}.

    Examples:
        >>> ids = np.zeros((6, 6), np.int32); ids[:3] = 1
        >>> r = evaluate_instances([(ids, ids), (ids, np.zeros_like(ids))])
        >>> r["ap_50_95"], r["aji"], r["true_objects"]
        (0.5, 0.5, 2)
    """
    scores = [image_scores(true, pred) for true, pred in pairs]
    if not scores:
        raise ValueError("evaluate_instances needs at least one (true, predicted) pair")
    per_threshold = np.mean([s["per_threshold"] for s in scores], axis=0)
    result = {"images": len(scores)}
    for key in ("ap_50_95", "ap_50", "ap_75", "aji"):
        result[key] = float(np.mean([s[key] for s in scores]))
    result["per_threshold"] = {f"{t:.2f}": float(v) for t, v in zip(THRESHOLDS, per_threshold,
                                                                      strict=True)}
    for key in ("true_objects", "predicted_objects"):
        result[key] = int(sum(s[key] for s in scores))
    return result
