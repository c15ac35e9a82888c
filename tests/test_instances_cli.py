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


def test_tune_stores_thresholds_that_instances_and_evaluate_then_use(nuclei_run, tmp_path,
                                                                     capsys):
    import shutil

    from unet_tf.instances import label
    from unet_tf.predictors import Predictor

    root, trained = nuclei_run
    run = tmp_path / "run"
    shutil.copytree(trained, run)  # the module's run stays untuned for the other tests
    assert main(["-q", "tune", str(run), "--data", f"instances:{root}", "--subset", "training",
                 "--images", "4"]) == 0
    assert "AP@[.5:.95]" in capsys.readouterr().out
    stored = json.loads((run / "config.json").read_text())["postprocess"]
    assert stored["tuned_on"]["images"] == 4 and stored["tuned_on"]["subset"] == "training"
    assert stored["tta"] is False
    params = {k: stored[k] for k in ("interior_threshold", "foreground_threshold", "min_size")}
    image = root / "images" / "n1.png"
    assert main(["-q", "instances", "--model", str(run), str(image), "--out",
                 str(tmp_path / "out")]) == 0
    written = np.asarray(Image.open(tmp_path / "out" / "n1_instances.png"))
    _, probabilities = Predictor.from_path(run).predict(np.asarray(Image.open(image).convert(
        "RGB")), return_probabilities=True)
    np.testing.assert_array_equal(written, label(probabilities, **params))
    # evaluate scores the stored settings: the same AP as the tuning's own on those images
    assert main(["-q", "evaluate", "--model", str(run), "--data", f"instances:{root}",
                 "--subset", "training", "--out", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    if report["examples"] == 4:
        assert abs(report["ap_50_95"] - stored["tuned_on"]["ap_50_95"]) < 1e-3


def test_train_init_freezes_the_encoder_then_trains_all_of_it(nuclei_run, tmp_path):
    import keras

    root, run = nuclei_run
    start = keras.saving.load_model(run / "model.keras", compile=False)

    def fine_tune(epochs, out):
        assert main(["-q", "train", "--init", str(run), "--data",
                     f"instances-foreground:{root}", "--resolution", "native", "--image-size",
                     "32", "--epochs", str(epochs), "--freeze-encoder-epochs", "1",
                     "--batch-size", "4", "--precision", "float32", "--jit-compile", "off",
                     "--checkpoint", "last", "--no-evaluate", "--out", str(out)]) == 0
        return keras.saving.load_model(out / "model.keras", compile=False)

    def same(a, b, name):
        return all(np.array_equal(x, y) for x, y in zip(
            a.get_layer(name).get_weights(), b.get_layer(name).get_weights(), strict=True))

    frozen = fine_tune(1, tmp_path / "frozen")
    assert frozen.output_shape[-1] == 2  # background / foreground: a new head
    tuned, first = (json.loads((d / "config.json").read_text())["model"]
                    for d in (tmp_path / "frozen", run))
    assert {**tuned, "num_classes": 3} == first  # the init model's architecture
    assert same(frozen, start, "enc1_conv1") and same(frozen, start, "enc1_bn1")
    assert not same(frozen, start, "dec1_up")  # the decoder trained meanwhile
    thawed = fine_tune(2, tmp_path / "thawed")
    assert not same(thawed, start, "enc1_conv1")  # epoch 2 trains the encoder too
