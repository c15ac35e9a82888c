"""Parity: every exported format segments validation images like the Keras model, measured.

Every export runs :func:`parity_check` on validation images at their own size and fails
under strict thresholds (:class:`unet_tf.config.ParityThresholds`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from unet_tf.config import ParityThresholds
from unet_tf.metrics import confusion_matrix, scores_from_confusion
from unet_tf.predictors import Predictor


class ParityError(ValueError):
    """An exported format disagrees with the Keras model more than the thresholds allow."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


def parity_check(
    reference: Predictor,
    predictors: dict[str, Predictor],
    examples: Sequence[tuple[np.ndarray, np.ndarray | None]],
    thresholds: ParityThresholds = ParityThresholds(),  # noqa: B008 (frozen, immutable)
) -> dict[str, Any]:
    """Compare every exported format with the Keras model and the ground truth.

    Args:
        reference: the Keras model's predictor.
        predictors: name ("savedmodel", "tflite-int8", ...) -> predictor of an export.
        examples: (uint8 image, int mask or None) pairs at their own size.
        thresholds: what each format must reach.

    Returns:
        A report: per format pixel agreement with Keras, mean IoU against Keras' masks and
        against the ground truth, the check applied and whether it passed; ``passed``
        overall. It does not raise; :func:`export` does.

    Examples:
        >>> report = parity_check(keras_predictor, {"savedmodel": sm}, pairs)  # doctest: +SKIP
        >>> report["formats"]["savedmodel"]["agreement"]  # doctest: +SKIP
        1.0
    """
    stats, reference_truth = _confusions(reference, predictors, examples)
    labelled = all(mask is not None for _, mask in examples)
    keras_scores = scores_from_confusion(reference_truth, reference.class_names)
    report: dict[str, Any] = {
        "images": len(examples),
        "keras": {
            "mean_iou_vs_truth": keras_scores["mean_iou"] if labelled else None,
            "pixel_accuracy_vs_truth": keras_scores["pixel_accuracy"] if labelled else None,
        },
        "thresholds": dataclasses.asdict(thresholds),
        "formats": {},
    }
    passed = True
    for name, s in stats.items():
        truth_scores = scores_from_confusion(s["vs_truth"], reference.class_names)
        entry = {
            "agreement": s["same"] / max(s["pixels"], 1),
            "mean_iou_vs_keras": scores_from_confusion(s["vs_keras"], reference.class_names)[
                "mean_iou"],
            "mean_iou_vs_truth": truth_scores["mean_iou"] if labelled else None,
            "pixel_accuracy_vs_truth": truth_scores["pixel_accuracy"] if labelled else None,
        }
        ok, entry["check"] = _check(name, entry, report["keras"], thresholds, labelled)
        entry["passed"] = bool(ok)
        passed &= ok
        report["formats"][name] = entry
    report["passed"] = bool(passed)
    return report


def _confusions(reference: Predictor, predictors: dict[str, Predictor],
                examples: Sequence[tuple[np.ndarray, np.ndarray | None]]):
    """Per format: pixels equal to Keras' and confusion matrices against Keras' masks and
    the ground truth; and Keras' own confusion matrix against the ground truth."""
    k = reference.num_classes
    reference_truth = np.zeros((k, k), np.int64)
    stats = {name: {"same": 0, "pixels": 0, "vs_keras": np.zeros((k, k), np.int64),
                    "vs_truth": np.zeros((k, k), np.int64)} for name in predictors}
    for image, mask in examples:
        keras_mask = reference.predict(image)
        if mask is not None:
            reference_truth += confusion_matrix(mask, keras_mask, k)
        for name, predictor in predictors.items():
            pred = predictor.predict(image)
            s = stats[name]
            s["same"] += int(np.sum(pred == keras_mask))
            s["pixels"] += int(pred.size)
            s["vs_keras"] += confusion_matrix(keras_mask, pred, k)
            if mask is not None:
                s["vs_truth"] += confusion_matrix(mask, pred, k)
    return stats, reference_truth


def _check(name: str, entry: dict[str, Any], keras: dict[str, Any],
           thresholds: ParityThresholds, labelled: bool) -> tuple[bool, str]:
    """(passed, what was checked) for the format ``name``: its pixel agreement with Keras,
    or its mean IoU against the truth within the threshold of Keras' own."""
    metric, limit = thresholds.check(name)
    if metric == "agreement":
        value = entry["agreement"]
        return value >= limit, f"agreement {value:.5f} >= {limit}"
    if labelled:
        value = abs(keras["mean_iou_vs_truth"] - entry["mean_iou_vs_truth"])
        return value <= limit, f"|mean IoU - Keras mean IoU| {value:.4f} <= {limit}"
    return False, "mean IoU drop needs labelled parity images; none given"


def format_parity(report: dict[str, Any]) -> str:
    """The parity report as a plain-text table."""
    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}"

    lines = [
        f"parity on {report['images']} validation images (at their own size); "
        f"Keras mean IoU vs truth {pct(report['keras']['mean_iou_vs_truth'])}",
        f"{'format':<16}{'agree %':>9}{'IoU vs keras':>14}{'IoU vs truth':>14}  check",
    ]
    for name, e in report["formats"].items():
        lines.append(
            f"{name:<16}{100 * e['agreement']:>9.3f}{pct(e['mean_iou_vs_keras']):>14}"
            f"{pct(e['mean_iou_vs_truth']):>14}  {'ok' if e['passed'] else 'FAILED'}: "
            f"{e['check']}"
        )
    return "\n".join(lines)
