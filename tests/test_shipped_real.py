"""The models committed in saved_models/: complete, small, and usable by name in seconds.

They are the repository's own files (not data), so nothing here skips: a clone that lacks
one of them is broken. The checks that load TensorFlow are marked slow (CI runs them).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from unet_tf.cli import main
from unet_tf.models.registry import shipped_models

ROOT = Path(__file__).resolve().parents[1] / "saved_models"
NAMES = ("membranes", "nuclei", "pets", "street")  # issue 26: what a clone comes with
FILES = ("README.md", "config.json", "history.json", "model.keras", "model_int8.tflite")
BUDGET_MB = 40  # saved_models/ in all (issue 26)
# (command, expected output shape relation): instance models go through `instances`
INSTANCE = {"nuclei"}


def test_the_four_shipped_models_are_complete_and_within_budget(monkeypatch):
    monkeypatch.delenv("UNET_TF_MODELS", raising=False)
    models = {m.name: m for m in shipped_models(ROOT)}
    assert tuple(sorted(models)) == NAMES
    total = 0
    for name, model in models.items():
        for file in FILES:
            assert (model.path / file).is_file(), f"{name}/{file} missing"
        total += sum(p.stat().st_size for p in model.path.iterdir())
        card = model.card
        for key in ("task", "licence", "score"):
            assert card.get(key), f"{name}: config.json shipped.{key} is empty"
        readme = (model.path / "README.md").read_text()
        # every card names the recipe that trained it and the command that scores it
        assert "benchmarks" in readme and f"unet-tf evaluate --model {name}" in readme
        assert "(dev)" in card["score"] and card["score"].split()[-2] in readme
    assert total / 1e6 <= BUDGET_MB, f"saved_models/ shipped files: {total / 1e6:.1f} MB"


def test_instance_models_store_their_postprocessing():
    config = json.loads((ROOT / "nuclei" / "config.json").read_text())
    assert {"interior_threshold", "foreground_threshold", "min_size"} <= set(
        config["postprocess"])


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_each_shipped_model_runs_by_name_in_seconds(name, tmp_path, monkeypatch):
    """The issue's commands (`predict --model membranes SLICE`, `instances --model nuclei
    IMG`, ...) on an image of an odd size, and the model's int8 .tflite in LiteRT."""
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image

    monkeypatch.delenv("UNET_TF_MODELS", raising=False)
    image = np.random.default_rng(0).integers(0, 255, (150, 206, 3), np.uint8)
    path = tmp_path / "image.png"
    Image.fromarray(image).save(path)
    command = "instances" if name in INSTANCE else "predict"
    start = time.time()
    assert main(["-q", command, "--model", name, str(path), "--out", str(tmp_path / "out")]) \
        == 0
    seconds = time.time() - start
    masks = [p for p in (tmp_path / "out").rglob("*.png") if "overlay" not in p.name]
    assert masks and all(Image.open(p).size == (206, 150) for p in masks), masks
    assert seconds < 90, f"{command} --model {name} took {seconds:.0f} s"  # idle: ~5-20 s

    interpreter = Interpreter(model_path=str(ROOT / name / "model_int8.tflite"))
    interpreter.allocate_tensors()
    (entry,) = interpreter.get_input_details()
    assert entry["dtype"] == np.uint8
    pixels = np.resize(image, tuple(entry["shape"][1:]))[None]  # membranes: 1 channel
    interpreter.set_tensor(entry["index"], pixels.astype(np.uint8))
    interpreter.invoke()
    outputs = [interpreter.get_tensor(o["index"]) for o in interpreter.get_output_details()]
    assert any(o.shape[1:3] == tuple(entry["shape"][1:3]) for o in outputs)
