"""Training on several devices or machines with ``tf.distribute``.

``TrainConfig.strategy`` (``unet-tf train --strategy``) picks one of:

- ``one``: TensorFlow's default strategy, one device (what a laptop runs).
- ``mirrored``: ``MirroredStrategy`` with ``model.fit``: the GPUs of one host, else its
  logical CPU devices.
- ``multi-worker``: ``MultiWorkerMirroredStrategy`` across the hosts that ``TF_CONFIG`` lists.
  Keras 3's ``model.fit`` does not run under it (keras-team/keras#20585), so
  :func:`fit_multi_worker` is a custom loop with the same callbacks: ``strategy.run`` per step,
  per-worker input from ``distribute_datasets_from_function``, the loss scaled by the global
  batch, and the chief alone writing the run directory.
- ``auto`` (the default): ``multi-worker`` when ``TF_CONFIG`` lists more than one task,
  ``mirrored`` when there are several GPUs, else ``one``.

``TF_CONFIG`` is read with ``TFConfigClusterResolver`` and checked (this task must be one of
its cluster's). Before ``MultiWorkerMirroredStrategy`` is created, every other worker's
address must answer within ``TrainConfig.cluster_timeout`` seconds (:func:`wait_for_workers`):
TensorFlow itself would wait an hour for a missing worker, deaf to SIGTERM and Ctrl-C.

With several replicas the batch norm statistics are synchronised across them
(``synchronized=True`` while training), so a run sees the statistics of the global batch, as a
single-process run of the same global batch does, and every replica keeps the same weights.
The saved ``model.keras`` has plain batch norm layers again.

The loop's metrics are :func:`unet_tf.metrics.fit_scores` of the confusion counts
(:func:`unet_tf.metrics.confusion_counts`) summed over replicas and batches: the numbers
``model.fit``'s :func:`unet_tf.metrics.segmentation_metrics` give.

Examples:
    >>> make_strategy("one").num_replicas_in_sync
    1
"""

from __future__ import annotations

import hashlib
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from unet_tf.cluster import (
    cluster_size,
    cluster_tasks,
    is_chief_task,
    wait_for_workers,
)
from unet_tf.config import IGNORE_LABEL, STRATEGIES
from unet_tf.metrics import confusion_counts, fit_scores

logger = logging.getLogger("unet_tf")

def make_strategy(name: str, cluster_timeout: float = 120.0) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy for ``TrainConfig.strategy`` (see the module doc).

    A multi-worker strategy is created once every worker answers, within
    ``cluster_timeout`` seconds (:func:`wait_for_workers`).
    """
    if name not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {list(STRATEGIES)}; got {name!r}")
    if name == "auto":
        if cluster_size() > 1:
            name = "multi-worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "one"
    if name == "one":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if cluster_size() < 2:
        raise ValueError("--strategy multi-worker needs TF_CONFIG listing the cluster's "
                         "workers (see the README's scale-out guide); TF_CONFIG is "
                         f"{'unset' if 'TF_CONFIG' not in os.environ else 'a single task'}")
    if cluster_tasks()[1] is None:
        raise ValueError("TF_CONFIG lists a cluster but not this process's task; add "
                         '"task": {"type": "worker", "index": I} with a distinct I per process')
    wait_for_workers(cluster_timeout)
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_distributed(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` is a ``tf.distribute`` strategy, not TensorFlow's default one."""
    return strategy is not tf.distribute.get_strategy()


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run directory (worker 0, or a task named chief)."""
    return not is_multi_worker(strategy) or is_chief_task()


def weights_fingerprint(model: keras.Model) -> str:
    """A short hash of every weight (trainable or not): equal on all workers of a run."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]


def synchronize_batch_norm(model: keras.Model, on: bool) -> None:
    """Batch statistics over the global batch (all replicas) while ``on``."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = on


def worker_batches(dataset: tf.data.Dataset, context: tf.distribute.InputContext,
                   replicas: int) -> tf.data.Dataset:
    """This worker's per-replica slices of every global batch of ``dataset``.

    Every worker builds the same seeded stream of global batches and keeps replica ``r``'s
    examples ``r, r + R, r + 2R, ...`` of each, so the replicas together train on exactly
    the batches a single-process run sees (the decoding is repeated on each worker). Each
    slice carries the global batch's size and labelled-pixel count, by which the loss is
    scaled. A final global batch smaller than the number of replicas is skipped.
    """
    local = replicas // context.num_input_pipelines
    first = context.input_pipeline_id * local

    def slices(*batch):
        x, y = batch[0], batch[1]
        size = tf.shape(x)[0]
        labelled = tf.maximum(tf.reduce_sum(tf.cast(tf.not_equal(y, IGNORE_LABEL), tf.float32)),
                              1.0)

        def one(i):
            return (*(t[first + tf.cast(i, tf.int32)::replicas] for t in batch), size, labelled)

        return tf.data.Dataset.range(local).map(one)

    return (dataset.filter(lambda *b: tf.shape(b[0])[0] >= replicas)
            .flat_map(slices).prefetch(tf.data.AUTOTUNE))


def fit_multi_worker(model: keras.Model, strategy, train_ds: tf.data.Dataset,
                     val_ds: tf.data.Dataset, *, class_names, epochs: int, initial_epoch: int,
                     steps: int, callbacks: list, verbose) -> None:
    """``model.fit`` for ``MultiWorkerMirroredStrategy``: the same epochs, logs and callbacks.

    ``train_ds`` is the repeated stream of global batches (image, mask[, pixel weights]);
    ``model`` is built and compiled under ``strategy.scope()``. Logs carry the keys
    ``model.fit`` writes (``loss``, the metrics, ``val_`` ones), so the run directory is the
    same as a single-process run's.
    """
    replicas = strategy.num_replicas_in_sync
    train_step, eval_step = _distributed_steps(model, strategy, len(class_names))
    train_dist = iter(strategy.distribute_datasets_from_function(
        lambda ctx: worker_batches(train_ds, ctx, replicas)))
    chief = is_chief(strategy)
    calls = keras.callbacks.CallbackList(
        callbacks, add_history=False, add_progbar=bool(verbose) and chief, model=model,
        verbose=1 if verbose == "auto" else verbose, epochs=epochs, steps=steps)
    model.stop_training = False
    calls.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        calls.on_epoch_begin(epoch)
        train = EpochTotals(class_names)
        for step in range(steps):
            calls.on_train_batch_begin(step)
            calls.on_train_batch_end(step, {"loss": train.add(*train_step(train_dist))})
        calls.on_test_begin()
        val = EpochTotals(class_names)
        for batch in strategy.distribute_datasets_from_function(
                lambda ctx: worker_batches(val_ds, ctx, replicas)):
            val.add(*eval_step(batch))
        calls.on_test_end(val.logs("val_"))
        calls.on_epoch_end(epoch, {**train.logs(), **val.logs("val_")})
        if model.stop_training:
            break
    calls.on_train_end()


class EpochTotals:
    """A running epoch: loss averaged over examples (as Keras' loss tracker), counts."""

    def __init__(self, class_names):
        self.class_names = class_names
        self.loss = self.seen = 0.0
        n = len(class_names)
        self.counts = np.zeros((n, n))

    def add(self, loss, counts, size) -> float:
        self.loss += float(loss) * float(size)
        self.seen += float(size)
        self.counts += counts.numpy()
        return self.loss / self.seen

    def logs(self, prefix="") -> dict:
        return {f"{prefix}loss": self.loss / max(self.seen, 1.0),
                **fit_scores(self.counts, self.class_names, prefix)}


def _distributed_steps(model: keras.Model, strategy, n: int):
    """(train_step, eval_step): tf.functions running one global batch on every replica and
    returning the summed loss shares, the summed confusion counts and the batch's size."""
    loss_fn, optimizer = model.loss, model.optimizer

    def share(y, logits, weights, labelled):
        """This replica's share of the global batch's loss (the loss's own mean over the
        labelled pixels, as ``model.fit`` computes it on one device, with the global batch's
        count): the replicas' shares, and their gradients, sum to the global batch's."""
        per_pixel = loss_fn.call(y, logits)  # unreduced: Keras' reduction would divide by R
        if weights is not None:
            per_pixel = per_pixel * tf.reshape(tf.cast(weights, per_pixel.dtype),
                                               tf.shape(per_pixel))
        local = tf.maximum(tf.reduce_sum(tf.cast(tf.not_equal(y, IGNORE_LABEL), tf.float32)),
                           1.0)
        pixels = tf.cast(tf.size(per_pixel), tf.float32)
        return tf.reduce_sum(per_pixel) / pixels * local / labelled

    def replica_train(x, y, *rest):
        weights = rest[0] if len(rest) == 3 else None
        labelled = rest[-1]
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = share(y, logits, weights, labelled)
        grads = tape.gradient(loss, model.trainable_variables)
        # all-reduces the gradients (a sum over replicas), then updates every copy
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss, confusion_counts(y, logits, n)

    def replica_eval(x, y, size, labelled):
        logits = model(x, training=False)
        return share(y, logits, None, labelled), confusion_counts(y, logits, n)

    def reduced(values):
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in values]

    @tf.function
    def train_step(iterator):
        batch = next(iterator)
        return (*reduced(strategy.run(replica_train, args=batch)),
                strategy.experimental_local_results(batch[-2])[0])

    @tf.function
    def eval_step(batch):
        return (*reduced(strategy.run(replica_eval, args=batch)),
                strategy.experimental_local_results(batch[-2])[0])

    return train_step, eval_step

