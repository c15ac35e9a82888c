"""Shipped models by name (a registry over saved_models/), post-processing stored with a
model, and fine-tuning from one: on tiny untrained models in tmp_path, in seconds."""

import json

import numpy as np
import pytest

from unet_tf.cli import main
from unet_tf.config import TrainConfig

INSTANCE_CLASSES = ("background", "interior", "boundary")


def make_model_dir(folder, class_names=INSTANCE_CLASSES, shipped=True, seed=0, stride=1,
                   **extra):
    """A run directory holding an untrained tiny U-Net (logits at 1/``stride`` of the
    input, upsampled by the frozen ``head_upsample`` as on the default preset) and its
    config.json."""
    import dataclasses

    import keras

    from unet_tf import RunInfo, build_unet, model_preset
    from unet_tf.data import PREPROCESSING

    keras.utils.set_random_seed(seed)
    config = dataclasses.replace(model_preset("tiny", num_classes=len(class_names)),
                                 output_stride=stride)
    folder.mkdir(parents=True)
    model = build_unet(config)
    model.save(folder / "model.keras")
    if shipped:
        extra["shipped"] = {"task": "test nuclei", "licence": "CC0", "score": "AP 0.5 (dev)"}
    RunInfo(config, tuple(class_names), (32, 32), {**PREPROCESSING, "resolution": "native"},
            extra={"data": {"spec": "instances:cells"}, **extra}).save(folder)
    return folder


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    root = tmp_path / "shipped"
    make_model_dir(root / "cells")
    make_model_dir(root / "my_run", shipped=False)  # a user's run beside them: not listed
    monkeypatch.setenv("UNET_TF_MODELS", str(root))
    return root


def test_shipped_models_are_listed_resolved_and_loaded_by_name(shipped, capsys):
    import unet_tf
    from unet_tf.models import resolve, shipped_models

    assert [m.name for m in shipped_models()] == ["cells"]
    assert resolve("cells") == shipped / "cells"
    model, info = unet_tf.load_model("cells")
    assert info.class_names == INSTANCE_CLASSES and model.output_shape[-1] == 3
    image = np.random.default_rng(0).integers(0, 255, (40, 56, 3), np.uint8)
    predictor = unet_tf.Predictor.from_path("cells")
    assert predictor.path == shipped / "cells" and predictor.predict(image).shape == (40, 56)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "cells" in out and "test nuclei" in out and "CC0" in out and "my_run" not in out
    assert "native" in out and "AP 0.5" in out  # the short table; models NAME has it all
    assert main(["models", "cells"]) == 0
    assert "native pixel size" in capsys.readouterr().out


def test_a_path_that_exists_wins_over_a_name(shipped, tmp_path, monkeypatch):
    from unet_tf.models import resolve

    make_model_dir(tmp_path / "work" / "cells", class_names=("a", "b"))
    monkeypatch.chdir(tmp_path / "work")
    assert resolve("cells").resolve() == (tmp_path / "work" / "cells").resolve()


def test_unknown_names_say_what_exists_and_where_models_come_from(shipped, tmp_path,
                                                                  monkeypatch, capsys):
    image = tmp_path / "x.png"
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    assert main(["predict", "--model", "nucleii", str(image), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nucleii does not exist and is not a shipped model; shipped models: cells" in err
    monkeypatch.setenv("UNET_TF_MODELS", str(tmp_path / "empty"))
    assert main(["evaluate", "--model", "nuclei"]) == 2
    err = capsys.readouterr().err
    assert "no shipped models in" in err and "clone" in err and "UNET_TF_MODELS" in err
    assert main(["models"]) == 2
    assert "no shipped models in" in capsys.readouterr().err


def test_stored_postprocessing_is_used_unless_overridden(tmp_path):
    from unet_tf.instances import label, object_separator

    p = np.zeros((20, 20, 3), np.float32)
    p[..., 0] = 1
    p[2:6, 2:6] = [0, 1, 0]  # 16 px
    p[10:18, 10:18] = [0, 1, 0]  # 64 px
    config = {"class_names": list(INSTANCE_CLASSES), "postprocess": {"min_size": 20,
                                                                      "tta": "all"}}
    assert object_separator({"class_names": list(INSTANCE_CLASSES)}, "m") is label
    assert object_separator(config, "m")(p).max() == 1  # the 16 px object is dropped
    assert object_separator(config, "m", min_size=4)(p).max() == 2  # the flag wins
    with pytest.raises(ValueError, match="takes no"):
        object_separator({"class_names": ["bg", "fg"]}, "m", interior_threshold=0.5)


def test_a_predictor_takes_the_stored_tta(tmp_path):
    from unet_tf.predictors.keras_model import KerasPredictor

    run = make_model_dir(tmp_path / "run", postprocess={"tta": "flips"})
    assert KerasPredictor(run).tta == "flips"
    assert KerasPredictor(run, tta=False).tta is False
    assert KerasPredictor(make_model_dir(tmp_path / "plain")).tta is False


@pytest.mark.parametrize("stride", [1, 2])  # 2: the default preset's head_upsample
def test_fine_tuning_keeps_every_weight_but_a_new_head(tmp_path, stride):
    from unet_tf import build_unet
    from unet_tf.finetune import copy_weights, initial_config
    from unet_tf.models import load_model

    run = make_model_dir(tmp_path / "run", stride=stride)
    source, _ = load_model(run)
    for classes, same in ((INSTANCE_CLASSES, True), (("bg", "cell"), False)):
        config, start = initial_config(run, classes, 3)
        model = build_unet(config)
        copy_weights(model, start)
        assert model.output_shape[-1] == len(classes) and start["same_classes"] is same
        for layer in model.layers:
            for new, old in zip(layer.get_weights(), source.get_layer(layer.name).get_weights(),
                                strict=True):
                if layer.name.startswith("head_") and not same:
                    assert new.shape[-1] == 2 and old.shape[-1] == 3
                else:
                    np.testing.assert_array_equal(new, old, err_msg=layer.name)
    with pytest.raises(ValueError, match="1-channel"):
        initial_config(run, classes, 1)
    with pytest.raises(ValueError, match="needs init"):
        TrainConfig(freeze_encoder_epochs=1)


def test_tune_refuses_a_model_that_separates_no_objects(tmp_path):
    from unet_tf.tuning import tune

    run = make_model_dir(tmp_path / "pets", class_names=("pet", "background", "border"))
    with pytest.raises(ValueError, match="not an instance model"):
        tune(run)
    assert "postprocess" not in json.loads((run / "config.json").read_text())
