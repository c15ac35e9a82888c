"""A quiet start: no TensorFlow C++ log line before unet_tf's own first line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from unet_tf.quiet import CPP_LOG_LINE, filter_log_lines

# What TensorFlow 2.21 printed before `unet-tf train`'s first line on a host without a GPU.
STARTUP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796293584.000518    3982 cudart_stub.cc:31] Could not find cuda drivers on your \
machine, GPU will not be used.
E0000 00:00:1796293588.547059    3982 cuda_platform.cc:52] failed call to cuInit: INTERNAL: \
CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
W0000 00:00:1796293588.547059    3982 gpu_device.cc:2342] Cannot dlopen some GPU libraries.
"""


def test_the_filter_drops_tensorflow_log_lines_and_keeps_everything_else():
    kept = "Traceback (most recent call last):\nImportError: no module named x\n"
    assert filter_log_lines(STARTUP + kept) == kept
    assert filter_log_lines("epoch 1: I0000 is not at the start\n") == (
        "epoch 1: I0000 is not at the start\n")


def startup_lines(argv: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env,
                          cwd=os.getcwd())
    return done.returncode, (done.stderr + done.stdout).splitlines()


@pytest.mark.slow  # two TensorFlow start-ups in subprocesses, ~20 s
def test_unet_tf_train_starts_without_tensorflow_log_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    cli = [sys.executable, "-m", "unet_tf", "train", "--preset", "tiny", "--epochs", "1",
           "--num-examples", "8", "--image-size", "32", "--batch-size", "8",
           "--precision", "float32", "--jit-compile", "off", "--no-evaluate",
           "--out", str(tmp_path / "run")]
    code, lines = startup_lines(cli, env)
    assert code == 0, lines[-20:]
    assert not [line for line in lines if CPP_LOG_LINE.match(line)], lines[:10]
    assert lines[0].startswith("train: synthetic"), lines[:5]
    # the library on its own, through the public API
    api = [sys.executable, "-c", "import unet_tf; print(unet_tf.build_unet("
           "unet_tf.model_preset('tiny')).name)"]
    code, lines = startup_lines(api, env)
    assert code == 0 and lines == ["unet"], lines
