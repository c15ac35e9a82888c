"""Predictor: one predict() for .keras, SavedModel and .tflite; the predict command."""

import numpy as np
import pytest
from _export_fixtures import agreement, pets_export, pets_photos
from PIL import Image

from unet_tf import Predictor
from unet_tf.cli import main
from unet_tf.predict import as_rgb, overlay_with_legend, read_image


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    return pets_export(tmp_path_factory)


@pytest.fixture(scope="module")
def predictors(pets):
    run, out, _ = pets
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
        assert predictor.class_names == ("pet", "background", "border"), name
        mask, probs = predictor.predict(image, return_probabilities=True)
        assert mask.shape == (97, 131) and mask.dtype == np.uint8, name
        assert probs.shape == (97, 131, 3) and probs.dtype == np.float32, name
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-4)
        assert np.array_equal(mask, probs.argmax(-1)), name
    formats = {name: p.format for name, p in predictors.items()}
    assert formats == {"keras": "keras", "keras file": "keras", "savedmodel": "savedmodel",
                       "export dir": "savedmodel", "fp32": "tflite-none",
                       "fp16": "tflite-fp16", "int8": "tflite-int8"}


def test_formats_agree_with_keras_on_a_photo(predictors):
    photo = read_image(pets_photos(1)[0])
    reference = predictors["keras"].predict(photo)
    assert reference.shape == photo.shape[:2]
    assert agreement(predictors["savedmodel"].predict(photo), reference) >= 0.999
    assert agreement(predictors["fp32"].predict(photo), reference) >= 0.999
    assert agreement(predictors["fp16"].predict(photo), reference) >= 0.995
    assert agreement(predictors["int8"].predict(photo), reference) >= 0.95


def test_gray_rgba_and_exif_rotated_files(predictors, tmp_path):
    predictor = predictors["int8"]
    gray = np.full((40, 50), 120, np.uint8)
    assert predictor.predict(gray).shape == (40, 50)
    rgba = np.zeros((40, 50, 4), np.uint8)
    assert predictor.predict(rgba).shape == (40, 50)
    # A phone photo stored landscape with "rotate 90 degrees" in its EXIF is portrait.
    photo = Image.open(pets_photos(1)[0]).convert("RGB").resize((120, 80))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    photo.save(path, exif=exif.tobytes())
    assert read_image(path).shape == (120, 80, 3)
    assert predictor.predict(path).shape == (120, 80)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Predictor.from_path(tmp_path / "missing.tflite")
    with pytest.raises(ValueError, match="neither model.keras"):
        Predictor.from_path(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown model format '.onnx'"):
        Predictor.from_path(tmp_path / "model.onnx")
    with pytest.raises(ValueError, match="pass uint8 pixels"):
        as_rgb(np.full((4, 4, 3), 0.5, np.float32))
    with pytest.raises(ValueError, match="got shape"):
        as_rgb(np.zeros((4, 4, 2), np.uint8))


def test_overlay_has_a_legend_strip():
    picture = overlay_with_legend(np.zeros((60, 200, 3), np.uint8), np.zeros((60, 200)),
                                  ["pet", "background", "border"])
    assert picture.shape[1] == 200 and picture.shape[0] > 60
    assert (picture[60:] == 255).mean() > 0.5  # white strip with swatches and names


def test_cli_predict_writes_masks_and_overlays(pets, tmp_path, capsys):
    _, out, _ = pets
    photos = pets_photos(2)
    code = main(["-q", "predict", "--model", str(out / "model_int8.tflite"), *map(str, photos),
                 "--out", str(tmp_path), "--threads", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "pet" in printed and "_overlay.png" in printed
    for photo in photos:
        with Image.open(photo) as im:
            size = im.size
        mask = Image.open(tmp_path / f"{photo.stem}_mask.png")
        assert mask.size == size and mask.mode == "L"
        assert np.asarray(mask).max() <= 2
        overlay = Image.open(tmp_path / f"{photo.stem}_overlay.png")
        assert overlay.width == size[0] and overlay.height > size[1]
