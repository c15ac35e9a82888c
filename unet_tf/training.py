"""Training with ``model.fit``: data -> model -> fit -> a run directory.

The run directory holds ``model.keras`` (the best epoch by validation mean IoU, or the last
one with ``checkpoint="last"``),
``config.json`` (model and data config, class names, input size, preprocessing, best
metrics), ``history.csv`` / ``history.json``, ``curves.png`` and TensorBoard logs.

A run stopped by Ctrl-C (``status: interrupted`` in config.json), a NaN loss (``diverged``)
or a kill (``running``) keeps its completed epochs; the same call resumes it from its backup
(:mod:`unet_tf.callbacks`) with the whole history and the best score so far. A finished run
is never silently replaced.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from unet_tf.callbacks import (
    BACKUP_DIR,
    DivergenceGuard,
    Publish,
    ResumedEarlyStopping,
    RunBackup,
    RunHistory,
    StopOnSignal,
    Throughput,
    TrainingDiverged,
    best_threshold,
    epochs_in_backup,
    read_history,
    stop_on_sigint,
    write_history,
)
from unet_tf.checkpoint import MODEL_FILE, RunInfo, check_run_dir, strip_training_config
from unet_tf.cluster import task_name
from unet_tf.config import DataConfig, ModelConfig, TrainConfig
from unet_tf.distributed import (
    fit_multi_worker,
    is_chief,
    is_distributed,
    is_multi_worker,
    make_strategy,
    synchronize_batch_norm,
    weights_fingerprint,
)
from unet_tf.finetune import FreezeEncoder, copy_weights, initial_config
from unet_tf.losses import SegmentationLoss
from unet_tf.metrics import segmentation_metrics
from unet_tf.model import build_unet, check_input_size
from unet_tf.precision import dtype_policy, resolve_precision
from unet_tf.run_record import resume_settings, run_info, stop_error
from unet_tf.training_data import class_weights, training_datasets, with_pixel_weights
from unet_tf.viz import plot_history
from unet_tf.xla import resolve_jit_compile

logger = logging.getLogger("unet_tf")


def compile_model(
    model: keras.Model, class_names, train: TrainConfig, steps_per_epoch: int,
    jit_compile: bool | str | None = None,
) -> keras.Model:
    """Compile with AdamW + cosine decay, the segmentation loss and IoU metrics.

    Fine-tuning an existing model works the same way: ``compile_model(model, ...)`` then
    ``model.fit``. ``jit_compile`` goes to ``model.compile``; None (the default) takes
    ``train.jit_compile``: "on" and "off" stand, "auto" is Keras' choice (XLA on GPUs only),
    because the CPU rule needs the run's size, which only the caller knows.
    :func:`unet_tf.train` passes what ``train.jit_compile`` resolves to for its run on this
    host (:func:`unet_tf.xla.resolve_jit_compile`).
    """
    if jit_compile is None:
        jit_compile = {"on": True, "off": False}.get(train.jit_compile, "auto")
    schedule = keras.optimizers.schedules.CosineDecay(
        train.learning_rate, decay_steps=max(1, train.epochs * steps_per_epoch), alpha=0.01
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=train.weight_decay),
        loss=SegmentationLoss(dice_weight=train.dice_weight, focal_weight=train.focal_weight),
        metrics=segmentation_metrics(class_names),
        jit_compile=jit_compile,
    )
    return model


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

    Examples:
        >>> from unet_tf import DataConfig, TrainConfig, model_preset, train
        >>> run = train(model_preset("tiny"), DataConfig(num_examples=16),
        ...             TrainConfig(epochs=1), "/tmp/run")  # doctest: +SKIP
    """
    out = Path(out_dir)
    settings = resume_settings(model_config, data_config, val_config, train_config)
    # first: MultiWorkerMirroredStrategy must exist before TensorFlow runs anything
    strategy = make_strategy(train_config.strategy, train_config.cluster_timeout)
    status = check_run_dir(out, settings)
    if not is_chief(strategy):
        # The other workers of a multi-worker run make the same calls as the chief (saving
        # reads replicated variables collectively) into a scratch folder, thrown away.
        scratch = Path(tempfile.mkdtemp(prefix="unet_tf-worker-"))
        try:
            _train(model_config, data_config, train_config, val_config, strategy, settings,
                   status, out, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return out
    out.mkdir(parents=True, exist_ok=True)
    return _train(model_config, data_config, train_config, val_config, strategy, settings,
                  status, out, out)


def _train(model_config, data_config, train_config, val_config, strategy, settings, status,
           out: Path, dest: Path) -> Path:
    """Train, resuming the run in ``out``; write the run into ``dest`` (``out`` but on the
    other workers of a multi-worker run)."""
    keras.utils.set_random_seed(train_config.seed)
    _check_crop(data_config, model_config)
    train_ds, val_ds, source, val_source = training_datasets(data_config, val_config)
    class_names = source.class_names
    model_config, start_from = _run_model_config(model_config, train_config, data_config,
                                                source, strategy)
    logger.info("train: %s (%d examples)", source.description, source.size)
    logger.info("validation: %s (%d examples)", val_source.description, val_source.size)
    weights = class_weights(train_config, data_config, val_config, class_names)
    train_ds = with_pixel_weights(train_ds, train_config, weights)
    if train_config.checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last'; got {train_config.checkpoint!r}")

    steps = -(-source.size // data_config.batch_size)
    precision = resolve_precision(train_config.precision)
    model = _compiled_model(model_config, class_names, train_config, data_config, precision,
                           source.size, steps, strategy)
    done = epochs_in_backup(out) if status is not None else 0
    history = read_history(out, done)
    if done:
        logger.warning("resuming the %s run in %s after epoch %d of %d; delete %s to start "
                       "over", status, out, done, train_config.epochs, out)
    if start_from is not None and not done:  # a resumed run restores its own backup
        copy_weights(model, start_from)

    def info(hist: dict[str, list[float]], state: str) -> RunInfo:
        return run_info(model, model_config, class_names, data_config, val_config,
                        train_config, weights, hist, state, settings)

    stopper, recorder = StopOnSignal(), RunHistory(dest, history, on_epoch=lambda hist: info(
        hist, "running").save(dest))
    speed = Throughput(source.size)  # an epoch is source.size images (steps round up)
    saving = dest / f".{MODEL_FILE}.saving.keras"  # renamed to model.keras once whole
    callbacks = _run_callbacks(train_config, history, done, out, dest, saving,
                              [stopper, recorder], speed)
    # One iterator over the repeated data: epoch k gets the k-th shuffle and augmentation
    # seeds, and a resumed run skips the seeds of the epochs done by opening (not reading)
    # that many iterators, so it sees the batches an uninterrupted run would have seen.
    for _ in range(done):
        iter(train_ds)
    info(history, "running").save(dest)
    state, stopped, seconds = _fit(model, strategy, train_ds, val_ds, class_names,
                                   train_config, done, steps, callbacks, stopper)
    hist = recorder.history
    if not (dest / MODEL_FILE).exists() and state == "finished":
        model.save(saving)  # no epoch beat the bar (NaN IoU): keep the last one
        saving.replace(dest / MODEL_FILE)
    final = info(hist, state)
    final.extra.update(_how_it_ran(model, precision, seconds, speed))
    _write_run(dest, final, hist)
    if stopped is not None:
        raise stop_error(stopped, state, out, final)
    shutil.rmtree(out / BACKUP_DIR, ignore_errors=True)
    _log_result(final, train_config, seconds, out)
    return out


def _check_crop(data_config: DataConfig, model_config: ModelConfig) -> None:
    """The image size, and the crop taken from it, suit the model (and the crop fits)."""
    check_input_size(*data_config.image_size, model_config)
    crop = data_config.augment.crop
    if crop is not None:
        size = tuple(data_config.image_size)
        if crop[0] > size[0] or crop[1] > size[1]:
            raise ValueError(f"crop {crop[0]}x{crop[1]} (--crop) is larger than the image size "
                             f"{size[0]}x{size[1]} (--image-size); crop to at most that")
        check_input_size(*crop, model_config)


def _run_model_config(model_config: ModelConfig, train_config: TrainConfig,
                     data_config: DataConfig, source, strategy):
    """(the architecture to build, the model to start from or None): ``model_config`` with
    the data's classes and channels, or the ``train_config.init`` model's architecture."""
    class_names = source.class_names
    model_config = dataclasses.replace(
        model_config, num_classes=len(class_names), input_channels=source.channels
    )
    if not train_config.init:
        return model_config, None
    # its architecture, not model_config's, and its weights
    model_config, start_from = initial_config(train_config.init, class_names, source.channels)
    check_input_size(*(data_config.augment.crop or data_config.image_size), model_config)
    if train_config.freeze_encoder_epochs and is_multi_worker(strategy):
        raise ValueError("freeze_encoder_epochs is not supported with the multi-worker "
                         "strategy; fine-tune on one host")
    return model_config, start_from


def _compiled_model(model_config: ModelConfig, class_names, train_config: TrainConfig,
                   data_config: DataConfig, precision: str, num_examples: int, steps: int,
                   strategy) -> keras.Model:
    """The U-Net built and compiled in the strategy's scope, at the run's precision and with
    XLA as ``train_config.jit_compile`` resolves for the run's size on this host."""
    if train_config.precision == "auto":
        logger.info("precision auto: %s on this host", precision)
    height, width = data_config.augment.crop or data_config.image_size
    jit_compile = resolve_jit_compile(
        train_config.jit_compile,
        train_pixels=train_config.epochs * num_examples * height * width,
        distributed=is_distributed(strategy))
    with strategy.scope(), dtype_policy(precision):
        model = build_unet(model_config)
        compile_model(model, class_names, train_config, steps, jit_compile)
    if train_config.jit_compile == "auto":
        logger.info("jit_compile auto: %s on this host",
                    "XLA" if model.jit_compile else "no XLA")
    if strategy.num_replicas_in_sync > 1:
        synchronize_batch_norm(model, True)
        logger.info("%s: %d replicas, global batch %d", type(strategy).__name__,
                    strategy.num_replicas_in_sync, data_config.batch_size)
    return model


def _run_callbacks(train_config: TrainConfig, history: dict[str, list[float]], done: int,
                  out: Path, dest: Path, saving: Path, recorders: list, speed: Throughput
                  ) -> list[keras.callbacks.Callback]:
    """The fit's callbacks in order: the NaN guard (it raises before anything is saved), the
    encoder freeze, ``recorders``, saving the kept epoch and publishing it as model.keras,
    TensorBoard, ``speed``, the backup (the commit point of an epoch), early stopping."""
    callbacks = [DivergenceGuard(train_config.learning_rate)]
    if train_config.freeze_encoder_epochs:
        callbacks.append(FreezeEncoder(train_config.freeze_encoder_epochs, done))
    callbacks += [
        *recorders,
        keras.callbacks.ModelCheckpoint(
            saving, monitor="val_mean_iou", mode="max",
            save_best_only=train_config.checkpoint == "best",
            initial_value_threshold=best_threshold(history, "val_mean_iou"),
        ),
        Publish(saving, dest / MODEL_FILE),
        keras.callbacks.TensorBoard(dest / "logs", write_graph=False),
        speed,
        RunBackup(dest, restore_from=out),
    ]
    if train_config.early_stopping_patience:
        callbacks.append(ResumedEarlyStopping(
            history, out / MODEL_FILE if train_config.checkpoint == "best" else None,
            monitor="val_mean_iou", patience=train_config.early_stopping_patience,
            restore_best_weights=True))
    return callbacks


def _fit(model, strategy, train_ds, val_ds, class_names, train_config: TrainConfig,
         done: int, steps: int, callbacks, stopper: StopOnSignal
         ) -> tuple[str, BaseException | None, float]:
    """Fit from epoch ``done``: (state, the exception that stopped it or None, seconds); the
    state is "finished", "diverged" (a NaN loss) or "interrupted" (Ctrl-C, SIGTERM)."""
    start, state, stopped = time.time(), "finished", None
    try:
        with stop_on_sigint(stopper), strategy.scope():
            if is_multi_worker(strategy):
                fit_multi_worker(
                    model, strategy, train_ds.repeat(), val_ds, class_names=class_names,
                    epochs=train_config.epochs, initial_epoch=done, steps=steps,
                    callbacks=callbacks, verbose=train_config.verbose)
            else:
                model.fit(
                    train_ds.repeat(), steps_per_epoch=steps, initial_epoch=done,
                    validation_data=val_ds, epochs=train_config.epochs, callbacks=callbacks,
                    shuffle=False,  # the dataset is already shuffled, with a seed
                    verbose=train_config.verbose,
                )
    except TrainingDiverged as exc:
        state, stopped = "diverged", exc
    except KeyboardInterrupt as exc:  # StopOnSignal's, or a second Ctrl-C
        state, stopped = "interrupted", exc
    seconds = time.time() - start
    if is_multi_worker(strategy):  # the workers' copies must agree, and the log shows it
        logger.info("%s: weights fingerprint %s", task_name(), weights_fingerprint(model))
    return state, stopped, seconds


def _how_it_ran(model, precision: str, seconds: float, speed: Throughput) -> dict:
    """config.json's record of how the run was trained on this host."""
    extra = {
        "train_seconds": round(seconds, 1),
        "precision": precision,  # what "auto" resolved to on this host
        "jit_compile": bool(model.jit_compile),  # XLA, as "auto" resolved
    }
    if speed.rates:  # the median epoch: the first one includes tracing
        extra["train_images_per_second"] = round(float(np.median(speed.rates)), 2)
    return extra


def _write_run(dest: Path, final: RunInfo, hist: dict[str, list[float]]) -> None:
    """The run's last files: model.keras without its optimizer, config.json, the history
    and its curves."""
    strip_training_config(dest / MODEL_FILE)
    final.save(dest)
    write_history(dest, hist)
    if hist:
        tmp = dest / ".curves.tmp.png"
        plot_history(hist, tmp)
        tmp.replace(dest / "curves.png")


def _log_result(final: RunInfo, train_config: TrainConfig, seconds: float, out: Path) -> None:
    saved, best_epoch = final.extra["saved_epoch"], final.extra["best_epoch"]
    logger.info(
        "saved epoch %d (%s): val mean IoU %.4f; best epoch %d: %.4f; %.0f s; model in %s",
        saved, train_config.checkpoint,
        final.extra["saved_metrics"].get("val_mean_iou", float("nan")), best_epoch,
        final.extra["best_metrics"].get("val_mean_iou", float("nan")), seconds,
        out / MODEL_FILE,
    )
