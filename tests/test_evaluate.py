import json

import keras
import numpy as np
import pytest
from PIL import Image

from unet_tf import DataConfig, RunInfo, build_unet, evaluate, model_preset
from unet_tf.data import PREPROCESSING
from unet_tf.evaluation import format_report, spread_indices
from unet_tf.serving import network_logits


def one_by_one_model(classes=3):
    """A 1x1 convolution commutes with flips and rotations: TTA must change nothing."""
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(classes, 1)])
    model.layers[0].set_weights([np.random.default_rng(0).normal(size=(1, 1, 3, classes)),
                                 np.zeros(classes)])
    return model


@pytest.mark.parametrize("shape", [(2, 16, 16, 3), (3, 16, 24, 3)])
def test_tta_maps_every_copy_back_to_the_same_pixels(shape):
    x = np.random.default_rng(1).random(shape).astype("float32")
    model = one_by_one_model()
    plain = softmax(network_logits(model, x))
    for mode, any_shape in ((True, False), (True, True), ("flips", False)):
        tta = softmax(network_logits(model, x, tta=mode, any_shape=any_shape))
        np.testing.assert_allclose(tta, plain, atol=1e-5)
        np.testing.assert_allclose(tta.sum(-1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="'flips'"):
        network_logits(model, x, tta="rotations")


def test_tta_turns_non_square_inputs_by_90_degrees_only_for_any_shape_models():
    shapes = []

    def model(x, training=False):  # records the (batch, height, width) it is called with
        shapes.append(tuple(x.shape[:3]))
        return one_by_one_model()(x)

    x = np.zeros((2, 16, 24, 3), np.float32)
    network_logits(model, x, tta=True)
    assert shapes == [(8, 16, 24)]  # 0 and 180 degrees, each flipped or not: one call
    shapes.clear()
    network_logits(model, x, tta=True, any_shape=True)  # native resolution: all 8
    assert shapes == [(8, 16, 24), (8, 24, 16)]  # one call per shape


def softmax(logits):
    e = np.exp(np.asarray(logits) - np.max(logits, axis=-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """An untrained tiny model saved as a run directory (no training needed)."""
    out = tmp_path_factory.mktemp("run")
    config = model_preset("tiny", num_classes=4)
    build_unet(config).save(out / "model.keras")
    data = DataConfig(num_examples=6, batch_size=3, image_size=(32, 32))
    RunInfo(config, ("background", "disc", "square", "triangle"), (32, 32),
            dict(PREPROCESSING), {"data": data.to_dict()}).save(out)
    return out


@pytest.fixture(scope="module")
def known_answer(tmp_path_factory):
    """A run whose model is one 1x1 convolution (red -> class b, blue -> class c) and four
    32x32 images, red left and blue right, all labelled b: the scores are known by hand."""
    root = tmp_path_factory.mktemp("known")
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, :16, 0] = image[:, 16:, 2] = 255
    for name in ("images", "masks"):
        (root / "data" / name).mkdir(parents=True)
    for i in range(4):
        Image.fromarray(image).save(root / "data" / "images" / f"{i}.png")
        Image.fromarray(np.ones((32, 32), np.uint8)).save(root / "data" / "masks" / f"{i}.png")
    weights = np.zeros((1, 1, 3, 3))
    weights[0, 0, 0, 1] = weights[0, 0, 2, 2] = 10.0  # red -> b, blue -> c
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(3, 1)])
    model.layers[0].set_weights([weights, np.array([-5.0, 0.0, 0.0])])
    run = root / "run"
    run.mkdir()
    model.save(run / "model.keras")
    RunInfo(model_preset("tiny", num_classes=3), ("a", "b", "c"), (32, 32),
            dict(PREPROCESSING), {}).save(run)
    data = DataConfig(spec=f"folder:{root / 'data'}", class_names=("a", "b", "c"),
                      mask_values=(0, 1, 2), image_size=(32, 32))
    return run, data


@pytest.mark.parametrize(("tta", "tile"), [(False, None), (True, 16)])
def test_evaluate_gives_the_known_answer_and_writes_it(known_answer, tmp_path, tta, tile):
    run, data = known_answer
    report = evaluate(run, data, out_dir=tmp_path, tta=tta, tile=tile, overlap=4,
                      num_pictures=2)
    half = 4 * 32 * 16  # pixels of each colour over the four images
    # a 1x1 convolution commutes with flips, rotations and tiles: the same answer each way
    assert report["confusion"] == [[0, 0, 0], [0, half, half], [0, 0, 0]]
    assert report["pixel_accuracy"] == pytest.approx(0.5)
    assert report["per_class_iou"]["b"] == pytest.approx(0.5)  # 2048 / (2048 + 2048)
    assert report["per_class_iou"]["c"] == 0.0  # predicted, never true
    assert report["mean_iou"] == pytest.approx(0.25)  # a: never true nor predicted, left out
    assert report["mean_dice"] == pytest.approx(1 / 3)  # b: 2/3, c: 0
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["confusion"] == report["confusion"] and saved["mean_iou"] == report["mean_iou"]
    assert saved["tta"] is tta and saved["tile"] == tile and saved["scored_at"] == "native"
    for name in ("confusion.png", "predictions.png"):
        with Image.open(tmp_path / name) as picture:
            assert picture.width > 100 and picture.height > 100, name
    assert "0.2500" in format_report(report) or "0.250" in format_report(report)


def test_bad_tta_names_the_choices(run_dir):
    with pytest.raises(ValueError, match="tta must be one of"):
        evaluate(run_dir, tta="rotations")


def test_pictures_are_spread_over_the_data():
    assert spread_indices(101, 6) == {0, 20, 40, 60, 80, 100}
    assert spread_indices(3, 6) == {0, 1, 2}
    assert spread_indices(0, 6) == set()
