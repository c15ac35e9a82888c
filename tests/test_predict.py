"""Predictor: one predict() for .keras, SavedModel and .tflite; tiles; the predict command."""

import numpy as np
import pytest
from _models import CLASS_NAMES, agreement, scene_files, scenes, trained_export
from PIL import Image

from unet_tf import DataConfig, Predictor, evaluate
from unet_tf.cli import main
from unet_tf.imageio import as_rgb, read_image
from unet_tf.tiling import tile_starts
from unet_tf.viz import overlay_with_legend

pytestmark = pytest.mark.slow  # the shared trained model and its export (tests/_models.py)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return trained_export(tmp_path_factory)


@pytest.fixture(scope="module")
def predictors(exported):
    run, out, _ = exported
    paths = {
        "keras": run,
        "keras file": run / "model.keras",
        "savedmodel": out / "saved_model",
        "export dir": out,
        "fp32": out / "model_fp32.tflite",
        "fp16": out / "model_fp16.tflite",
        "int8": out / "model_int8.tflite",
    }
    return {name: Predictor.from_path(path) for name, path in paths.items()}


def test_every_format_returns_a_mask_at_the_image_size(predictors):
    image = np.random.default_rng(0).integers(0, 256, (97, 131, 3), dtype=np.uint8)
    for name, predictor in predictors.items():
        assert predictor.class_names == CLASS_NAMES, name
        mask, probs = predictor.predict(image, return_probabilities=True)
        assert mask.shape == (97, 131) and mask.dtype == np.uint8, name
        assert probs.shape == (97, 131, 4) and probs.dtype == np.float32, name
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-4)
        assert np.array_equal(mask, probs.argmax(-1)), name
    formats = {name: p.format for name, p in predictors.items()}
    assert formats == {"keras": "keras", "keras file": "keras", "savedmodel": "savedmodel",
                       "export dir": "savedmodel", "fp32": "tflite-fp32",
                       "fp16": "tflite-fp16", "int8": "tflite-int8"}


def test_savedmodel_predictors_and_evaluate_give_the_same_mask(exported, predictors, tmp_path):
    """One serving path: the same odd-sized image gives the same mask everywhere."""
    run, _, _ = exported
    image = scenes(1, size=160, seed=11)[0][:151, :117]
    reference = predictors["keras"].predict(image)
    assert agreement(predictors["savedmodel"].predict(image), reference) >= 0.9999
    assert agreement(predictors["fp32"].predict(image), reference) >= 0.999
    assert agreement(predictors["fp16"].predict(image), reference) >= 0.995
    assert agreement(predictors["int8"].predict(image), reference) >= 0.95
    # evaluate scores what the served model returns: against the SavedModel's own mask as
    # ground truth, it must find (almost) every pixel right
    for kind in ("images", "masks"):
        (tmp_path / kind).mkdir()
    Image.fromarray(image).save(tmp_path / "images" / "odd.png")
    Image.fromarray(predictors["savedmodel"].predict(image)).save(tmp_path / "masks" / "odd.png")
    data = DataConfig(spec=f"folder:{tmp_path}", class_names=CLASS_NAMES,
                      mask_values=(0, 1, 2, 3))
    report = evaluate(run, data)
    assert report["examples"] == 1 and report["pixel_accuracy"] >= 0.9999


@pytest.mark.parametrize("name", ["keras", "savedmodel", "fp32", "int8"])
def test_tiled_prediction_matches_the_whole_image_without_seams(predictors, name):
    predictor = predictors[name]
    image = np.concatenate([np.concatenate(scenes(2, 128, seed=s), axis=1)
                            for s in (3, 5)])[:250, :230]
    # the whole image in one network call, with the same mirrored context at its borders
    whole = predictor.predict(image, tile=384, overlap=64)
    tiled = predictor.predict(image, tile=192, overlap=64)
    assert tiled.shape == whole.shape == (250, 230)
    # int8 logits are quantized: on this weakly trained model 7% of the pixels have two
    # classes tied exactly, and most int8 disagreements are such ties broken differently
    assert agreement(tiled, whole) >= (0.98 if name == "int8" else 0.995)
    # no seam: pixels on the tile edges agree as well as the others
    edges = np.zeros(whole.shape, bool)
    margin = 32  # overlap / 2 of mirrored context around the image
    for axis, length in enumerate(whole.shape):
        for start in tile_starts(length + 2 * margin, 192, 128):
            for edge in (start, start + 191):
                if 0 <= edge - margin < length:
                    edges[(slice(None),) * axis + (edge - margin,)] = True
    assert edges.sum() > 700
    assert np.mean(tiled[edges] == whole[edges]) >= (0.95 if name == "int8" else 0.99)
    with pytest.raises(ValueError, match="multiple of 8"):
        predictor.predict(image, tile=60)
    with pytest.raises(ValueError, match="overlap must be in"):
        predictor.predict(image, tile=64, overlap=36)


def test_gray_rgba_16bit_and_exif_rotated_files(predictors, tmp_path):
    predictor = predictors["int8"]
    gray = np.full((40, 50), 120, np.uint8)
    assert predictor.predict(gray).shape == (40, 50)
    rgba = np.zeros((40, 50, 4), np.uint8)
    assert predictor.predict(rgba).shape == (40, 50)
    # a 16-bit grayscale PNG keeps its picture (not all 255), as training reads it
    deep = (np.arange(40 * 50).reshape(40, 50) * 30).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    read = read_image(tmp_path / "deep.png")
    assert read.shape == (40, 50, 3) and np.array_equal(read[..., 0], deep >> 8)
    # a phone photo stored landscape with "rotate 90 degrees" in its EXIF is portrait
    photo = Image.fromarray(scenes(1)[0]).resize((120, 80))
    exif = Image.Exif()
    exif[0x0112] = 6
    photo.save(tmp_path / "sideways.jpg", exif=exif.tobytes())
    assert read_image(tmp_path / "sideways.jpg").shape == (120, 80, 3)
    assert predictor.predict(tmp_path / "sideways.jpg").shape == (120, 80)


def test_errors_name_the_problem(exported, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Predictor.from_path(tmp_path / "missing.tflite")
    with pytest.raises(ValueError, match="neither model.keras"):
        Predictor.from_path(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown model format '.pt'"):
        Predictor.from_path(tmp_path / "model.pt")
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "model.tflite").write_bytes(
        (exported[1] / "model_int8.tflite").read_bytes())
    with pytest.raises(ValueError, match="class names and input size are unknown"):
        Predictor.from_path(tmp_path / "bare" / "model.tflite")
    with pytest.raises(ValueError, match="pass uint8 pixels"):
        as_rgb(np.full((4, 4, 3), 0.5, np.float32))
    with pytest.raises(ValueError, match="got shape"):
        as_rgb(np.zeros((4, 4, 2), np.uint8))


def test_overlay_has_a_legend_strip():
    picture = overlay_with_legend(np.zeros((60, 200, 3), np.uint8), np.zeros((60, 200)),
                                  ["pet", "background", "border"])
    assert picture.shape[1] == 200 and picture.shape[0] > 60
    assert (picture[60:] == 255).mean() > 0.5  # white strip with swatches and names


def test_cli_predict_writes_masks_and_overlays(exported, tmp_path, capsys):
    _, out, _ = exported
    first = scene_files(tmp_path / "a", 2)
    second = scene_files(tmp_path / "b", 1)  # the same file name as a/scene0.png
    code = main(["-q", "predict", "--model", str(out / "model_int8.tflite"),
                 *map(str, first + second), "--out", str(tmp_path / "out"), "--threads", "1",
                 "--tile", "64"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "disc" in printed and "_overlay.png" in printed
    written = sorted(p.name for p in (tmp_path / "out").glob("*_mask.png"))
    assert written == ["a_scene0_mask.png", "b_scene0_mask.png", "scene1_mask.png"]
    mask = Image.open(tmp_path / "out" / "scene1_mask.png")
    assert mask.size == (96, 96) and mask.mode == "L" and np.asarray(mask).max() <= 3
    overlay = Image.open(tmp_path / "out" / "scene1_overlay.png")
    assert overlay.width == 96 and overlay.height > 96
