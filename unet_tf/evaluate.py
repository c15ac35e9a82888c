"""Evaluation: mean / per-class IoU and Dice, pixel accuracy, a confusion matrix, pictures.

Scores are computed at the model's input size (images resized bilinearly, masks with
nearest neighbour, as in training), over labelled pixels only (the ignore label is skipped).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from unet_tf.checkpoint import RunInfo, load_run
from unet_tf.config import IGNORE_LABEL, DataConfig
from unet_tf.data import make_dataset
from unet_tf.metrics import scores_from_confusion
from unet_tf.viz import plot_confusion, plot_predictions

logger = logging.getLogger("unet_tf")


def predict_probabilities(model, images: tf.Tensor, tta: bool = False) -> tf.Tensor:
    """Softmax probabilities [B, H, W, K]; with ``tta``, averaged over flips and rotations.

    The paper averaged predictions over rotated and flipped copies; rotations by 90 and 270
    degrees are used only for square inputs.
    """
    if not tta:
        return tf.nn.softmax(model(images, training=False), axis=-1)
    square = images.shape[1] == images.shape[2]
    total = 0.0
    count = 0
    for flip in (False, True):
        x = tf.image.flip_left_right(images) if flip else images
        for k in (0, 1, 2, 3) if square else (0, 2):
            probs = tf.nn.softmax(model(tf.image.rot90(x, k), training=False), axis=-1)
            probs = tf.image.rot90(probs, -k % 4)
            total += tf.image.flip_left_right(probs) if flip else probs
            count += 1
    return total / count


def evaluate(
    model_path: str | Path,
    data_config: DataConfig | None = None,
    subset: str | None = None,
    out_dir: str | Path | None = None,
    tta: bool = False,
    num_pictures: int = 6,
) -> dict:
    """Evaluate a trained model and optionally write a report folder.

    Args:
        model_path: run directory or .keras file.
        data_config: the data to evaluate on. None means the run's own validation data
            (its ``validation_data``, or the held-out subset of its training data).
        subset: None (whole split), "training" or "validation" (seeded fraction).
        out_dir: where to write ``report.json``, ``confusion.png`` and ``predictions.png``.
        tta: average over flips and 90-degree rotations.
        num_pictures: examples in ``predictions.png``.

    Returns:
        A report: pixel accuracy, mean IoU / Dice, per-class IoU / Dice, confusion matrix.

    Example:
        >>> report = evaluate("saved_models/synthetic")  # doctest: +SKIP
        >>> report["mean_iou"]  # doctest: +SKIP
    """
    model, info = load_run(model_path)
    if data_config is None:
        data_config, subset = run_validation_data(info)
    data_config = dataclasses.replace(data_config, image_size=tuple(info.input_size))
    dataset, source = make_dataset(data_config, subset=subset, channels=info.model.input_channels)
    if tuple(source.class_names) != tuple(info.class_names):
        logger.warning("data classes %s differ from the model's %s", source.class_names,
                       info.class_names)
    k = len(info.class_names)
    confusion = np.zeros((k, k), np.int64)
    pictures: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    start = time.time()
    for images, masks in dataset:
        pred = tf.argmax(predict_probabilities(model, images, tta), -1, output_type=tf.int32)
        labels = masks[..., 0]
        valid = labels != IGNORE_LABEL
        confusion += tf.math.confusion_matrix(
            tf.boolean_mask(labels, valid), tf.boolean_mask(pred, valid), num_classes=k,
            dtype=tf.int64,
        ).numpy()
        for i in range(min(num_pictures - len(pictures), images.shape[0])):
            pictures.append((images[i].numpy(), labels[i].numpy(), pred[i].numpy()))
    report = {
        "model": str(model_path),
        "data": source.description,
        "examples": source.size,
        "resolution": list(info.input_size),
        "tta": tta,
        **scores_from_confusion(confusion, info.class_names),
        "confusion": confusion.tolist(),
        "class_names": list(info.class_names),
        "seconds": round(time.time() - start, 2),
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        plot_confusion(confusion, info.class_names, out / "confusion.png")
        if pictures:
            images, truths, preds = zip(*pictures, strict=True)
            plot_predictions(images, truths, preds, info.class_names, out / "predictions.png")
    return report


def run_validation_data(info: RunInfo) -> tuple[DataConfig, str | None]:
    """The data a run was validated on: its validation_data, else its held-out subset."""
    if info.extra.get("validation_data"):
        return DataConfig.from_dict(info.extra["validation_data"]), None
    if info.extra.get("data"):
        return DataConfig.from_dict(info.extra["data"]), "validation"
    raise ValueError("this model has no recorded training data; pass data_config (--data)")


def format_report(report: dict) -> str:
    """A plain-text table of the scores, for terminals and logs."""
    width = max(len(n) for n in report["class_names"]) + 2
    lines = [
        f"data: {report['data']} ({report['examples']} examples, "
        f"{report['resolution'][0]}x{report['resolution'][1]}"
        f"{', TTA' if report['tta'] else ''})",
        f"{'class':<{width}}{'IoU':>8}{'Dice':>8}",
    ]
    for name in report["class_names"]:
        iou, dice = report["per_class_iou"][name], report["per_class_dice"][name]
        lines.append(f"{name:<{width}}{iou:>8.4f}{dice:>8.4f}")
    lines.append(f"{'mean':<{width}}{report['mean_iou']:>8.4f}{report['mean_dice']:>8.4f}")
    lines.append(f"pixel accuracy {report['pixel_accuracy']:.4f}")
    return "\n".join(lines)
