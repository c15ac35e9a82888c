import json

import keras
import numpy as np
import pytest

from unet_tf import ModelConfig, build_unet, check_input_size, model_preset
from unet_tf.config import MODEL_PRESETS


def test_tiny_model_output_has_input_size_and_logits():
    model = build_unet(model_preset("tiny", num_classes=3))
    out = model(np.zeros((2, 64, 96, 3), "float32"))
    assert out.shape == (2, 64, 96, 3)
    assert model.layers[-1].name == "head_logits"
    assert model.layers[-1].activation.__name__ == "linear"  # logits, no softmax


def test_layers_have_predictable_names_and_transpose_decoder():
    model = build_unet(model_preset("tiny", num_classes=2))
    names = {layer.name for layer in model.layers}
    assert {"enc1_conv1", "enc2_pool", "bottleneck_conv2", "dec1_up", "dec2_concat"} <= names
    assert isinstance(model.get_layer("dec1_up"), keras.layers.Conv2DTranspose)
    assert model.get_layer("dec1_up").strides == (2, 2)


def test_output_stride_2_has_no_full_resolution_block_and_full_size_logits():
    model = build_unet(model_preset("tiny", num_classes=3, output_stride=2))
    x = np.random.default_rng(0).random((2, 32, 48, 3)).astype("float32")
    assert model(x).shape == (2, 32, 48, 3)
    assert model.get_layer("enc1_stem").strides == (2, 2)
    names = [layer.name for layer in model.layers]
    assert names[-2:] == ["head_logits", "head_upsample"] and "enc1_conv1" not in names
    convs = [layer.output for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    heights = [out.shape[1] for out in keras.Model(model.input, convs)(x)]
    assert max(heights) == 16  # every convolution, the logits' too, at half resolution or below
    # the head upsamples bilinearly (exact away from the outermost pixel), at any image size
    half = keras.Model(model.input, model.get_layer("head_logits").output)(x)
    bilinear = keras.ops.image.resize(half, (32, 48), interpolation="bilinear")
    np.testing.assert_allclose(model(x)[:, 1:-1, 1:-1], bilinear[:, 1:-1, 1:-1], atol=1e-5)
    import tensorflow as tf

    traced = tf.function(model, input_signature=[tf.TensorSpec([None, None, None, 3])])
    assert traced(x[:, :16, :32]).shape == (2, 16, 32, 3)
    with pytest.raises(ValueError, match="output_stride must be 1 or 2"):
        model_preset("tiny", output_stride=4)


@pytest.mark.parametrize("output_stride", [1, 2])
def test_replace_head_shares_the_body_and_keeps_the_output_size(output_stride):
    from unet_tf import replace_head

    base = build_unet(model_preset("tiny", num_classes=3, output_stride=output_stride))
    model = replace_head(base, 2)
    x = np.random.default_rng(0).random((1, 32, 48, 3)).astype("float32")
    assert model(x).shape == (1, 32, 48, 2)
    shared = "enc1_stem" if output_stride == 2 else "enc1_conv1"
    assert model.get_layer(shared) is base.get_layer(shared)
    assert model.get_layer("head_logits") is not base.get_layer("head_logits")
    with pytest.raises(ValueError, match="no 'head_logits'"):
        replace_head(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), 2)


def test_classic_preset_has_the_papers_31_million_parameters():
    model = build_unet(model_preset("classic", num_classes=2, input_channels=1))
    # Ronneberger et al.: 64..1024 filters; with "same" padding ~31.03 M parameters.
    assert model.count_params() == pytest.approx(31.03e6, rel=0.002)


def test_small_preset_size():
    assert build_unet(model_preset("f16")).count_params() == pytest.approx(1.94e6, rel=0.01)


@pytest.mark.parametrize("name", sorted(MODEL_PRESETS))
def test_config_round_trip_as_json(name):
    cfg = MODEL_PRESETS[name]
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_bad_config_values_raise_with_the_value():
    with pytest.raises(ValueError, match="num_classes"):
        ModelConfig(num_classes=1)
    with pytest.raises(ValueError, match="Unknown preset 'huge'"):
        model_preset("huge")
    with pytest.raises(ValueError, match="Unknown ModelConfig keys"):
        ModelConfig.from_dict({"filters": 3})


def test_bad_input_size_suggests_padded_size():
    cfg = model_preset("f16")  # depth 4: multiples of 16
    check_input_size(128, 96, cfg)
    with pytest.raises(ValueError, match=r"100x130 .*divisible by 16; pad or resize to 112x144"):
        check_input_size(100, 130, cfg)


def test_residual_and_dropout_variants_build():
    cfg = model_preset("tiny", residual=True, dropout=0.5, batch_norm=False)
    model = build_unet(cfg)
    assert "enc1_add" in {layer.name for layer in model.layers}
    assert model(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 32, 32, 3)


def test_keras_file_reloads_without_custom_objects(tmp_path):
    model = build_unet(model_preset("tiny", num_classes=3, residual=True))
    x = np.random.default_rng(0).random((1, 32, 32, 3)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(model(x), again(x), atol=1e-6)
