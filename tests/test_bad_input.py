"""Bad input, tried systematically: each case is (what the user types, the exit code, words
the message must hold). A user's mistake gets one line naming the file or flag and what
would work, exit code 2, and never a traceback; odd but valid images are segmented (0).

Everything is made in a temporary folder: an untrained tiny model saved as a run, small
image folders, broken model files and a SavedModel whose graph writes a file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from unet_tf import DataConfig, RunInfo, build_unet, model_preset
from unet_tf.cli import main
from unet_tf.data import PREPROCESSING
from unet_tf.imageio import as_rgb, read_image

CLASSES = ("background", "disc", "square", "triangle")


def save(path: Path, array, mode=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array), mode).save(path)
    return path


def folder_dataset(root: Path, count=4, size=32, values=(0, 1), gray_first=False,
                   mask_dtype=np.uint8, image_suffix=".png") -> Path:
    """root/images + root/masks: noise images, masks of ``values`` in stripes."""
    rng = np.random.default_rng(0)
    for i in range(count):
        shape = (size, size) if gray_first and i == 0 else (size, size, 3)
        save(root / "images" / f"{i:02d}{image_suffix}", rng.integers(0, 255, shape, np.uint8))
        mask = np.array(values, mask_dtype)[np.arange(size) % len(values)]
        save(root / "masks" / f"{i:02d}.png", np.tile(mask[:, None], (1, size)))
    return root


def side_effect_saved_model(folder: Path, marker: Path) -> Path:
    """A SavedModel with unet_tf's signature whose graph also writes ``marker``."""

    class Serve(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8,
                                                    name="images")])
        def serve(self, images):
            tf.io.write_file(str(marker), "written by a model")
            ones = tf.zeros_like(tf.cast(images[..., :1], tf.float32))
            return {"mask": tf.zeros_like(images[..., 0]),
                    "probabilities": ones + tf.constant([0.25] * 4)}

    module = Serve()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> SimpleNamespace:
    base = tmp_path_factory.mktemp("bad_input")
    run = base / "run"
    run.mkdir()
    config = model_preset("tiny", num_classes=4)
    build_unet(config).save(run / "model.keras")
    info = RunInfo(config, CLASSES, (32, 32), dict(PREPROCESSING),
                   {"data": DataConfig(num_examples=6, batch_size=3,
                                       image_size=(32, 32)).to_dict()})
    info.save(run)
    images = base / "images"
    rng = np.random.default_rng(1)
    files = {
        "rgb": save(images / "rgb.png", rng.integers(0, 255, (40, 48, 3), np.uint8)),
        "one_pixel": save(images / "one_pixel.png", np.full((1, 1, 3), 200, np.uint8)),
        "rgba": save(images / "rgba.png", rng.integers(0, 255, (24, 24, 4), np.uint8)),
        "gray16": save(images / "gray16.png", rng.integers(0, 65535, (24, 24), np.uint16)),
        "palette": images / "palette.png",
        "huge": images / "huge.png",
        "text": images / "notes.png",
        "empty": images / "empty.jpg",
        "truncated": images / "truncated.png",
    }
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).convert("P").save(files["palette"])
    Image.new("L", (10_000, 10_000), 128).save(files["huge"])  # compresses to ~10 KB
    files["text"].write_text("not an image\n")
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(files["rgb"].read_bytes()[:60])
    models = base / "models"
    broken = {name: models / name for name in
              ("no_config", "corrupt_keras", "truncated_keras", "lambda", "corrupt_tflite",
               "empty_tflite", "corrupt_savedmodel", "evil", "truncated_savedmodel")}
    for folder in broken.values():
        folder.mkdir(parents=True)
        if folder.name != "no_config":
            shutil.copy(run / "config.json", folder / "config.json")
    shutil.copy(run / "model.keras", broken["no_config"] / "model.keras")
    (broken["corrupt_keras"] / "model.keras").write_bytes(b"PK\x03\x04 not a zip at all")
    data = (run / "model.keras").read_bytes()
    (broken["truncated_keras"] / "model.keras").write_bytes(data[: len(data) // 2])
    lam = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Lambda(lambda x: x * 1.0),
                            keras.layers.Conv2D(4, 1)])
    lam.save(broken["lambda"] / "model.keras")
    (broken["corrupt_tflite"] / "model.tflite").write_bytes(b"TFL3" + bytes(range(200)))
    (broken["empty_tflite"] / "model.tflite").write_bytes(b"")
    (broken["corrupt_savedmodel"] / "saved_model.pb").write_bytes(b"\x08\x01garbage" * 10)
    marker = base / "written_by_model.txt"
    side_effect_saved_model(broken["evil"], marker)
    pb = (broken["evil"] / "saved_model.pb").read_bytes()
    (broken["truncated_savedmodel"] / "saved_model.pb").write_bytes(pb[: len(pb) // 3])
    a_file = base / "a_file.txt"
    a_file.write_text("x")
    oxford = base / "oxford"
    save(oxford / "images" / "cat_1.jpg", np.zeros((8, 8, 3), np.uint8))
    save(oxford / "annotations" / "trimaps" / "cat_1.png", np.ones((8, 8), np.uint8))
    (oxford / "annotations" / "test.txt").write_text("cat_1 1 1 1\n")
    out = base / "outputs"
    return SimpleNamespace(base=base, run=run, out=out, files=files, models=broken,
                           marker=marker, a_file=a_file, oxford=oxford,
                           folder=folder_dataset(base / "folder"),
                           gray_first=folder_dataset(base / "gray_first", gray_first=True),
                           mask16=folder_dataset(base / "mask16", values=(0, 1000),
                                                 mask_dtype=np.uint16),
                           mask16_small=folder_dataset(base / "mask16s", values=(0, 1),
                                                       mask_dtype=np.uint16),
                           tiff=folder_dataset(base / "tiff", image_suffix=".tif"))


def train(c, *extra):
    return ["train", "--preset", "tiny", "--epochs", "1", "--image-size", "32",
            "--batch-size", "8", "--no-evaluate", "--out", str(c.base / "train_out"), *extra]


def folder(c, name, *extra):
    return train(c, "--data", f"folder:{getattr(c, name)}", *extra)


def predict(c, model, *images, out=None, extra=()):
    model = c.run if model == "run" else c.models[model] if model in c.models else model
    return ["predict", "--model", str(model), *[str(c.files.get(i, i)) for i in images],
            "--out", str(out or c.out), *extra]


CASES = [  # id, argv(ctx), exit code, words of the message
    # --- training flags: zero, negative, out of range, malformed
    ("batch-size-0", lambda c: train(c, "--batch-size", "0"), 2, ["--batch-size", "at least 1"]),
    ("batch-size-neg", lambda c: train(c, "--batch-size", "-4"), 2, ["--batch-size"]),
    ("epochs-0", lambda c: train(c, "--epochs", "0"), 2, ["--epochs", "at least 1"]),
    ("epochs-text", lambda c: train(c, "--epochs", "ten"), 2, ["--epochs", "whole number"]),
    ("image-size-0", lambda c: train(c, "--image-size", "0"), 2, ["--image-size", "positive"]),
    ("image-size-bad", lambda c: train(c, "--image-size", "32by32"), 2, ["--image-size"]),
    ("image-size-odd", lambda c: train(c, "--image-size", "30"), 2, ["pad or resize to 32x32"]),
    ("lr-0", lambda c: train(c, "--learning-rate", "0"), 2, ["--learning-rate", "greater"]),
    ("lr-nan", lambda c: train(c, "--learning-rate", "nan"), 2, ["--learning-rate", "finite"]),
    ("lr-inf", lambda c: train(c, "--learning-rate", "inf"), 2, ["--learning-rate"]),
    ("val-fraction-1.5", lambda c: train(c, "--validation-fraction", "1.5"), 2,
     ["--validation-fraction", "between 0 and 1"]),
    ("scale-reversed", lambda c: train(c, "--scale", "2,1"), 2, ["--scale", "LOW <= HIGH"]),
    ("crop-too-big", lambda c: train(c, "--crop", "64"), 2, ["--crop", "larger", "32x32"]),
    ("crop-odd", lambda c: train(c, "--crop", "30"), 2, ["30x30", "pad or resize"]),
    ("preset-unknown", lambda c: train(c, "--preset", "huge"), 2, ["--preset", "tiny"]),
    ("class-weights-neg", lambda c: train(c, "--class-weights", "1,-2"), 2,
     ["--class-weights", ">= 0"]),
    # --- where the run goes
    ("out-is-a-file", lambda c: [*train(c)[:-1], str(c.a_file)], 2, ["a_file.txt", "is a file"]),
    ("out-finished-run", lambda c: [*train(c)[:-1], str(c.run)], 2,
     ["finished run", "another output folder", "delete"]),
    # --- data
    ("data-spec-unknown", lambda c: train(c, "--data", "nope:x"), 2, ["nope:x", "folder:DIR"]),
    ("data-folder-missing", lambda c: train(c, "--data", f"folder:{c.base}/missing"), 2,
     ["missing", "does not exist"]),
    ("data-ignore-is-a-class", lambda c: folder(c, "folder", "--mask-values", "0,1",
                                                "--ignore-values", "1"), 2,
     ["[1]", "both a class", "--ignore-values"]),
    ("data-names-vs-values", lambda c: folder(c, "folder", "--classes", "a,b,c",
                                              "--mask-values", "0,1"), 2,
     ["3 class names", "2 mask values"]),
    ("data-value-not-in-mapping", lambda c: folder(c, "folder", "--mask-values", "0,2"), 2,
     ["masks", "[1]", "outside the mapping"]),
    ("data-16bit-mask-values", lambda c: folder(c, "mask16", "--mask-values", "0,1000"), 2,
     ["[1000]", "0..255"]),
    ("data-16bit-masks", lambda c: folder(c, "mask16_small", "--mask-values", "0,1"), 2,
     ["00.png", "'I;16'", "8-bit PNG"]),
    ("data-tiff-images", lambda c: folder(c, "tiff", "--mask-values", "0,1"), 2,
     ["00.tif", "TIFF", "convert"]),
    ("data-oxford-only-test", lambda c: train(c, "--data", f"oxford-pets:{c.oxford}"), 2,
     ["test.txt", "no trainval.txt", "--split test"]),
    # --- models that cannot be loaded, or should not be run
    ("model-missing", lambda c: predict(c, c.base / "nothing", "rgb"), 2, ["does not exist"]),
    ("model-folder-no-config", lambda c: predict(c, "no_config", "rgb"), 2,
     ["no_config", "no config.json", "config.json of its run"]),
    ("model-corrupt-keras", lambda c: predict(c, "corrupt_keras", "rgb"), 2,
     ["model.keras", "Keras cannot load"]),
    ("model-truncated-keras", lambda c: predict(c, "truncated_keras", "rgb"), 2,
     ["model.keras", "Keras cannot load"]),
    ("model-keras-lambda", lambda c: predict(c, "lambda", "rgb"), 2,
     ["model.keras", "Lambda", "safe_mode"]),
    ("model-corrupt-tflite", lambda c: predict(c, c.models["corrupt_tflite"] / "model.tflite",
                                               "rgb"), 2, ["model.tflite", "cannot load"]),
    ("model-empty-tflite", lambda c: predict(c, c.models["empty_tflite"] / "model.tflite",
                                             "rgb"), 2, ["model.tflite", "cannot load"]),
    ("model-corrupt-savedmodel", lambda c: predict(c, "corrupt_savedmodel", "rgb"), 2,
     ["saved_model.pb", "not a SavedModel"]),
    ("model-truncated-savedmodel", lambda c: predict(c, "truncated_savedmodel", "rgb"), 2,
     ["saved_model.pb", "not a SavedModel"]),
    ("model-savedmodel-writes-files", lambda c: predict(c, "evil", "rgb"), 2,
     ["WriteFile", "--trust-model"]),
    ("model-unknown-suffix", lambda c: predict(c, c.a_file, "rgb"), 2,
     ["a_file.txt", "unknown model format"]),
    # --- images to segment
    ("image-missing", lambda c: predict(c, "run", c.base / "nope.png"), 2,
     ["nope.png", "does not exist"]),
    ("image-text-file", lambda c: predict(c, "run", "text"), 2,
     ["notes.png", "not a readable image"]),
    ("image-empty-file", lambda c: predict(c, "run", "empty"), 2,
     ["empty.jpg", "not a readable image"]),
    ("image-truncated", lambda c: predict(c, "run", "truncated"), 2,
     ["truncated.png", "not a readable image"]),
    ("image-is-a-folder", lambda c: predict(c, "run", c.base / "images"), 2,
     ["images", "is a folder"]),
    ("image-10000px", lambda c: predict(c, "run", "huge"), 2, ["10000x10000", "--tile"]),
    ("image-1px", lambda c: predict(c, "run", "one_pixel"), 0, ["one_pixel_mask.png"]),
    ("image-rgba", lambda c: predict(c, "run", "rgba"), 0, ["rgba_mask.png"]),
    ("image-16bit", lambda c: predict(c, "run", "gray16"), 0, ["gray16_mask.png"]),
    ("image-palette", lambda c: predict(c, "run", "palette"), 0, ["palette_mask.png"]),
    # --- other flags of the predict-like commands
    ("predict-out-is-a-file", lambda c: predict(c, "run", "rgb", out=c.a_file), 2,
     ["a_file.txt", "is a file"]),
    ("predict-tile-0", lambda c: predict(c, "run", "rgb", extra=["--tile", "0"]), 2,
     ["--tile", "at least 1"]),
    ("predict-overlap-neg", lambda c: predict(c, "run", "rgb", extra=["--overlap", "-8"]), 2,
     ["--overlap", "at least 0"]),
    ("predict-threads-0", lambda c: predict(c, "run", "rgb", extra=["--threads", "0"]), 2,
     ["--threads"]),
    ("blur-unknown-class", lambda c: ["blur", "--model", str(c.run), "--keep", "cat",
                                      str(c.files["rgb"]), "--out", str(c.out)], 2,
     ["cat", "disc"]),
    ("blur-strength-neg", lambda c: ["blur", "--model", str(c.run), "--keep", "disc",
                                     "--strength", "-1", str(c.files["rgb"]), "--out",
                                     str(c.out)], 2, ["--strength", ">= 0"]),
    ("evaluate-missing-model", lambda c: ["evaluate", "--model", str(c.base / "nope")], 2,
     ["nope", "does not exist"]),
    ("export-unknown-format", lambda c: ["export", "--model", str(c.run), "--out",
                                         str(c.base / "export"), "--formats", "coreml"], 2,
     ["coreml", "formats"]),
]


def run_cli(argv, capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage line, one error line, exit 2
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("argv", "code", "words"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_bad_input_gets_a_clear_answer(ctx, capsys, argv, code, words):
    got, out, err = run_cli(argv(ctx), capsys)
    assert "Traceback" not in out + err
    assert got == code, err[-2000:]
    if code == 2:
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1, err  # one line says what is wrong
        message = errors[0]
    else:
        message = out
    for word in words:
        assert word in message, message


def test_enough_cases_are_tried():
    assert len(CASES) >= 40


def test_a_trusted_savedmodel_runs_and_its_side_effects_are_real(ctx, capsys):
    assert not ctx.marker.exists()  # refused before loading: nothing ran
    code, _, err = run_cli(predict(ctx, "evil", "rgb", out=ctx.base / "trusted",
                                   extra=["--trust-model"]), capsys)
    assert code == 0, err
    assert ctx.marker.read_text() == "written by a model"  # why it must be asked for


@pytest.mark.slow  # a CLI training run, ~10 s
def test_a_gray_first_image_in_a_colour_folder_trains_in_colour(ctx, capsys):
    out = ctx.base / "gray_run"
    argv = folder(ctx, "gray_first", "--mask-values", "0,1", "--out", str(out))
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["input_channels"] == 3


# --- property-based: the loaders and the predictor on random bytes, shapes and dtypes -------
PROPERTY = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
DTYPES = st.sampled_from([np.uint8, np.uint16, np.int32, np.int64, np.float32, np.float64,
                          np.bool_, np.int8])
SHAPES = st.one_of(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=12),
                   st.tuples(st.integers(1, 40), st.integers(1, 40), st.sampled_from([1, 3, 4])))
HEADERS = st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM"])


@PROPERTY
@given(header=HEADERS, body=st.binary(max_size=300))
def test_read_image_returns_rgb_or_a_clean_error(tmp_path, header, body):
    path = tmp_path / "random.png"
    path.write_bytes(header + body)
    try:
        image = read_image(path)
    except ValueError as exc:
        assert "random.png" in str(exc)
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3


def random_arrays():
    return st.tuples(SHAPES, DTYPES).flatmap(
        lambda sd: hnp.arrays(sd[1], sd[0], elements=None if sd[1] is np.bool_ else
                              st.integers(0, 255) if sd[1] is not np.int8 else None))


@PROPERTY
@given(array=random_arrays())
def test_as_rgb_returns_the_same_size_in_rgb_or_a_clean_error(array):
    try:
        rgb = as_rgb(array)
    except ValueError:
        return
    assert rgb.dtype == np.uint8 and rgb.shape == (*array.shape[:2], 3)


@pytest.fixture(scope="module")
def predictor():
    from unet_tf.predictors.keras_model import KerasPredictor

    config = model_preset("tiny", num_classes=4)
    info = RunInfo(config, CLASSES, (32, 32), dict(PREPROCESSING), {})
    return KerasPredictor.from_model(build_unet(config), info)


@PROPERTY
@given(array=random_arrays(), tile=st.sampled_from([None, 16]))
def test_the_predictor_segments_any_image_at_its_size_or_refuses_it_cleanly(
        predictor, array, tile):
    try:
        mask = predictor.predict(array, tile=tile, overlap=4)
    except ValueError:
        return
    assert mask.dtype == np.uint8 and mask.shape == array.shape[:2]
    assert mask.max() < len(CLASSES)
