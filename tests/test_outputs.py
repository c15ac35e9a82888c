"""Where predict, blur and instances write: only inside --out, never over earlier outputs
unless --overwrite, and nothing at all when an input is missing or unreadable."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from unet_tf.outputs import (
    MAX_STEM_BYTES,
    OUTPUT_SUFFIXES,
    output_file,
    output_stems,
    plan_outputs,
)

CLASSES = ("background", "foreground")


def image_file(path: Path, size: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    Image.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)).save(path)
    return path


def files_under(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_plain(stem: str) -> None:
    assert stem and "/" not in stem and "\\" not in stem and not stem.startswith("."), stem
    assert Path(stem).name == stem and len(stem.encode()) <= MAX_STEM_BYTES, stem


# --- output_stems: pure, no files ----------------------------------------------------------
def test_absolute_inputs_with_one_name_stay_inside_out():
    stems = output_stems(["/x/00.png", "/y/x/00.png"])  # the reported bug: "/_x_00"
    assert stems == ["x_00", "y_x_00"]
    assert output_stems(["/00.png", "/x/00.png"]) == ["00", "x_00"]


def test_relative_and_dotdot_inputs_get_their_folder_names(tmp_path, monkeypatch):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert output_stems(["../00.png", "00.png", "./c/../01.png"]) == ["a_00", "b_00", "01"]
    assert output_stems(["../../00.png", "../00.png"]) == [
        f"{tmp_path.name}_00", "a_00"]


def test_odd_names_become_plain_file_names():
    stems = output_stems(["/", "..", "x/..", "a b/c?*.png", ".hidden.png", "x\\y.png",
                          "/tmp/../etc/passwd"])
    for stem in stems:
        assert_plain(stem)
        assert ".." not in stem.split("_")
    assert stems[3] == "c_" and stems[4] == "hidden" and stems[6] == "passwd"


def test_names_that_differ_only_in_case_or_repeat_get_distinct_stems():
    stems = output_stems(["A/00.png", "a/00.png"])  # one file on macOS and Windows
    assert len({s.casefold() for s in stems}) == 2
    assert output_stems(["00.png", "00.png", "./00.png"]) == ["00", "00_1", "00_2"]


def test_long_folder_names_are_cut_to_a_legal_file_name():
    deep = "/".join(["f" * 200] * 3)
    stems = output_stems([f"/{deep}/x/00.png", f"/{deep}/y/00.png"])
    assert len(set(stems)) == 2
    for stem in stems:
        assert_plain(stem)
        assert stem.endswith("00")


PATH_TEXT = st.text(alphabet="ab/. \\-_?", min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.lists(PATH_TEXT, min_size=1, max_size=6))
def test_every_stem_is_a_distinct_plain_name_inside_out(paths):
    stems = output_stems(paths)
    assert len(stems) == len(paths)
    assert len({s.casefold() for s in stems}) == len(stems)
    out = Path("/nonexistent_out")
    for stem in stems:
        assert_plain(stem)
        for suffix in OUTPUT_SUFFIXES["predict"]:
            assert output_file(out, stem + suffix).parent == out


# --- the checks before anything is written --------------------------------------------------
def test_output_file_refuses_names_and_links_that_lead_out(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("../x.png", "a/b.png", "..", "/etc/x.png"):
        with pytest.raises(ValueError, match="not a plain file name"):
            output_file(out, name)
    (out / "link_mask.png").symlink_to(tmp_path / "elsewhere.png")
    with pytest.raises(ValueError, match="outside --out"):
        output_file(out, "link_mask.png")


def test_plan_checks_inputs_and_existing_outputs_without_writing(tmp_path):
    good = image_file(tmp_path / "in" / "good.png")
    text = tmp_path / "in" / "notes.png"
    text.write_text("not an image")
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="missing.png does not exist"):
        plan_outputs("predict", [good, tmp_path / "missing.png"], out)
    with pytest.raises(ValueError, match="is a folder"):
        plan_outputs("predict", [good, tmp_path / "in"], out)
    with pytest.raises(ValueError, match="notes.png: not a readable image"):
        plan_outputs("predict", [good, text], out)
    assert not out.exists()  # nothing written, not even the folder

    [plan] = plan_outputs("blur", [good], out)
    assert [p.name for p in plan.values()] == ["good_blur.png", "good_blur_figure.png"]
    out.mkdir()
    (out / "good_blur_figure.png").write_bytes(b"earlier")
    with pytest.raises(FileExistsError, match="good_blur_figure.png exists.*--overwrite"):
        plan_outputs("blur", [good], out)
    plan_outputs("blur", [good], out, overwrite=True)
    with pytest.raises(ValueError, match="is a file"):
        plan_outputs("predict", [good], good)
    # an output that would replace another input, even with overwrite
    inputs = [image_file(tmp_path / "x.png"), image_file(out / "x_mask.png")]
    with pytest.raises(ValueError, match="x_mask.png is also an input"):
        plan_outputs("predict", inputs, out, overwrite=True)


def test_instance_outputs_are_the_names_that_were_checked(tmp_path):
    from unet_tf.instances import write_outputs

    labels = np.zeros((8, 8), np.int32)
    labels[2:5, 2:5] = 1
    written = write_outputs(np.zeros((8, 8, 3), np.uint8), labels, None, tmp_path, "s")
    names = [written[key].name for key in ("instances", "overlay", "objects")]
    assert names == [f"s{suffix}" for suffix in OUTPUT_SUFFIXES["instances"]]


# --- the commands ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> SimpleNamespace:
    """An untrained tiny 2-class model saved as a run, and 32 px images of one name in
    different folders."""
    from unet_tf import RunInfo, build_unet, model_preset
    from unet_tf.data import PREPROCESSING

    base = tmp_path_factory.mktemp("outputs")
    run = base / "run"
    run.mkdir()
    config = model_preset("tiny", num_classes=2)
    build_unet(config).save(run / "model.keras")
    RunInfo(config, CLASSES, (32, 32), dict(PREPROCESSING)).save(run)
    images = [image_file(base / "x" / "00.png"), image_file(base / "y" / "x" / "00.png")]
    return SimpleNamespace(base=base, run=run, images=images)


def cli(capsys, command, ctx, images, out, *extra) -> tuple[int, str]:
    from unet_tf.cli import main

    keep = ["--keep", "foreground"] if command == "blur" else []
    code = main([command, "--model", str(ctx.run), *keep, *map(str, images), "--out", str(out),
                 *extra])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert code == 0 or len(errors) == 1, err
    return code, errors[0] if errors else ""


def test_predict_writes_only_under_out_and_never_over_earlier_outputs(
        ctx, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ctx.base / "y")
    out = tmp_path / "out"
    roots = {p.name for p in Path("/").iterdir()}
    before = files_under(ctx.base)
    # absolute, relative and `..` paths to files of one name
    images = [ctx.images[0], Path("x/00.png"), Path("../x/00.png")]
    code, error = cli(capsys, "predict", ctx, images, out)
    assert code == 0, error
    assert files_under(ctx.base) == before  # nothing beside the inputs
    assert {p.name for p in Path("/").iterdir()} == roots  # nothing at the root
    written = files_under(out)
    first = f"{ctx.base.name}_x_00"  # base/x/00.png and base/y/x/00.png
    assert sorted(p.name for p in written) == sorted(
        f"{stem}{suffix}" for stem in (first, "y_x_00", f"{first}_1")
        for suffix in OUTPUT_SUFFIXES["predict"])
    assert all(p.parent == out for p in written)

    code, error = cli(capsys, "predict", ctx, images, out)  # again: refused, nothing changed
    assert code == 2 and f"{out / first}_mask.png exists" in error, error
    assert "--overwrite" in error
    assert files_under(out) == written
    # --overwrite gets past the check (to the model, missing here: nothing is segmented)
    code, error = cli(capsys, "predict", ctx, images, out, "--overwrite", "--model", "gone")
    assert code == 2 and "gone does not exist" in error, error


class HalfPredictor:
    """Class 1 on the left half: what predict_files needs of a predictor, without a model."""

    class_names, num_classes = CLASSES, 2

    def predict(self, image, **options):
        mask = np.zeros(image.shape[:2], np.uint8)
        mask[:, : image.shape[1] // 2] = 1
        return mask


def test_predict_files_replaces_earlier_outputs_only_when_asked(tmp_path):
    from unet_tf.outputs import predict_files

    image = image_file(tmp_path / "in" / "a.png")
    [result] = predict_files(HalfPredictor(), [image], tmp_path / "out")
    assert result["mask"] == str(tmp_path / "out" / "a_mask.png")
    (tmp_path / "out" / "a_mask.png").write_bytes(b"edited by hand")
    with pytest.raises(FileExistsError, match="a_mask.png exists"):
        predict_files(HalfPredictor(), [image], tmp_path / "out")
    assert (tmp_path / "out" / "a_mask.png").read_bytes() == b"edited by hand"
    predict_files(HalfPredictor(), [image], tmp_path / "out", overwrite=True)
    assert np.asarray(Image.open(tmp_path / "out" / "a_mask.png"))[0, 0] == 1


def test_a_missing_input_stops_predict_before_it_writes_anything(ctx, tmp_path, capsys):
    out = tmp_path / "out"
    code, error = cli(capsys, "predict", ctx, [ctx.images[0], tmp_path / "gone.png"], out)
    assert code == 2 and "gone.png" in error and "does not exist" in error, error
    assert not out.exists()


@pytest.mark.parametrize("command", ["blur", "instances"])
def test_blur_and_instances_refuse_to_overwrite_too(ctx, tmp_path, capsys, command):
    out = tmp_path / "out"
    out.mkdir()
    stem = output_stems(ctx.images)[0]
    first = out / f"{stem}{OUTPUT_SUFFIXES[command][0].format(ext='.png')}"
    first.write_bytes(b"an earlier result")
    code, error = cli(capsys, command, ctx, ctx.images, out)
    assert code == 2 and str(first) in error and "--overwrite" in error, error
    assert [p.name for p in out.iterdir()] == [first.name]
    assert first.read_bytes() == b"an earlier result"


def test_overwrite_is_offered_by_every_command_that_writes_images():
    from unet_tf.cli import build_parser

    for command in OUTPUT_SUFFIXES:
        args = build_parser().parse_args(
            [command, "--model", "m", "a.png", "--out", "o", "--overwrite",
             *(["--keep", "x"] if command == "blur" else [])])
        assert args.overwrite is True
