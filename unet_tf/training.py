"""Training with ``model.fit``: data -> model -> fit -> a run directory.

The run directory holds ``model.keras`` (the best epoch by validation mean IoU, or the last
one with ``checkpoint="last"``),
``config.json`` (model and data config, class names, input size, preprocessing, best
metrics), ``history.csv`` / ``history.json``, ``curves.png`` and TensorBoard logs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from unet_tf.checkpoint import MODEL_FILE, RunInfo
from unet_tf.config import IGNORE_LABEL, DataConfig, ModelConfig, TrainConfig
from unet_tf.data import PREPROCESSING, make_dataset
from unet_tf.data.weightmap import with_weight_map
from unet_tf.losses import SegmentationLoss
from unet_tf.metrics import segmentation_metrics
from unet_tf.model import build_unet, check_input_size
from unet_tf.viz import plot_history

logger = logging.getLogger("unet_tf")


def compile_model(
    model: keras.Model, class_names, train: TrainConfig, steps_per_epoch: int
) -> keras.Model:
    """Compile with AdamW + cosine decay, the segmentation loss and IoU metrics.

    Fine-tuning an existing model works the same way: ``compile_model(model, ...)`` then
    ``model.fit``.
    """
    schedule = keras.optimizers.schedules.CosineDecay(
        train.learning_rate, decay_steps=max(1, train.epochs * steps_per_epoch), alpha=0.01
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=train.weight_decay),
        loss=SegmentationLoss(dice_weight=train.dice_weight, focal_weight=train.focal_weight),
        metrics=segmentation_metrics(class_names),
    )
    return model


def strip_training_config(path: Path) -> None:
    """Re-save a checkpoint without optimizer and loss, so plain Keras loads it anywhere.

    ``ModelCheckpoint`` saves the compiled model, whose loss (``SegmentationLoss``) only
    loads where ``unet_tf`` is imported; the released ``model.keras`` holds the network
    alone (fine-tuning compiles it again).
    """
    if not path.exists():
        return
    model = keras.saving.load_model(path, compile=False)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    tmp.replace(path)


def class_frequencies(dataset: tf.data.Dataset, num_classes: int) -> np.ndarray:
    """Fraction of labelled pixels of each class over a (mask-yielding) dataset."""
    counts = np.zeros(num_classes, np.float64)
    for _, mask in dataset:
        m = mask.numpy().ravel()
        counts += np.bincount(m[m != IGNORE_LABEL], minlength=num_classes)[:num_classes]
    return counts / max(counts.sum(), 1.0)


BALANCING_POWERS = {"balanced": 1.0, "sqrt_balanced": 0.5}


def balanced_class_weights(frequencies: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Median-frequency balancing (Eigen & Fergus 2015, as SegNet uses on CamVid).

    ``power=0.5`` ("sqrt_balanced") softens it: on CamVid full median-frequency weights
    (building ~0.2, pole ~9) let the rare classes take over the frequent ones.
    """
    present = frequencies > 0
    weights = np.ones_like(frequencies)
    weights[present] = (np.median(frequencies[present]) / frequencies[present]) ** power
    return weights


def with_class_weights(dataset: tf.data.Dataset, weights) -> tf.data.Dataset:
    """Add a per-pixel sample-weight map (0 on ignored pixels) to (image, mask) batches."""
    table = np.zeros(256, np.float32)
    table[: len(weights)] = weights
    table = tf.constant(table)
    return dataset.map(lambda x, y: (x, y, tf.gather(table, y[..., 0])))


def train(
    model_config: ModelConfig,
    data_config: DataConfig,
    train_config: TrainConfig,
    out_dir: str | Path,
    val_config: DataConfig | None = None,
) -> Path:
    """Train a U-Net with ``model.fit`` and write a run directory.

    Args:
        model_config: architecture; ``num_classes`` and ``input_channels`` are taken from
            the data.
        data_config: training data. Without ``val_config``, a seeded
            ``validation_fraction`` of it is held out for validation.
        train_config: epochs, learning rate, loss weights, seed.
        out_dir: run directory to create (an interrupted run resumes from its backup).
        val_config: separate validation data (e.g. CamVid's val split).

    Returns:
        The run directory.

    Example:
        >>> from unet_tf import DataConfig, TrainConfig, model_preset, train
        >>> run = train(model_preset("tiny"), DataConfig(num_examples=16),
        ...             TrainConfig(epochs=1), "/tmp/run")  # doctest: +SKIP
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(train_config.seed)
    check_input_size(*data_config.image_size, model_config)

    if val_config is None:
        train_ds, source = make_dataset(data_config, subset="training", training=True)
        val_ds, val_source = make_dataset(data_config, subset="validation")
    else:
        train_ds, source = make_dataset(data_config, training=True)
        val_ds, val_source = make_dataset(val_config, channels=source.channels)
    if tuple(val_source.class_names) != tuple(source.class_names):
        raise ValueError(
            f"validation classes {val_source.class_names} differ from training classes "
            f"{source.class_names}"
        )
    class_names = source.class_names
    model_config = dataclasses.replace(
        model_config, num_classes=len(class_names), input_channels=source.channels
    )
    logger.info("train: %s (%d examples)", source.description, source.size)
    logger.info("validation: %s (%d examples)", val_source.description, val_source.size)

    weights = train_config.class_weights
    if isinstance(weights, str):
        if weights not in BALANCING_POWERS:
            raise ValueError(
                f"class_weights is one weight per class or one of {list(BALANCING_POWERS)}; "
                f"got {weights!r}"
            )
        plain, _ = make_dataset(data_config, subset="training" if val_config is None else None)
        weights = balanced_class_weights(
            class_frequencies(plain, len(class_names)), BALANCING_POWERS[weights]
        )
        logger.info("%s class weights: %s", train_config.class_weights,
                    np.round(weights, 3).tolist())
    if weights is not None and len(weights) != len(class_names):
        raise ValueError(
            f"class_weights has {len(weights)} values for {len(class_names)} classes "
            f"{list(class_names)}"
        )
    if train_config.weight_map:
        train_ds = with_weight_map(
            train_ds, train_config.weight_map_classes, class_weights=weights,
            w0=train_config.weight_map_w0, sigma=train_config.weight_map_sigma,
        )
    elif weights is not None:
        train_ds = with_class_weights(train_ds, weights)
    if train_config.checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last'; got {train_config.checkpoint!r}")

    model = build_unet(model_config)
    steps = -(-source.size // data_config.batch_size)
    compile_model(model, class_names, train_config, steps)

    if (out / "backup").exists():
        logger.warning(
            "resuming the interrupted run in %s from its backup; delete %s to start over",
            out, out / "backup",
        )
    callbacks = [
        keras.callbacks.ModelCheckpoint(
            out / MODEL_FILE, monitor="val_mean_iou", mode="max",
            save_best_only=train_config.checkpoint == "best",
        ),
        keras.callbacks.CSVLogger(out / "history.csv"),
        keras.callbacks.TensorBoard(out / "logs", write_graph=False),
        keras.callbacks.BackupAndRestore(out / "backup"),
    ]
    if train_config.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_mean_iou", mode="max",
                patience=train_config.early_stopping_patience, restore_best_weights=True,
            )
        )

    start = time.time()
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=train_config.epochs,
        shuffle=False,  # the dataset is already shuffled, with a seed
        callbacks=callbacks,
        verbose=train_config.verbose,
    )
    seconds = time.time() - start
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    best_epoch = int(np.argmax(hist["val_mean_iou"])) if hist.get("val_mean_iou") else 0
    best = {k: vals[best_epoch] for k, vals in hist.items()}

    info = RunInfo(
        model=model_config,
        class_names=tuple(class_names),
        input_size=tuple(data_config.image_size),
        # "native": trained on crops at the images' own pixel size; served without resizing
        preprocessing={**PREPROCESSING,
                       "resolution": getattr(data_config, "resolution", "resize")},
        extra={
            "data": data_config.to_dict(),
            "validation_data": val_config.to_dict() if val_config else None,
            "train": {**train_config.to_dict(), "class_weights": (
                [float(w) for w in weights] if weights is not None else None)},
            "best_epoch": best_epoch + 1,
            "saved_epoch": (best_epoch + 1) if train_config.checkpoint == "best" else len(
                hist.get("loss", [])),
            "best_metrics": best,
            # the metrics of the epoch in model.keras (the last one with checkpoint="last")
            "saved_metrics": best if train_config.checkpoint == "best" else {
                k: vals[-1] for k, vals in hist.items()},
            "train_seconds": round(seconds, 1),
            "num_parameters": int(model.count_params()),
        },
    )
    strip_training_config(out / MODEL_FILE)
    info.save(out)
    (out / "history.json").write_text(json.dumps(hist, indent=1) + "\n")
    if hist:
        plot_history(hist, out / "curves.png")
    saved = info.extra["saved_epoch"]
    logger.info(
        "saved epoch %d (%s): val mean IoU %.4f; best epoch %d: %.4f; %.0f s; model in %s",
        saved, train_config.checkpoint,
        info.extra["saved_metrics"].get("val_mean_iou", float("nan")), best_epoch + 1,
        best.get("val_mean_iou", float("nan")), seconds, out / MODEL_FILE,
    )
    return out
