"""tf.distribute: two worker processes on 127.0.0.1, MirroredStrategy on logical CPUs, and the
pieces of the multi-worker loop (input slices, metrics as Keras computes them)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import unet_tf.cluster as cluster
from unet_tf import DataConfig, TrainConfig, model_preset, train
from unet_tf.cli import main
from unet_tf.cluster import answers, wait_for_workers
from unet_tf.distributed import EpochTotals, make_strategy, worker_batches
from unet_tf.metrics import confusion_counts, segmentation_metrics

SCRIPT = "import sys; from unet_tf.cli import main; sys.exit(main(sys.argv[1:]))"
# global batch 8 over 2 replicas; balanced class weights exercise the sample-weight path;
# float32, since these tests compare strategies: bfloat16 (the default "auto" on BF16 CPUs)
# rounds differently in another reduction order (val_loss 1% apart after 3 epochs)
ARGS = ["train", "--preset", "tiny", "--epochs", "3", "--num-examples", "32", "--image-size",
        "32", "--batch-size", "8", "--class-weights", "balanced", "--learning-rate", "0.01",
        "--precision", "float32", "--no-evaluate"]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def history(run: Path) -> dict:
    return json.loads((run / "history.json").read_text())


def single_process_run(tmp_path: Path) -> Path:
    data = DataConfig(num_examples=32, image_size=(32, 32), batch_size=8)
    return train(model_preset("tiny"), data, TrainConfig(epochs=3, class_weights="balanced",
                 learning_rate=0.01, strategy="one", precision="float32", verbose=0),
                 tmp_path / "single")


def start_workers(out: Path, *extra: str) -> list[subprocess.Popen]:
    """Two worker processes on 127.0.0.1 running the same `unet-tf train` command."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(
            [sys.executable, "-c", SCRIPT, *ARGS, *extra, "--strategy", "multi-worker",
             "--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True))
    return workers


def finish(workers: list[subprocess.Popen]) -> list[str]:
    logs = []
    for worker in workers:
        try:
            logs.append(worker.communicate(timeout=240)[0])
        except subprocess.TimeoutExpired:
            for w in workers:
                w.kill()
            pytest.fail("the two workers did not finish in 240 s")
        assert worker.returncode == 0, logs[-1][-3000:]
    return logs


@pytest.fixture(scope="module")
def two_worker_run(tmp_path_factory):
    """(run directory, worker logs) of one uninterrupted 2-worker run of ARGS (3 epochs),
    shared by the tests that compare with it."""
    out = tmp_path_factory.mktemp("two_workers") / "multi"
    return out, finish(start_workers(out))


@pytest.mark.slow  # two worker processes and a single-process run, ~40 s
def test_two_workers_train_like_one_process_and_agree_on_the_weights(two_worker_run, tmp_path):
    out, logs = two_worker_run
    prints = [re.findall(r"(worker \d): weights fingerprint (\w+)", log) for log in logs]
    assert [p[0][0] for p in prints] == ["worker 0", "worker 1"], logs
    assert prints[0][0][1] == prints[1][0][1]  # the same weights on both workers
    assert "2 replicas, global batch 8" in logs[0]

    # the chief wrote a complete run directory, the same files as a single-process run
    single = single_process_run(tmp_path)
    assert {p.name for p in out.iterdir()} == {p.name for p in single.iterdir()}
    multi, one = history(out), history(single)
    assert multi.keys() == one.keys() and len(multi["loss"]) == 3
    assert multi["loss"][-1] < multi["loss"][0], multi["loss"]  # it learns
    # the same global batches, the loss scaled by the global batch and batch norm over
    # it: the two runs agree up to float round-off (summation order of the all-reduce).
    # Losses are smooth in that round-off; IoU counts argmax decisions, and a tiny model
    # after 3 epochs has near-ties that flip (0.0023 apart at IoU 0.1 on an AVX2 host)
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(multi[key], one[key], rtol=2e-3, atol=2e-3, err_msg=key)
    for key in ("val_mean_iou", "mean_iou"):
        np.testing.assert_allclose(multi[key], one[key], atol=1e-2, err_msg=key)
    saved = json.loads((out / "config.json").read_text())
    assert saved["status"] == "finished" and saved["epochs_done"] == 3
    # the released model has plain batch norm layers (synchronised only while training)
    model = keras.saving.load_model(out / "model.keras")
    assert not any(getattr(layer, "synchronized", False) for layer in model.layers)


@pytest.mark.slow  # four worker processes, ~40 s (the uninterrupted run is shared)
def test_a_killed_two_worker_run_resumes_to_the_uninterrupted_result(two_worker_run, tmp_path):
    whole_run, _ = two_worker_run
    out = tmp_path / "killed"
    workers = start_workers(out)
    state = out / "backup" / "state.json"
    deadline = time.time() + 180
    while time.time() < deadline:  # kill both once the backup holds an epoch
        try:
            if json.loads(state.read_text())["epoch"] >= 1:
                break
        except (OSError, ValueError, KeyError):
            pass
        assert all(w.poll() is None for w in workers)
        time.sleep(0.05)
    for worker in workers:
        worker.kill()
        worker.communicate()
    logs = finish(start_workers(out))
    assert all("resuming the running run" in log for log in logs)
    whole, resumed = history(whole_run), history(out)
    assert len(resumed["loss"]) == 3  # every epoch once
    for key in whole:
        np.testing.assert_allclose(resumed[key], whole[key], rtol=1e-4, atol=1e-5, err_msg=key)
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "finished"
    assert config["best_epoch"] == json.loads((whole_run / "config.json").read_text())[
        "best_epoch"]


MIRRORED = """
import logging, sys, tensorflow as tf
logging.basicConfig(level=logging.INFO)
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from unet_tf import DataConfig, TrainConfig, model_preset, train
data = DataConfig(num_examples=32, image_size=(32, 32), batch_size=8)
run = train(model_preset("tiny"), data, TrainConfig(epochs=3, class_weights="balanced",
            learning_rate=0.01, strategy="mirrored", precision="float32", verbose=0),
            sys.argv[1])
"""


@pytest.mark.slow  # a training subprocess and a single-process run, ~20 s
def test_mirrored_strategy_trains_with_model_fit_on_two_logical_cpus(tmp_path):
    result = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path / "mirrored")],
                            capture_output=True, text=True, timeout=240,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MirroredStrategy: 2 replicas" in result.stderr
    mirrored, one = history(tmp_path / "mirrored"), history(single_process_run(tmp_path))
    assert mirrored["loss"][-1] < mirrored["loss"][0]
    # Keras splits each batch itself (and may draw the augmentations in another order):
    # close to the single-process run, not equal
    np.testing.assert_allclose(mirrored["loss"], one["loss"], rtol=0.05)


def test_multi_worker_needs_a_cluster(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        make_strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not the JSON"):
        make_strategy("auto")
    with pytest.raises(ValueError, match="must be one of"):
        make_strategy("parameter-server")
    with pytest.raises(ValueError, match="must be one of"):
        TrainConfig(strategy="tpu")


class Context:  # the two fields of tf.distribute.InputContext that worker_batches reads
    def __init__(self, pipeline: int, pipelines: int):
        self.input_pipeline_id, self.num_input_pipelines = pipeline, pipelines


def test_the_workers_slices_make_up_each_global_batch_once():
    images = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    masks = np.where(images > 4, 255, 1).astype(np.int32)
    batches = tf.data.Dataset.from_tensor_slices((images, masks)).batch(4)  # 4, 4, 2
    seen = []
    for pipeline in range(2):  # two workers, one replica each
        for x, _, size, labelled in worker_batches(batches, Context(pipeline, 2), 2):
            seen.append((int(size), float(labelled), x.numpy().ravel().tolist()))
    assert sorted(v for _, _, xs in seen for v in xs) == list(range(10))
    assert seen[0] == (4, 4.0, [0.0, 2.0]) and seen[4] == (4, 1.0, [5.0, 7.0])
    assert seen[2] == (2, 1.0, [8.0])  # the last global batch of 2 still feeds both replicas


@pytest.mark.parametrize("case", ["random", "absent class", "all ignored"])
def test_loop_metrics_are_the_ones_keras_computes(case):
    """The multi-worker loop's IoU is model.fit's: ignored pixels skipped, a class absent from
    labels and predictions 0 and out of the mean, no labelled pixel 0."""
    rng = np.random.default_rng(0)
    names = ("background", "disc", "square")
    labels = rng.integers(0, 3, (2, 8, 8, 1)).astype(np.int32)
    labels[0, :2] = 255  # ignored pixels
    logits = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    if case == "absent class":  # "square" neither in the labels nor predicted
        labels[labels == 2] = 1
        logits[..., 2] = -10.0
    elif case == "all ignored":
        labels[:] = 255
    expected = {}
    for metric in segmentation_metrics(names):
        metric.update_state(labels, logits)
        expected[metric.name] = float(metric.result())
    totals = EpochTotals(names)  # two batches summed, as over replicas and steps
    for i in range(2):
        totals.add(0.0, confusion_counts(labels[i:i + 1], logits[i:i + 1], 3), 1)
    logs = totals.logs("val_")
    assert {k[4:]: v for k, v in logs.items() if k != "val_loss"} == pytest.approx(
        expected, abs=1e-6)
    if case == "absent class":
        assert logs["val_iou_square"] == expected["iou_square"] == 0.0


# --- TF_CONFIG checks and the bounded wait for the cluster (no training, no TensorFlow server)


def tf_config(monkeypatch, workers: list[str], index: int, task: str = "worker") -> None:
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": task, "index": index}}))


def test_a_task_outside_the_cluster_is_refused(monkeypatch):
    tf_config(monkeypatch, ["127.0.0.1:2222"], 5)
    with pytest.raises(ValueError, match=r"TF_CONFIG task index 5 is out of range: its cluster "
                       r"lists 1 worker task, so the index is 0\.\.0"):
        make_strategy("auto")
    tf_config(monkeypatch, ["127.0.0.1:2222", "127.0.0.1:2223"], 0, task="chief")
    with pytest.raises(ValueError, match="TF_CONFIG names this task 'chief'"):
        make_strategy("multi-worker")


def test_an_unanswering_worker_fails_the_wait_in_time_naming_it(monkeypatch, caplog):
    mine, missing = free_ports(2)
    tf_config(monkeypatch, [f"127.0.0.1:{mine}", f"127.0.0.1:{missing}"], 0)
    monkeypatch.setattr(cluster, "PROGRESS_INTERVAL", 0.5)
    caplog.set_level(logging.INFO, logger="unet_tf")
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=rf"worker 0: worker 1 at 127\.0\.0\.1:{missing} did "
                       r"not answer within 1\.5 s \(TrainConfig\.cluster_timeout, "
                       "--cluster-timeout\\)"):
        make_strategy("multi-worker", cluster_timeout=1.5)
    assert time.monotonic() - start < 3
    assert f"waiting for worker 1 at 127.0.0.1:{missing} (" in caplog.text
    with socket.socket() as again:  # the task's own port is free again for TensorFlow
        again.bind(("127.0.0.1", mine))


def test_the_cli_names_the_worker_that_did_not_answer(monkeypatch, tmp_path, capsys):
    mine, missing = free_ports(2)
    tf_config(monkeypatch, [f"127.0.0.1:{mine}", f"127.0.0.1:{missing}"], 0)
    code = main(["-q", "train", "--strategy", "multi-worker", "--cluster-timeout", "1",
                 "--precision", "float32", "--jit-compile", "off", "--out",
                 str(tmp_path / "run")])
    assert code == 2
    assert f"worker 1 at 127.0.0.1:{missing} did not answer within 1 s" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_sigterm_stops_the_wait_at_once(monkeypatch):
    mine, missing = free_ports(2)
    tf_config(monkeypatch, [f"127.0.0.1:{mine}", f"127.0.0.1:{missing}"], 0)
    before = signal.getsignal(signal.SIGTERM)
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt, match="stopped by SIGTERM while waiting for the "
                       "cluster's workers"):
        wait_for_workers(60)
    assert time.monotonic() - start < 2
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_wait_ends_when_the_others_answer_and_answers_them_meanwhile(monkeypatch):
    mine, other = free_ports(2)
    tf_config(monkeypatch, [f"127.0.0.1:{mine}", f"127.0.0.1:{other}"], 0)
    errors = []

    def wait():
        try:
            wait_for_workers(10)
        except BaseException as exc:  # noqa: BLE001 (reported by the test)
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    deadline = time.monotonic() + 5
    while not answers("127.0.0.1", mine, 0.5):  # worker 1, waiting in turn, sees worker 0
        assert time.monotonic() < deadline, "the waiting task's own port never answered"
        time.sleep(0.05)
    with socket.socket() as worker_1:
        worker_1.bind(("127.0.0.1", other))
        worker_1.listen()
        waiter.join(5)
    assert not waiter.is_alive() and errors == []
