"""`unet-tf train --resolution native` on instance data, then `unet-tf instances` and
`unet-tf evaluate` with object scores, end to end on a tiny model."""

import json

import numpy as np
import pytest
from PIL import Image

from unet_tf.cli import main

pytestmark = pytest.mark.slow  # a CLI training run and the shared trained model


def nuclei_folder(root, count=8, size=64):
    """Bright discs (some touching) on a dark noisy background, with their 16-bit ids."""
    rng = np.random.default_rng(1)
    for name in ("images", "instances"):
        (root / name).mkdir(parents=True)
    y, x = np.mgrid[:size, :size]
    for i in range(count):
        ids = np.zeros((size, size), np.uint16)
        for k in range(1, 6):
            cy, cx = rng.integers(8, size - 8, 2)
            ids[(y - cy) ** 2 + (x - cx) ** 2 < rng.integers(16, 50)] = k
        image = rng.normal(30, 10, (size, size))
        image[ids > 0] = 200
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
            root / "images" / f"n{i}.png")
        Image.fromarray(ids).save(root / "instances" / f"n{i}.png")
    return root


@pytest.fixture(scope="module")
def nuclei_run(tmp_path_factory):
    root = nuclei_folder(tmp_path_factory.mktemp("nuclei"))
    run = tmp_path_factory.mktemp("runs") / "nuclei"
    code = main(["-q", "train", "--data", f"instances:{root}", "--resolution", "native",
                 "--image-size", "32", "--preset", "tiny", "--epochs", "2", "--batch-size",
                 "4", "--boundary-width", "1", "--no-evaluate", "--out", str(run)])
    assert code == 0
    return root, run


def test_instances_command_writes_labels_overlays_and_tables(nuclei_run, tmp_path, capsys):
    root, run = nuclei_run
    config = json.loads((run / "config.json").read_text())
    assert config["class_names"] == ["background", "interior", "boundary"]
    assert config["preprocessing"]["resolution"] == "native"
    assert config["data"]["boundary_width"] == 1  # --boundary-width reaches the run's targets
    image = root / "images" / "n0.png"
    code = main(["-q", "instances", "--model", str(run), str(image), "--out", str(tmp_path),
                 "--tile", "32", "--overlap", "8"])
    assert code == 0
    assert "objects ->" in capsys.readouterr().out
    labels = Image.open(tmp_path / "n0_instances.png")
    assert labels.size == (64, 64) and labels.mode.startswith("I")
    assert Image.open(tmp_path / "n0_overlay.png").size == (64, 64)
    header = (tmp_path / "n0_objects.csv").read_text().splitlines()[0]
    for column in ("area", "centroid_y", "centroid_x", "mean_probability"):
        assert column in header


def test_evaluate_reports_object_scores_on_instance_data(nuclei_run, tmp_path, capsys):
    root, run = nuclei_run
    code = main(["-q", "evaluate", "--model", str(run), "--data", f"instances:{root}",
                 "--out", str(tmp_path)])
    assert code == 0
    assert "AP@[.5:.95]" in capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    # the objects counted are those of the label images scored, counted here from the files
    scored = report["examples"] if "examples" in report else 8
    files = sorted((root / "instances").glob("*.png"))[:scored]
    true_objects = sum(len(np.setdiff1d(np.unique(np.asarray(Image.open(f))), [0]))
                       for f in files)
    assert report["instance_scores"]["true_objects"] == true_objects
    for key in ("ap_50_95", "ap_50", "ap_75", "aji"):
        assert 0.0 <= report[key] <= 1.0, key
    # AP over IoU thresholds .5:.95 cannot exceed AP at .5, nor AP at .75 exceed AP at .5
    assert report["ap_50"] >= report["ap_50_95"] and report["ap_50"] >= report["ap_75"]
    assert (tmp_path / "instances.png").stat().st_size > 0


def test_instances_refuses_a_model_of_other_classes(tmp_path_factory, tmp_path, capsys):
    from _models import scene_files, trained_export

    run, _, _ = trained_export(tmp_path_factory)
    [image] = scene_files(tmp_path, 1)
    assert main(["instances", "--model", str(run), str(image), "--out", str(tmp_path)]) == 2
    assert "separating objects needs a model" in capsys.readouterr().err
