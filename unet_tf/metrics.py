"""Segmentation metrics: Keras' IoU metrics with the ignore label, and pixel accuracy."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from unet_tf.config import IGNORE_LABEL


@keras.saving.register_keras_serializable(package="unet_tf")
class PixelAccuracy(keras.metrics.Mean):
    """Fraction of labelled pixels whose argmax class is right (ignored pixels skipped)."""

    def __init__(self, ignore_class: int | None = IGNORE_LABEL, name="pixel_accuracy", **kw):
        super().__init__(name=name, **kw)
        self.ignore_class = ignore_class

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(ops.squeeze(y_true, -1), "int32")
        pred = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        correct = ops.cast(ops.equal(labels, pred), "float32")
        weight = ops.ones_like(correct)
        if self.ignore_class is not None:
            weight = ops.cast(ops.not_equal(labels, self.ignore_class), "float32")
        return super().update_state(correct, sample_weight=weight)

    def get_config(self):
        return {**super().get_config(), "ignore_class": self.ignore_class}


def segmentation_metrics(class_names: Sequence[str]) -> list[keras.metrics.Metric]:
    """Pixel accuracy, mean IoU and one IoU per class, all from logits, skipping IGNORE_LABEL.

    Metric names: ``pixel_accuracy``, ``mean_iou``, ``iou_<class name>``.
    """
    n = len(class_names)
    metrics: list[keras.metrics.Metric] = [
        PixelAccuracy(),
        keras.metrics.MeanIoU(n, name="mean_iou", ignore_class=IGNORE_LABEL, sparse_y_pred=False),
    ]
    for i, name in enumerate(class_names):
        metrics.append(
            keras.metrics.IoU(
                n, [i], name=f"iou_{safe_name(name)}", ignore_class=IGNORE_LABEL,
                sparse_y_pred=False,
            )
        )
    return metrics


def safe_name(name: str) -> str:
    """A class name usable in a metric name ("Sign Symbol" -> "sign_symbol")."""
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_") or "class"


def confusion_matrix(truth, pred, num_classes: int) -> np.ndarray:
    """The one confusion matrix: ``[t, p]`` counts pixels of true class t predicted as p.

    Pixels whose truth is IGNORE_LABEL (or any value >= ``num_classes``) are skipped.

    Examples:
        >>> confusion_matrix(np.array([0, 1, 1, 255]), np.array([0, 1, 0, 1]), 2).tolist()
        [[1, 0], [1, 1]]
    """
    truth = np.asarray(truth).ravel().astype(np.int64)
    pred = np.asarray(pred).ravel().astype(np.int64)
    valid = (truth != IGNORE_LABEL) & (truth >= 0) & (truth < num_classes)
    return np.bincount(truth[valid] * num_classes + pred[valid],
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def confusion_counts(labels, logits, num_classes: int):
    """:func:`confusion_matrix` of a batch as a float32 tensor, inside a ``tf.function``
    too: labels ``[..., 1]`` or ``[...]`` against the argmax of ``logits`` ``[..., classes]``.

    Examples:
        >>> labels = np.array([[0], [1], [1], [255]])
        >>> logits = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
        >>> ops.convert_to_numpy(confusion_counts(labels, logits, 2)).tolist()
        [[1.0, 0.0], [1.0, 1.0]]
    """
    labels = ops.reshape(ops.cast(labels, "int32"), [-1])
    pred = ops.reshape(ops.cast(ops.argmax(logits, axis=-1), "int32"), [-1])
    valid = (labels != IGNORE_LABEL) & (labels >= 0) & (labels < num_classes)
    pairs = ops.where(valid, labels * num_classes + pred, 0)
    counts = ops.bincount(pairs, weights=ops.cast(valid, "float32"),
                          minlength=num_classes * num_classes)
    return ops.reshape(counts, (num_classes, num_classes))


def scores_from_confusion(confusion: np.ndarray, class_names: Sequence[str]) -> dict:
    """Per-class IoU and Dice, their means, and pixel accuracy from a confusion matrix.

    ``confusion[t, p]`` counts pixels of true class t predicted as p. Classes that appear
    neither in the labels nor in the predictions get IoU NaN and are left out of the means.

    Examples:
        >>> s = scores_from_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"])
        >>> round(s["mean_iou"], 3), s["pixel_accuracy"]
        (0.775, 0.875)
    """
    confusion = np.asarray(confusion, np.float64)
    tp = np.diag(confusion)
    fp = confusion.sum(0) - tp
    fn = confusion.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (tp + fp + fn)
        dice = 2 * tp / (2 * tp + fp + fn)
    total = confusion.sum()
    return {
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mean_iou": float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan"),
        "mean_dice": float(np.nanmean(dice)) if np.any(~np.isnan(dice)) else float("nan"),
        "per_class_iou": {n: float(v) for n, v in zip(class_names, iou, strict=True)},
        "per_class_dice": {n: float(v) for n, v in zip(class_names, dice, strict=True)},
        "pixels": int(total),
    }


def fit_scores(confusion: np.ndarray, class_names: Sequence[str], prefix: str = "") -> dict:
    """What :func:`segmentation_metrics` report during ``model.fit``, from confusion counts
    (the multi-worker loop sums counts over replicas and batches, then calls this).

    The numbers of :func:`scores_from_confusion`, under Keras' names and conventions: a class
    absent from labels and predictions has IoU 0 (not NaN) and is left out of the mean, and
    no labelled pixel at all gives 0.

    Examples:
        >>> fit_scores(np.array([[3, 1], [0, 4]]), ["a", "b"], "val_")["val_mean_iou"]
        0.775
        >>> fit_scores(np.array([[3, 0], [0, 0]]), ["a", "b"])["iou_b"]
        0.0
    """
    scores = scores_from_confusion(confusion, class_names)
    logs = {"pixel_accuracy": scores["pixel_accuracy"], "mean_iou": scores["mean_iou"],
            **{f"iou_{safe_name(n)}": v for n, v in scores["per_class_iou"].items()}}
    return {prefix + k: 0.0 if np.isnan(v) else v for k, v in logs.items()}
