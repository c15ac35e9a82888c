"""A training job killed (SIGKILL), stopped (Ctrl-C) or diverging (NaN) leaves a run directory
that tells the truth, and the same command resumes it to the files of an uninterrupted run.

The interrupted runs are real ``unet-tf train`` processes: a tiny model, 3 epochs of 16
synthetic scenes at 32 px (a few seconds each on 2 cores).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from unet_tf.cli import main

EPOCHS = 3
SCRIPT = "import sys; from unet_tf.cli import main; sys.exit(main(sys.argv[1:]))"


def train_args(out: Path, *extra: str) -> list[str]:
    return ["-q", "train", "--preset", "tiny", "--epochs", str(EPOCHS), "--num-examples", "16",
            "--image-size", "32", "--batch-size", "8", "--no-evaluate", "--out", str(out),
            *extra]


def start(out: Path) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "-c", SCRIPT, *train_args(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_epochs(out: Path, process: subprocess.Popen, epochs: int, timeout=120.0) -> None:
    """Poll history.json until it records ``epochs`` epochs (training goes on meanwhile)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if len(json.loads((out / "history.json").read_text())["loss"]) >= epochs:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no {epochs} epochs in {out} after {timeout} s")


def history(run: Path) -> dict:
    return json.loads((run / "history.json").read_text())


def config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The same command run without interruption, in this process."""
    run = tmp_path_factory.mktemp("reference") / "run"
    assert main(train_args(run)) == 0
    return run


def assert_same_run(run: Path, reference: Path) -> None:
    got, want = history(run), history(reference)
    assert set(got) == set(want)
    for key in want:
        assert len(got[key]) == EPOCHS, key  # every epoch once: no gap, no duplicate
    # same seeds and batches, epoch for epoch; TF on CPU is not bit-exact across threads
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=2e-3)
    np.testing.assert_allclose(got["val_mean_iou"], want["val_mean_iou"], atol=0.02)
    rows = (run / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == [str(i) for i in range(EPOCHS)]
    saved = config(run)
    assert saved["status"] == "finished" and saved["epochs_done"] == EPOCHS
    best = int(np.argmax(got["val_mean_iou"]))
    assert saved["best_epoch"] == saved["saved_epoch"] == best + 1
    assert saved["best_metrics"]["val_mean_iou"] == pytest.approx(got["val_mean_iou"][best])
    names = {"config.json", "curves.png", "history.csv", "history.json", "logs", "model.keras"}
    assert {p.name for p in run.iterdir()} == names  # the backup and temporary files are gone


@pytest.mark.slow  # real training subprocesses, ~25 s each
def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path, reference):
    run = tmp_path / "run"
    process = start(run)
    wait_for_epochs(run, process, 1)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert config(run)["status"] == "running"  # a kill cannot say more: the record is kept

    assert main(train_args(run)) == 0  # the same command resumes
    assert_same_run(run, reference)

    assert main(train_args(run)) == 2  # a finished run is not silently replaced


@pytest.mark.slow  # real training subprocesses, ~25 s each
def test_ctrl_c_saves_a_resumable_run_and_exits_130(tmp_path, reference, capsys):
    run = tmp_path / "run"
    process = start(run)
    wait_for_epochs(run, process, 1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    message = err.strip().splitlines()[-1]
    assert "Ctrl-C" in message and "run the same command again to resume" in message
    saved = config(run)
    assert saved["status"] == "interrupted" and saved["epochs_done"] >= 1
    assert len(history(run)["loss"]) == saved["epochs_done"]
    assert main(["-q", "evaluate", "--model", str(run), "--num-examples", "4"]) == 0

    assert main(train_args(run, "--epochs", "4")) == 2  # other settings: refused, named
    assert "train.epochs: 3 -> 4" in capsys.readouterr().err
    assert main(train_args(run)) == 0
    assert_same_run(run, reference)


@pytest.mark.slow  # a training run, ~10 s
def test_a_diverging_run_stops_keeps_the_last_good_model_and_exits_2(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(run, "--learning-rate", "1e6")) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "training diverged" in message and "epoch" in message and "step" in message
    assert "lower the learning rate" in message
    saved = config(run)
    assert saved["status"] == "diverged"
    assert len(history(run).get("loss", [])) == saved["epochs_done"]
    for value in history(run).get("loss", []):
        assert np.isfinite(value)
    if (run / "model.keras").exists():  # only a model of a finished, finite epoch
        import keras

        model = keras.saving.load_model(run / "model.keras", compile=False)
        assert all(np.isfinite(w).all() for w in model.get_weights())
    else:
        assert saved["epochs_done"] == 0 and "holds no model.keras" in message


def test_early_stopping_continues_the_count_of_a_resumed_run():
    import keras

    from unet_tf.callbacks import ResumedEarlyStopping

    stop = ResumedEarlyStopping({"val_mean_iou": [0.1, 0.3, 0.2, float("nan")]},
                                monitor="val_mean_iou", patience=3)
    stop.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    stop.model.stop_training = False
    stop.on_train_begin()
    assert (stop.best, stop.best_epoch, stop.wait) == (0.3, 1, 2)
    stop.on_epoch_end(4, {"val_mean_iou": 0.25})  # a third epoch without a gain: stop,
    assert stop.model.stop_training  # as an uninterrupted run would have


def test_a_run_missing_a_setting_is_not_resumed_with_it(tmp_path):
    from unet_tf import DataConfig, TrainConfig, model_preset
    from unet_tf.checkpoint import check_run_dir
    from unet_tf.training import resume_settings

    settings = resume_settings(model_preset("tiny"), DataConfig(), None,
                               TrainConfig(epochs=3, precision="float32"))
    saved = json.loads(json.dumps(settings))
    (tmp_path / "config.json").write_text(json.dumps({"status": "running", "settings": saved}))
    assert check_run_dir(tmp_path, settings) == "running"
    del saved["train"]["precision"]  # a config.json edited by hand, or from another version
    (tmp_path / "config.json").write_text(json.dumps({"status": "running", "settings": saved}))
    with pytest.raises(ValueError, match="train.precision: None -> 'float32'"):
        check_run_dir(tmp_path, settings)
