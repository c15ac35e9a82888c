"""Export: SavedModel + TFLite of a model trained on the synthetic data, with parity."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from _models import IMAGE_SIZE, scenes, trained_export

from unet_tf import ExportConfig, ParityThresholds, Predictor, export
from unet_tf.cli import main
from unet_tf.deploy import ExportError, ParityError, convert_tflite
from unet_tf.deploy.tflite import check_builtin_ops, tflite_operators

pytestmark = pytest.mark.slow  # a trained model, its SavedModel and TFLite conversions


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return trained_export(tmp_path_factory)


def test_every_format_gives_the_keras_masks_on_scenes_the_check_never_saw(exported):
    """Measured here, not read from the report: each exported file run by its own runtime
    on new scenes, against the Keras model and the scenes' true masks."""
    from unet_tf.data.synthetic import make_arrays
    from unet_tf.metrics import confusion_matrix, scores_from_confusion

    run, out, report = exported
    images, truths = make_arrays(6, seed=123, size=80)  # another seed and size than export's
    files = {"savedmodel": out / "saved_model", **{
        f"tflite-{q}": out / f"model_{q}.tflite" for q in ("fp32", "fp16", "int8")}}
    assert set(report["parity"]["formats"]) == set(files)
    keras_predictor = Predictor.from_path(run)
    expected = [keras_predictor.predict(image) for image in images]
    classes = keras_predictor.class_names

    def scores(masks):
        agreement = np.mean([np.mean(m == e) for m, e in zip(masks, expected, strict=True)])
        confusion = sum(confusion_matrix(t[..., 0], m, len(classes))
                        for t, m in zip(truths, masks, strict=True))
        return agreement, scores_from_confusion(confusion, classes)["mean_iou"]

    _, keras_iou = scores(expected)
    assert keras_iou > 0.2  # a model that learned something, so the comparison means something
    for name, path in files.items():
        predictor = Predictor.from_path(path)
        agreement, iou = scores([predictor.predict(image) for image in images])
        minimum = {"tflite-fp16": 0.995, "tflite-int8": 0.9}.get(name, 0.999)
        assert agreement >= minimum, (name, agreement)
        assert abs(iou - keras_iou) <= (0.02 if name == "tflite-int8" else 0.005), (name, iou)
    assert json.loads((out / "parity.json").read_text())["formats"].keys() == files.keys()


def test_tflite_files_hold_builtin_ops_only_and_take_pixels(exported):
    _, out, report = exported
    for name, entry in report["tflite"].items():
        ops = check_builtin_ops((out / name).read_bytes(), name)
        assert "CONV_2D" in ops and not any(op.startswith("CUSTOM") for op in ops)
        assert entry["input"]["shape"] == [1, *IMAGE_SIZE, 3]
        assert name == f"model_{entry['format'].removeprefix('tflite-')}.tflite"
    int8 = report["tflite"]["model_int8.tflite"]
    assert int8["input"]["dtype"] == "uint8" and int8["output"]["dtype"] == "uint8"
    assert int8["input"]["quantization"]["zero_point"] == 0
    assert int8["input"]["quantization"]["scale"] == pytest.approx(1.0, abs=1e-3)
    sizes = {name: (out / name).stat().st_size for name in report["tflite"]}
    assert sizes["model_int8.tflite"] < sizes["model_fp32.tflite"] / 2.5


def test_export_directory_carries_config_and_labels(exported):
    _, out, _ = exported
    config = json.loads((out / "config.json").read_text())
    assert config["class_names"] == ["background", "disc", "square", "triangle"]
    assert config["input_size"] == list(IMAGE_SIZE)
    assert config["preprocessing"]["scale"] == pytest.approx(1 / 255)
    assert config["export"]["savedmodel"]["signatures"] == ["serving_default", "segment_tiles"]
    assert config["export"]["source_model"] == "model.keras"  # no machine paths
    assert (out / "labels.txt").read_text().split() == config["class_names"]
    assert not list(out.parent.glob(".*partial*"))  # the temporary folder was renamed


def test_saved_model_segments_any_size_in_a_process_without_unet_tf(exported, tmp_path):
    run, out, _ = exported
    image = scenes(1, size=120)[0][:111, :89]  # odd height and width
    np.save(tmp_path / "image.npy", image)
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import tensorflow as tf
        image = np.load({str(tmp_path / "image.npy")!r})
        serve = tf.saved_model.load({str(out / "saved_model")!r}).signatures["serving_default"]
        result = serve(images=tf.constant(image[None]))
        np.save({str(tmp_path / "mask.npy")!r}, result["mask"].numpy()[0])
        probs = result["probabilities"].numpy()
        assert result["mask"].dtype == tf.uint8 and probs.dtype == np.float32
        assert np.allclose(probs.sum(-1), 1.0, atol=1e-4)
        assert not any(name.startswith("unet_tf") for name in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    mask = np.load(tmp_path / "mask.npy")
    assert mask.shape == (111, 89)
    assert np.mean(mask == Predictor.from_path(run).predict(image)) >= 0.9999


def test_a_failing_export_raises_with_numbers_and_writes_nothing(exported, tmp_path):
    run, _, _ = exported
    target = tmp_path / "never"
    config = ExportConfig(formats=("savedmodel",), parity_images=2,
                          thresholds=ParityThresholds(savedmodel_agreement=1.01))
    with pytest.raises(ParityError, match=r"agreement 1\.00000 >= 1\.01") as info:
        export(run, target, config)
    assert "savedmodel" in str(info.value) and not info.value.report["passed"]
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_export_refuses_to_overwrite_or_replace_what_is_not_an_export(exported, tmp_path):
    run, out, _ = exported
    with pytest.raises(ValueError, match="already exists; pass overwrite=True"):
        export(run, out)
    with pytest.raises(ValueError, match="model's own folder"):
        export(run, run)
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"keep me")
    with pytest.raises(ValueError, match="not an export folder"):
        export(run, other, ExportConfig(overwrite=True))
    assert (other / "holiday.jpg").read_bytes() == b"keep me"
    with pytest.raises(ValueError, match="formats must be a non-empty subset"):
        ExportConfig(formats=("tflite-int4",))


def test_output_stride_2_converts_to_builtin_ops_with_the_models_logits():
    """The default preset's stride-2 stem and bilinear x2 head (a transposed convolution)
    stay builtin, and the fp32 file computes the Keras model's logits."""
    from ai_edge_litert.interpreter import Interpreter

    from unet_tf import RunInfo, build_unet, model_preset
    from unet_tf.data import PREPROCESSING

    config = model_preset("tiny", num_classes=3, output_stride=2)
    model = build_unet(config)
    info = RunInfo(config, ("a", "b", "c"), (32, 48), dict(PREPROCESSING), {})
    content = convert_tflite(model, info, "fp32")
    ops = check_builtin_ops(content, "stride2.tflite")
    assert {"CONV_2D", "TRANSPOSE_CONV"} <= set(ops)
    pixels = np.random.default_rng(0).integers(0, 256, (1, 32, 48, 3)).astype("float32")
    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
    interpreter.invoke()
    logits = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    expected = model(pixels * PREPROCESSING["scale"]).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_output_stride_2_traces_both_serving_signatures_at_any_size():
    from unet_tf import build_unet, model_preset
    from unet_tf.serving import serving_function, serving_signature, tile_function

    config = model_preset("tiny", num_classes=3, output_stride=2)
    model = build_unet(config)
    image = np.random.default_rng(0).integers(0, 256, (1, 37, 50, 3)).astype("uint8")
    for function in (serving_function(model, (32, 32), 3, config.size_multiple),
                     tile_function(model, 3, config.size_multiple)):
        served = tf.function(function, input_signature=[serving_signature()])(image)
        assert served["mask"].shape == (1, 37, 50)


def test_a_flex_op_fails_the_builtin_check():
    f = tf.function(lambda x: tf.math.cumprod(x, axis=1)).get_concrete_function(
        tf.TensorSpec([1, 4], tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([f])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                           tf.lite.OpsSet.SELECT_TF_OPS]
    content = converter.convert()
    assert tflite_operators(content) == ["CUSTOM:FlexCumprod"]
    with pytest.raises(ExportError, match="non-builtin ops.*FlexCumprod"):
        check_builtin_ops(content, "flex.tflite")


def test_int8_needs_representative_images():
    with pytest.raises(ValueError, match="representative"):
        convert_tflite(None, None, "int8")


def test_cli_export_prints_the_parity_table(exported, tmp_path, capsys):
    run, _, _ = exported
    code = main(["-q", "export", "--model", str(run), "--out", str(tmp_path / "e"),
                 "--formats", "tflite-fp16", "--parity-images", "2"])
    assert code == 0
    out = capsys.readouterr().out
    assert "tflite-fp16" in out and "agreement" in out and "model_fp16.tflite" in out
    assert main(["export", "--model", str(run), "--out", str(tmp_path / "f"),
                 "--formats", "coreml"]) == 2
    assert "formats must be a non-empty subset" in capsys.readouterr().err


def test_cli_export_writes_the_web_page_beside_the_tflite(exported, tmp_path, capsys):
    from unet_tf.web import runtime_dir

    try:
        runtime_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"LiteRT.js is not installed ({exc})")
    run, _, _ = exported
    code = main(["-q", "export", "--model", str(run), "--out", str(tmp_path / "e"),
                 "--formats", "tflite-int8,web", "--parity-images", "2",
                 "--representative-images", "4"])
    assert code == 0, capsys.readouterr().err
    web = tmp_path / "e" / "web"
    assert (web / "index.html").is_file() and (web / "model_int8.tflite").is_file()
    assert json.loads((web / "config.json").read_text())["class_names"][0] == "background"
    assert main(["export", "--model", str(run), "--out", str(tmp_path / "f"),
                 "--formats", "savedmodel,web"]) == 2
    assert "add tflite-int8" in capsys.readouterr().err
