"""Callbacks that keep a run directory true at every moment: history, backup, NaN, Ctrl-C.

A training job may die at any moment (SIGKILL, a pre-empted machine, Ctrl-C). Every file of
the run is written under a temporary name and renamed, and each epoch's files are written in
this order: the history rows and ``config.json``, then ``model.keras``, then the backup
(weights and optimizer state), which is the commit point. A restart resumes after the last
epoch in the backup and drops any history row past it, so the history has every epoch once.

Examples:
    >>> epochs_in_backup("/nonexistent/run")
    0
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np

from unet_tf.checkpoint import atomic_write_text

logger = logging.getLogger("unet_tf")

HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
BACKUP_DIR = "backup"
BACKUP_STATE = "state.json"  # {"epoch": N, "weights": FILE}: written last, after the weights


class TrainingDiverged(ValueError):
    """The loss or the weights became NaN or infinite; the last good epoch is kept."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training; the run directory keeps every completed epoch."""


def read_history(out: str | Path, epochs: int) -> dict[str, list[float]]:
    """The first ``epochs`` rows of a run's history.json ({} when there is none)."""
    path = Path(out) / HISTORY_JSON
    if epochs < 1 or not path.is_file():
        return {}
    try:
        history = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the history to resume the run ({exc}); "
                         f"delete {Path(out)} to start over") from exc
    lengths = {len(values) for values in history.values()}
    if lengths and min(lengths) < epochs:
        raise ValueError(f"{path} records {min(lengths)} epochs but the backup holds "
                         f"{epochs}; delete {Path(out)} to start over")
    return {key: [float(v) for v in values[:epochs]] for key, values in history.items()}


def write_history(out: str | Path, history: dict[str, list[float]]) -> None:
    """history.json and history.csv (one row per epoch), each written atomically."""
    out = Path(out)
    atomic_write_text(out / HISTORY_JSON, json.dumps(history, indent=1) + "\n")
    keys = sorted(history)
    rows = len(history[keys[0]]) if keys else 0
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for i in range(rows):
        writer.writerow([i, *(repr(history[k][i]) for k in keys)])
    atomic_write_text(out / HISTORY_CSV, text.getvalue())


def best_threshold(history: dict[str, list[float]], monitor: str) -> float | None:
    """The best (largest) recorded value of ``monitor``, the bar a resumed run must beat."""
    values = [v for v in history.get(monitor, []) if math.isfinite(v)]
    return max(values) if values else None


def epochs_in_backup(out: str | Path) -> int:
    """How many epochs the run's backup holds (0 when there is none)."""
    state = Path(out) / BACKUP_DIR / BACKUP_STATE
    try:
        return int(json.loads(state.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


class RunHistory(keras.callbacks.Callback):
    """Append each epoch's metrics to ``history`` and write the history files at once.

    ``on_epoch(history)`` runs after the files are written (training writes config.json).
    """

    def __init__(self, out: Path, history: dict[str, list[float]], on_epoch=None):
        super().__init__()
        self.out, self.history, self.on_epoch = Path(out), history, on_epoch

    def on_epoch_end(self, epoch, logs=None):
        rows = len(next(iter(self.history.values()), []))
        for key, value in (logs or {}).items():
            self.history.setdefault(key, [float("nan")] * rows).append(float(value))
        write_history(self.out, self.history)
        if self.on_epoch is not None:
            self.on_epoch(self.history)


class Publish(keras.callbacks.Callback):
    """Rename the file ModelCheckpoint just wrote to its real name (a kill never leaves half
    a model.keras: ModelCheckpoint writes in place)."""

    def __init__(self, written: Path, target: Path):
        super().__init__()
        self.written, self.target = Path(written), Path(target)

    def on_epoch_end(self, epoch, logs=None):
        if self.written.exists():
            os.replace(self.written, self.target)


class RunBackup(keras.callbacks.Callback):
    """Weights and optimizer state after every epoch; restored when training starts again.

    Keras' ``BackupAndRestore`` writes the weights in place and the epoch number after them:
    a kill in between leaves a torn file or weights one epoch ahead of their number. Here
    the weights go to a new file and ``state.json`` names it afterwards, both renamed into
    place, so the backup is always one whole epoch.
    """

    def __init__(self, out: Path, restore_from: Path | None = None):
        super().__init__()
        self.folder = Path(out) / BACKUP_DIR
        # a multi-worker run's other workers restore the chief's backup
        self.restore = Path(restore_from or out) / BACKUP_DIR

    def on_train_begin(self, logs=None):
        state = self.restore / BACKUP_STATE
        if not state.exists():
            return
        weights = self.restore / json.loads(state.read_text())["weights"]
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        try:
            self.model.load_weights(weights)
        except Exception as exc:  # a backup of another model, a damaged file
            raise ValueError(f"{weights}: cannot restore the backup ({exc}); delete "
                             f"{self.restore.parent} to start over") from exc

    def on_epoch_end(self, epoch, logs=None):
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"epoch{epoch + 1:05d}.weights.h5"
        tmp = self.folder / f".{name}.tmp.weights.h5"
        self.model.save_weights(tmp)
        os.replace(tmp, self.folder / name)
        atomic_write_text(self.folder / BACKUP_STATE,
                          json.dumps({"epoch": epoch + 1, "weights": name}) + "\n")
        for old in self.folder.glob("epoch*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)


class DivergenceGuard(keras.callbacks.Callback):
    """Stop at the first NaN or infinite loss, before anything of that epoch is saved.

    Put it first in the callback list: it raises :class:`TrainingDiverged` from the batch
    (or, for the validation loss and the weights, from the epoch end) before the checkpoint
    and backup callbacks run, so the files keep the last good epoch.
    """

    def __init__(self, learning_rate: float):
        super().__init__()
        self.learning_rate = learning_rate
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _stop(self, what: str, step: int | None = None):
        where = (f"epoch {self.epoch + 1}, step {step + 1}" if step is not None else
                 f"the end of epoch {self.epoch + 1} (after step {self.params.get('steps')})")
        raise TrainingDiverged(
            f"training diverged: {what} at {where} (learning rate {self.learning_rate:g}); "
            "lower the learning rate (--learning-rate)")

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._stop(f"the loss is {float(loss)}", batch)

    def on_epoch_end(self, epoch, logs=None):
        for key in ("loss", "val_loss"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                self._stop(f"{key} is {float(value)}")
        if not all(np.isfinite(w).all() for w in self.model.get_weights()):
            self._stop("the weights hold NaN or infinite values")


class Throughput(keras.callbacks.Callback):
    """Log the training speed of every epoch in images/s (validation time left out).

    ``rates`` keeps each epoch's images/s; the first epoch includes tracing and compiling.
    """

    def __init__(self, images_per_epoch: int):
        super().__init__()
        self.images = images_per_epoch
        self.rates: list[float] = []
        self.start = self.trained = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.trained = time.perf_counter(), 0.0

    def on_test_begin(self, logs=None):
        if self.start and not self.trained:
            self.trained = time.perf_counter() - self.start

    def on_epoch_end(self, epoch, logs=None):
        seconds = self.trained or time.perf_counter() - self.start
        self.rates.append(self.images / max(seconds, 1e-9))
        logger.info("epoch %d: %.1f images/s training (%d images in %.1f s; validation %.1f s)",
                    epoch + 1, self.rates[-1], self.images, seconds,
                    time.perf_counter() - self.start - seconds)


class ResumedEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' ``EarlyStopping`` (mode "max") that continues a resumed run's count: the best
    score, its epoch and the epochs waited since come from the recorded history, and the
    best weights from the run's best ``model.keras``, so a restart stops where an
    uninterrupted run would."""

    def __init__(self, history: dict[str, list[float]], best_model: Path | None = None, **kw):
        super().__init__(mode="max", **kw)
        self.history, self.best_model = history, best_model

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        scores = [v if math.isfinite(v) else -math.inf for v in self.history.get(self.monitor, [])]
        if not scores or max(scores) == -math.inf:
            return
        self.best_epoch = int(np.argmax(scores))
        self.best = scores[self.best_epoch]
        self.wait = len(scores) - 1 - self.best_epoch
        if self.restore_best_weights and self.best_model and Path(self.best_model).exists():
            best = keras.saving.load_model(self.best_model, compile=False)
            self.best_weights = best.get_weights()


class StopOnSignal(keras.callbacks.Callback):
    """Raise :class:`TrainingInterrupted` after the step during which ``requested`` was set."""

    def __init__(self):
        super().__init__()
        self.requested = False
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _check(self, batch=None, logs=None):
        if self.requested:
            raise TrainingInterrupted(f"stopped by Ctrl-C during epoch {self.epoch + 1}")

    on_train_batch_end = on_test_batch_end = _check


@contextmanager
def stop_on_sigint(stopper: StopOnSignal):
    """The first Ctrl-C asks ``stopper`` to stop after the current step; a second one
    interrupts at once. Outside the main thread (no signals there) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stopper.requested:
            raise KeyboardInterrupt
        stopper.requested = True
        logger.warning("Ctrl-C: stopping after this step and saving the run "
                       "(press Ctrl-C again to stop at once)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
