"""Data and models of other classes: refused with one line, or matched by class name.

A model scored or exported on data of other classes used to print a warning and carry on,
comparing classes by index; ``unet-tf instances`` took a semantic model's classes for
background / interior / boundary; ``synthetic:foo`` ignored its ``:foo``. Every model here is
a tiny untrained one saved as a run, every dataset a few 32-pixel images in a temporary
folder: nothing is trained.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from unet_tf import DataConfig, RunInfo, build_unet, model_preset
from unet_tf.cli import main
from unet_tf.config import ExportConfig
from unet_tf.data import (
    PREPROCESSING,
    DataError,
    class_lookup,
    load_source,
    parse_spec,
    remap_labels,
)
from unet_tf.deploy import exporter
from unet_tf.evaluation import evaluate
from unet_tf.instances import (
    INSTANCE_CLASS_NAMES,
    is_instance_model,
    label,
    object_separator,
    semantic_label,
)

SIZE = 32
MEMBRANE = ("membrane", "interior")
PETS = ("pet", "background", "border")


def save(path: Path, array) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path)
    return path


def make_run(folder: Path, class_names, spec: str) -> Path:
    """An untrained tiny model of ``class_names``, saved as a run trained on ``spec``."""
    folder.mkdir(parents=True)
    config = model_preset("tiny", num_classes=len(class_names))
    build_unet(config).save(folder / "model.keras")
    data = DataConfig(spec=spec, image_size=(SIZE, SIZE), batch_size=2)
    RunInfo(config, tuple(class_names), (SIZE, SIZE), dict(PREPROCESSING),
            {"data": data.to_dict()}).save(folder)
    return folder


def folder_data(root: Path, classes: int, count: int = 3) -> Path:
    """root/images + root/masks: noise images, masks of values 0..classes-1 in stripes."""
    rng = np.random.default_rng(0)
    for i in range(count):
        save(root / "images" / f"{i}.png", rng.integers(0, 255, (SIZE, SIZE, 3), np.uint8))
        stripes = (np.arange(SIZE) // 4 + i) % classes
        save(root / "masks" / f"{i}.png", np.tile(stripes[:, None], (1, SIZE)).astype(np.uint8))
    return root


def pets_data(root: Path, count: int = 3) -> Path:
    """The Oxford-IIIT Pet layout: JPEGs, trimaps 1 pet / 2 background / 3 border, lists."""
    rng = np.random.default_rng(1)
    names = [f"cat_{i}" for i in range(count)]
    for i, name in enumerate(names):
        save(root / "images" / f"{name}.jpg", rng.integers(0, 255, (SIZE, SIZE, 3), np.uint8))
        trimap = 1 + (np.arange(SIZE) // 4 + i) % 3
        save(root / "annotations" / "trimaps" / f"{name}.png",
             np.tile(trimap[:, None], (1, SIZE)).astype(np.uint8))
    lines = "".join(f"{name} 1 1 1\n" for name in names)
    for split in ("trainval", "test"):
        (root / "annotations" / f"{split}.txt").write_text(lines)
    return root


def instance_data(root: Path, count: int = 2) -> Path:
    """root/images + root/instances: bright squares on noise, with their 16-bit ids."""
    rng = np.random.default_rng(2)
    for i in range(count):
        ids = np.zeros((SIZE, SIZE), np.uint16)
        ids[4:14, 4:14], ids[18:28, 16:28] = 1, 2
        image = rng.normal(40, 10, (SIZE, SIZE))
        image[ids > 0] = 200
        save(root / "images" / f"n{i}.png", np.clip(image, 0, 255).astype(np.uint8))
        save(root / "instances" / f"n{i}.png", ids)
    return root


@pytest.fixture(scope="module")
def c(tmp_path_factory) -> SimpleNamespace:
    base = tmp_path_factory.mktemp("class_checks")
    data = SimpleNamespace(two=folder_data(base / "two", 2), three=folder_data(base / "three", 3),
                           pets=pets_data(base / "pets"), nuclei=instance_data(base / "nuclei"))
    return SimpleNamespace(
        base=base, data=data,
        membrane=make_run(base / "membrane", MEMBRANE, f"folder:{data.two}"),
        pets=make_run(base / "pets_run", PETS, f"oxford-pets:{data.pets}"),
        nuclei=make_run(base / "nuclei_run", INSTANCE_CLASS_NAMES, f"instances:{data.nuclei}"),
        # a semantic model whose classes happen to carry the instance model's names
        lookalike=make_run(base / "lookalike", INSTANCE_CLASS_NAMES, f"folder:{data.three}"),
    )


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and ": error: " in lines[0] and "Traceback" not in err, err
    return lines[0]


# --- 1. evaluate ---------------------------------------------------------------------------


def test_evaluate_refuses_a_2_class_model_on_3_class_pets_data(c, capsys):
    code, err = run_cli(capsys, "evaluate", "--model", c.membrane, "--data",
                        f"oxford-pets:{c.data.pets}", "--split", "test")
    assert code == 2
    line = one_line_error(err)
    for words in ("['pet', 'background', 'border']", "['membrane', 'interior']",
                  str(c.membrane), "--classes membrane,interior"):
        assert words in line, line


def test_evaluate_refuses_three_class_names_for_a_2_class_model(c, capsys):
    code, err = run_cli(capsys, "evaluate", "--model", c.membrane, "--data",
                        f"folder:{c.data.two}", "--classes", "a,b,c")
    assert code == 2
    line = one_line_error(err)
    assert "['a', 'b', 'c']" in line and "['membrane', 'interior']" in line, line


@pytest.mark.slow  # two evaluations, ~3 s (test_export_parity_masks_... checks the remap fast)
def test_evaluate_matches_classes_of_another_order_by_name(c):
    def scores(names):
        return evaluate(c.membrane, DataConfig(spec=f"folder:{c.data.two}", class_names=names))

    swapped = scores(("interior", "membrane"))  # mask value 0 is interior, 1 membrane
    by_index = scores(MEMBRANE)  # what comparing by index scored the swapped names as
    assert swapped["class_names"] == list(MEMBRANE)
    assert swapped["confusion"] == by_index["confusion"][::-1]  # the true classes swapped


def test_evaluate_refuses_instance_data_for_a_semantic_model(c, capsys):
    code, err = run_cli(capsys, "evaluate", "--model", c.pets, "--data",
                        f"instances:{c.data.nuclei}")
    assert code == 2
    line = one_line_error(err)
    assert "is not an instance model" in line and "oxford-pets:" in line, line
    # the same class names are not enough: the model must have learnt them from instances
    with pytest.raises(ValueError, match=f"trained on folder:{c.data.three}"):
        evaluate(c.lookalike, DataConfig(spec=f"instances:{c.data.nuclei}"))


def test_evaluate_refuses_semantic_data_for_an_instance_model(c, capsys):
    code, err = run_cli(capsys, "evaluate", "--model", c.nuclei, "--data",
                        f"folder:{c.data.three}", "--classes", ",".join(INSTANCE_CLASS_NAMES))
    assert code == 2
    line = one_line_error(err)
    assert "is an instance model" in line and "instances:DIR" in line, line
    with pytest.raises(ValueError, match="is an instance model"):
        evaluate(c.nuclei, DataConfig(spec=f"instances-foreground:{c.data.nuclei}"))


def test_evaluate_scores_an_instance_model_on_instance_data(c):
    report = evaluate(c.nuclei, DataConfig(spec=f"instances:{c.data.nuclei}"))
    assert report["class_names"] == list(INSTANCE_CLASS_NAMES)
    assert "ap_50_95" in report and report["instance_scores"]["true_objects"] == 4


def test_class_lookup_maps_names_and_keeps_the_ignore_label():
    lookup = class_lookup(["c", "a", "b"], ["a", "b", "c"], "data", "model")
    assert remap_labels(np.array([[0, 1], [2, 255]]), lookup).tolist() == [[2, 0], [1, 255]]
    assert class_lookup(("a", "b"), ["a", "b"], "data", "model") is None
    for other in (["a", "b", "c"], ["a", "x"], ["a", "a"]):
        with pytest.raises(ValueError, match=r"give data of the model's classes"):
            class_lookup(other, ["a", "b"], "data", "model")


# --- 2. export -----------------------------------------------------------------------------


def test_export_refuses_data_of_other_classes_before_converting(c, tmp_path, monkeypatch):
    def converted(*args, **kwargs):
        raise AssertionError("converted a model for data of other classes")

    monkeypatch.setattr(exporter, "save_saved_model", converted)
    monkeypatch.setattr(exporter, "convert_tflite", converted)
    out = tmp_path / "export"
    with pytest.raises(ValueError, match=r"\['pet', 'background', 'border'\].*membrane"):
        exporter.export(c.membrane, out, ExportConfig(formats=("savedmodel", "tflite-int8")),
                        data=DataConfig(spec=f"oxford-pets:{c.data.pets}"))
    assert list(tmp_path.iterdir()) == []  # no export, no temporary folder


def test_export_cli_refuses_data_of_other_classes(c, tmp_path, capsys):
    code, err = run_cli(capsys, "export", "--model", c.pets, "--out", tmp_path / "export",
                        "--data", f"folder:{c.data.two}", "--classes", "background,pet",
                        "--formats", "savedmodel")
    assert code == 2
    line = one_line_error(err)
    assert "['background', 'pet']" in line and "--classes pet,background,border" in line
    assert not (tmp_path / "export").exists()


def test_export_parity_masks_are_matched_by_class_name(c):
    info = RunInfo.load(c.membrane)
    spec = f"folder:{c.data.two}"
    swapped, _ = exporter.raw_examples(DataConfig(spec=spec, class_names=("interior", "membrane")),
                                       None, 3, info, c.membrane)
    by_value, _ = exporter.raw_examples(DataConfig(spec=spec, class_names=MEMBRANE,
                                                   mask_values=(1, 0)), None, 3, info)
    for (_, a), (_, b) in zip(swapped, by_value, strict=True):
        np.testing.assert_array_equal(a, b)


# --- 3. instances --------------------------------------------------------------------------


def test_instances_refuses_a_3_class_semantic_model(c, tmp_path, capsys):
    image = c.data.pets / "images" / "cat_0.jpg"
    code, err = run_cli(capsys, "instances", "--model", c.pets, image, "--out", tmp_path)
    assert code == 2
    line = one_line_error(err)
    for words in ("is not an instance model", "['pet', 'background', 'border']",
                  "instances:DIR", "unet-tf predict"):
        assert words in line, line
    assert not any(tmp_path.iterdir())


def test_object_separator_follows_the_runs_config():
    def config(names, spec=None):
        return {"class_names": list(names), **({"data": {"spec": spec}} if spec else {})}

    assert object_separator(config(INSTANCE_CLASS_NAMES, "instances:d"), "run") is label
    assert object_separator(config(INSTANCE_CLASS_NAMES), "run") is label  # not recorded
    assert object_separator(config(("background", "foreground")), "run") is semantic_label
    assert not is_instance_model(config(INSTANCE_CLASS_NAMES, "folder:d"))
    for names, spec in ((PETS, "oxford-pets:d"), (INSTANCE_CLASS_NAMES, "folder:d"),
                        (("a", "b", "c", "d"), None)):
        with pytest.raises(ValueError, match="is not an instance model"):
            object_separator(config(names, spec), "run")


# --- 4. data specs -------------------------------------------------------------------------


def test_synthetic_takes_no_argument(c, capsys):
    for spec in ("synthetic:foo", "synthetic:"):
        with pytest.raises(DataError, match="synthetic takes no argument"):
            parse_spec(spec)
    assert parse_spec("synthetic") == ("synthetic", "")
    with pytest.raises(DataError, match="'synthetic:foo'"):
        load_source(DataConfig(spec="synthetic:foo", num_examples=2))
    code, err = run_cli(capsys, "evaluate", "--model", c.membrane, "--data", "synthetic:foo")
    assert code == 2 and "synthetic:foo" in one_line_error(err)
