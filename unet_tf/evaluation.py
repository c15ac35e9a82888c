"""Evaluation: mean / per-class IoU and Dice, pixel accuracy, a confusion matrix, pictures.

Scores are computed over labelled pixels only (the ignore label is skipped), either at the
model's input size (images resized bilinearly, masks with nearest neighbour, as in
training) or, with ``resolution="native"``, against the original masks at their own size
(the logits are resized back bilinearly, as serving does), which is how the field reports
results and does not reward a model for ignoring detail that downscaling removed.
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
from unet_tf.data import load_source, make_dataset, preprocess_image
from unet_tf.data.preprocess import resize_logits
from unet_tf.metrics import scores_from_confusion
from unet_tf.viz import plot_confusion, plot_predictions

logger = logging.getLogger("unet_tf")


def predict_probabilities(model, images: tf.Tensor, tta: bool | str = False) -> tf.Tensor:
    """Softmax probabilities [B, H, W, K]; with ``tta``, averaged over flips and rotations.

    The paper averaged predictions over rotated and flipped copies; rotations by 90 and 270
    degrees are used only for square inputs. ``tta="flips"`` averages the image and its
    mirror only, for photos whose content has an up (pets, street scenes), where rotated
    copies are out of distribution; ``True`` or ``"all"`` adds the rotations. Each copy's
    prediction is transformed back (rotated by -k, then flipped) before averaging, so every
    average is over the same pixel.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(2, 1)])
        >>> x = np.random.rand(1, 8, 8, 1).astype("float32")
        >>> plain, tta = predict_probabilities(model, x), predict_probabilities(model, x, True)
        >>> bool(np.allclose(plain, tta, atol=1e-5))  # a 1x1 conv commutes with flips/rotations
        True
    """
    images = tf.convert_to_tensor(images)
    if tta not in (False, True, "all", "flips"):
        raise ValueError(f"tta must be False, True, 'all' or 'flips'; got {tta!r}")
    if not tta:
        return tf.nn.softmax(model(images, training=False), axis=-1)
    square = images.shape[1] == images.shape[2] and tta != "flips"
    total = 0.0
    count = 0
    for flip in (False, True):
        x = tf.image.flip_left_right(images) if flip else images
        for k in (0, 1, 2, 3) if square else (0,) if tta == "flips" else (0, 2):
            probs = tf.nn.softmax(model(tf.image.rot90(x, k), training=False), axis=-1)
            probs = tf.image.rot90(probs, -k % 4)
            total += tf.image.flip_left_right(probs) if flip else probs
            count += 1
    return total / count


def spread_indices(size: int, count: int) -> set[int]:
    """``count`` example indices spread evenly over ``range(size)``, first and last included."""
    if size <= 0 or count <= 0:
        return set()
    return {int(i) for i in np.linspace(0, size - 1, min(count, size)).round()}


def evaluate(
    model_path: str | Path,
    data_config: DataConfig | None = None,
    subset: str | None = None,
    out_dir: str | Path | None = None,
    tta: bool | str = False,
    num_pictures: int = 6,
    resolution: str = "input",
    split: str | None = None,
) -> dict:
    """Evaluate a trained model and optionally write a report folder.

    Args:
        model_path: run directory or .keras file.
        data_config: the data to evaluate on. None means the run's own validation data
            (its ``validation_data``, or the held-out subset of its training data).
        subset: None (whole split), "training" or "validation" (seeded fraction).
        out_dir: where to write ``report.json``, ``confusion.png`` and ``predictions.png``.
        tta: average over flips and 90-degree rotations ("flips": flips only).
        num_pictures: examples in ``predictions.png``, spread evenly over the data (the
            first few frames of a video split would all show the same street).
        resolution: "input" scores at the model's input size; "native" scores against the
            original masks at their own size (logits resized back bilinearly).
        split: the source's split (overrides ``data_config.split``), e.g. "val".

    Returns:
        A report: pixel accuracy, mean IoU / Dice, per-class IoU / Dice, confusion matrix.

    Example:
        >>> report = evaluate("saved_models/synthetic")  # doctest: +SKIP
        >>> report["mean_iou"]  # doctest: +SKIP
    """
    if resolution not in ("input", "native"):
        raise ValueError(f"resolution must be 'input' or 'native'; got {resolution!r}")
    model, info = load_run(model_path)
    if data_config is None:
        data_config, subset = run_validation_data(info)
    data_config = dataclasses.replace(data_config, image_size=tuple(info.input_size))
    channels = info.model.input_channels
    if resolution == "input":
        dataset, source = make_dataset(data_config, subset=subset, split=split,
                                       channels=channels)
    else:  # raw examples one at a time: sizes differ
        source = load_source(data_config, subset=subset, split=split)
        dataset = source.examples.batch(1)
    if tuple(source.class_names) != tuple(info.class_names):
        logger.warning("data classes %s differ from the model's %s", source.class_names,
                       info.class_names)
    k = len(info.class_names)
    confusion = np.zeros((k, k), np.int64)
    pictures: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    show = spread_indices(source.size, num_pictures)
    seen = 0
    start = time.time()
    for images, masks in dataset:
        if resolution == "native":
            inputs = preprocess_image(images, tuple(info.input_size), channels)
            probs = resize_logits(predict_probabilities(model, inputs, tta), masks.shape[1:3])
            images = preprocess_image(images, None, channels)  # for the pictures
        else:
            probs = predict_probabilities(model, images, tta)
        pred = tf.argmax(probs, -1, output_type=tf.int32)
        labels = masks[..., 0]
        valid = labels != IGNORE_LABEL
        confusion += tf.math.confusion_matrix(
            tf.boolean_mask(labels, valid), tf.boolean_mask(pred, valid), num_classes=k,
            dtype=tf.int64,
        ).numpy()
        for i in range(images.shape[0]):
            if seen + i in show and len(pictures) < num_pictures:
                pictures.append((images[i].numpy(), labels[i].numpy(), pred[i].numpy()))
        seen += images.shape[0]
    fit = info.extra.get("saved_metrics") or info.extra.get("best_metrics") or {}
    report = {
        "model": str(model_path),
        "data": source.description,
        "examples": source.size,
        "resolution": list(info.input_size),
        "scored_at": resolution,
        "tta": tta,
        **scores_from_confusion(confusion, info.class_names),
        "confusion": confusion.tolist(),
        "class_names": list(info.class_names),
        # what model.fit logged for the saved epoch: the training-data figure comes from
        # training mode (batch statistics, augmented data); a large gap to an inference-mode
        # score on the same images is the batch-norm failure this report exists to expose
        "fit_metrics": {key: fit[key] for key in ("mean_iou", "val_mean_iou") if key in fit},
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
        f"{', TTA ' + ('flips' if report['tta'] == 'flips' else 'all') if report['tta'] else ''}"
        f"{', scored at native size' if report.get('scored_at') == 'native' else ''})",
        f"{'class':<{width}}{'IoU':>8}{'Dice':>8}",
    ]
    for name in report["class_names"]:
        iou, dice = report["per_class_iou"][name], report["per_class_dice"][name]
        lines.append(f"{name:<{width}}{iou:>8.4f}{dice:>8.4f}")
    lines.append(f"{'mean':<{width}}{report['mean_iou']:>8.4f}{report['mean_dice']:>8.4f}")
    lines.append(f"pixel accuracy {report['pixel_accuracy']:.4f}")
    return "\n".join(lines)
