"""``unet-tf models``: a short table within the terminal's width, one model in full by name.
Only config.json files are read: no TensorFlow, no model file."""

import json

import pytest

from unet_tf.cli import main
from unet_tf.models import shipped_models
from unet_tf.models.listing import model_details, models_table, short_licence, short_task

LONG_LICENCE = ("research use: the challenge data carries no open licence; cite the authors, "
                "and do not use the weights commercially without the data owners' consent")


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    cards = {
        "membranes": ({"task": "semantic segmentation of cell membranes in serial-section "
                       "electron microscopy (membrane / interior), the U-Net paper's task",
                       "licence": LONG_LICENCE, "spdx": "LicenseRef-research-use",
                       "score": "mean IoU 0.794 (dev)"}, ["membrane", "interior"], "resize"),
        "nuclei": ({"task": "instance segmentation of nuclei (background / interior / "
                    "boundary + seeded watershed)", "licence": "CC0 (the data's licence)",
                    "score": "AP@[.5:.95] 0.523 (dev)"},
                   ["background", "interior", "boundary"], "native"),
    }
    for name, (card, classes, resolution) in cards.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({
            "class_names": classes, "input_size": [512, 512], "num_parameters": 1945250,
            "preprocessing": {"resolution": resolution}, "shipped": card}))
    monkeypatch.setenv("UNET_TF_MODELS", str(tmp_path))
    return tmp_path


def test_short_task_and_licence():
    assert short_task({"task": "semantic segmentation of pet photos (pet / border); more"}) == (
        "pet photos")
    assert short_task({"task": "instance segmentation of nuclei (a / b)"}) == "instances: nuclei"
    assert short_task({"task": "long words", "short": "given"}) == "given"
    assert short_licence({"spdx": "CC-BY-4.0", "licence": "CC BY 4.0 (terms)"}) == "CC-BY-4.0"
    assert short_licence({"spdx": "LicenseRef-research-use"}) == "research-use"
    assert short_licence({"licence": "CC0 (the data's licence)"}) == "CC0"


@pytest.mark.parametrize("width", [80, 120])
def test_the_table_is_short_and_fits_the_terminal(shipped, width):
    table = models_table(shipped_models(), width)
    lines = table.splitlines()
    assert lines[0].split() == ["name", "task", "classes", "input", "dev", "score", "licence",
                                "params"]
    assert max(map(len, lines)) <= width
    assert "research-use" in table and "CC0" in table and "1.9 M" in table
    assert "consent" not in table and "watershed" not in table  # the sentences stay out
    assert "native" in table and "512x512" in table


def test_models_prints_the_table_and_one_model_in_full(shipped, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 80
    assert "membranes" in out and "nuclei" in out and "unet-tf models NAME" in " ".join(out.split())

    assert main(["models", "membranes"]) == 0
    out = capsys.readouterr().out
    assert " ".join(out.split()).count(LONG_LICENCE) == 1 and "nuclei" not in out
    assert "membrane, interior" in out and str(shipped / "membranes") in out
    assert max(len(line) for line in out.splitlines() if str(shipped) not in line) <= 80

    assert main(["models", "--long"]) == 0
    out = capsys.readouterr().out
    assert "watershed" in out and "native pixel size" in out and "consent" in out


def test_an_unknown_name_lists_the_shipped_ones(shipped, capsys):
    assert main(["models", "membrane"]) == 2
    err = capsys.readouterr().err
    assert "membrane is not a shipped model; shipped models: membranes, nuclei" in err


def test_details_wrap_to_the_width(shipped):
    [membranes, _] = shipped_models()
    text = model_details(membranes, 60)
    assert max(len(line) for line in text.splitlines() if str(shipped) not in line) <= 60
    assert text.startswith("name:     membranes\ntask:     semantic segmentation")
