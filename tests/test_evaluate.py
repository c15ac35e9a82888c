import json

import keras
import numpy as np
import pytest

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


@pytest.mark.parametrize("shape", [(2, 16, 16, 3), (1, 16, 24, 3)])
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

    def model(x, training=False):  # records the shapes it is called with
        shapes.append(tuple(x.shape[1:3]))
        return one_by_one_model()(x)

    x = np.zeros((1, 16, 24, 3), np.float32)
    network_logits(model, x, tta=True)
    assert shapes == [(16, 24)] * 4  # 0 and 180 degrees, each flipped or not
    shapes.clear()
    network_logits(model, x, tta=True, any_shape=True)  # native resolution: all 8
    assert sorted(shapes) == [(16, 24)] * 4 + [(24, 16)] * 4


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


@pytest.mark.parametrize("tile", [None, 64])
def test_evaluate_writes_the_report_files(run_dir, tmp_path, tile):
    report = evaluate(run_dir, out_dir=tmp_path, tta=True, tile=tile, num_pictures=2)
    for name in ("report.json", "confusion.png", "predictions.png"):
        assert (tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["scored_at"] == "native" and saved["tta"] is True and saved["tile"] == tile
    assert set(saved["per_class_iou"]) == {"background", "disc", "square", "triangle"}
    assert np.array(saved["confusion"]).sum() == saved["pixels"] > 0
    assert "mean" in format_report(report)


def test_bad_tta_names_the_choices(run_dir):
    with pytest.raises(ValueError, match="tta must be one of"):
        evaluate(run_dir, tta="rotations")


def test_pictures_are_spread_over_the_data():
    assert spread_indices(101, 6) == {0, 20, 40, 60, 80, 100}
    assert spread_indices(3, 6) == {0, 1, 2}
    assert spread_indices(0, 6) == set()
