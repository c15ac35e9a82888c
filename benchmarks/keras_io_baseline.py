"""The keras-io Oxford pets example's model, rebuilt as a baseline for the pets recipe.

``build_keras_io_model`` is the architecture of keras-io's
``examples/vision/oxford_pets_image_segmentation.py`` (fchollet; about 2.06 M parameters:
an Xception-style encoder of separable convolutions with strided residual projections, a
decoder of transposed convolutions and upsampling), layer for layer, with Keras' default
batch-norm momentum (0.99). Two changes so that it plugs into this project's evaluation:
the head returns logits (the example puts the softmax inside the model; the argmax is the
same) and inputs are scaled to [0, 1] by the project's shared preprocessing. Training follows
the example: RMSprop, sparse cross-entropy, batch 32, no augmentation, for a wall-clock
budget (the pets recipe gives it as long as the U-Net recipe trained).

Usage: ``python -m benchmarks keras_io_baseline --minutes 15``
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import keras
from keras import layers

from unet_tf.checkpoint import MODEL_FILE, RunInfo
from unet_tf.config import AugmentConfig, DataConfig, ModelConfig
from unet_tf.metrics import segmentation_metrics


def build_keras_io_model(num_classes: int = 3, channels: int = 3) -> keras.Model:
    """The keras-io pets segmentation model, returning logits."""
    inputs = keras.Input((None, None, channels), name="image")
    x = layers.Conv2D(32, 3, strides=2, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous = x
    for filters in (64, 128, 256):
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(filters, 1, strides=2, padding="same")(previous)
        x = layers.add([x, residual])
        previous = x
    for filters in (256, 128, 64, 32):
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.UpSampling2D(2)(x)
        residual = layers.UpSampling2D(2)(previous)
        residual = layers.Conv2D(filters, 1, padding="same")(residual)
        x = layers.add([x, residual])
        previous = x
    logits = layers.Conv2D(num_classes, 3, padding="same", name="head_logits")(x)
    return keras.Model(inputs, logits, name="keras_io_unet")


class TimeBudget(keras.callbacks.Callback):
    """Stop training at the end of the first epoch past ``seconds`` of wall time."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        if time.time() - self.start >= self.seconds:
            self.model.stop_training = True


def train_keras_io(data: DataConfig, out: Path, seconds: float, max_epochs: int = 1000) -> Path:
    """Train the baseline on ``data``'s training subset for a time budget; a run directory."""
    # here, not at import: build_keras_io_model needs keras only (gpu_check.py runs it on JAX)
    from unet_tf.data import PREPROCESSING, make_dataset

    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(data.seed)
    data = dataclasses.replace(data, batch_size=32, augment=AugmentConfig.none())
    train_ds, source = make_dataset(data, subset="training", training=True)
    val_ds, _ = make_dataset(data, subset="validation")
    model = build_keras_io_model(len(source.class_names), source.channels)
    model.compile(
        optimizer="rmsprop",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=segmentation_metrics(source.class_names),
    )
    start = time.time()
    history = model.fit(train_ds, validation_data=val_ds, epochs=max_epochs,
                        callbacks=[TimeBudget(seconds)], verbose=2)
    seconds_used = time.time() - start
    model.save(out / MODEL_FILE)  # the last epoch: the held-out data is the test data
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    (out / "history.json").write_text(json.dumps(hist, indent=1) + "\n")
    RunInfo(
        model=ModelConfig(num_classes=len(source.class_names), input_channels=source.channels,
                          output_stride=1),
        class_names=tuple(source.class_names),
        input_size=tuple(data.image_size),
        preprocessing=dict(PREPROCESSING),
        extra={
            "architecture": "keras-io oxford_pets_image_segmentation (logits head)",
            "data": data.to_dict(),
            "train": {"optimizer": "rmsprop", "loss": "sparse categorical cross-entropy",
                      "batch_size": 32, "augment": None, "time_budget_seconds": seconds},
            "saved_epoch": len(hist.get("loss", [])),
            "best_metrics": {k: v[-1] for k, v in hist.items()},
            "train_seconds": round(seconds_used, 1),
            "num_parameters": int(model.count_params()),
        },
    ).save(out)
    return out


def main(argv=None) -> None:
    """Train the baseline alone for ``--minutes`` and record its run (it is scored by the
    pets recipe, ``python -m benchmarks recipe_pets --only keras_io``)."""
    import argparse

    from benchmarks.harness import record
    from benchmarks.recipe_common import RUNS, SETTING_KEYS, SHARED_DATA, run_summary

    parser = argparse.ArgumentParser(prog="python -m benchmarks keras_io_baseline",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--data-root", type=Path, default=SHARED_DATA)
    args = parser.parse_args(argv)
    spec = f"oxford-pets:{args.data_root / 'oxford_pets_sample'}"
    run = train_keras_io(DataConfig(spec=spec, image_size=(128, 128)), RUNS / "pets_keras_io",
                         args.minutes * 60)
    print(f"model: {run / MODEL_FILE}")
    summary = run_summary(run)
    record("keras_io_baseline", "keras_io",
           {**{k: v for k, v in summary.items() if k in SETTING_KEYS}, "minutes": args.minutes},
           {k: v for k, v in summary.items() if k not in SETTING_KEYS})


if __name__ == "__main__":
    main()
