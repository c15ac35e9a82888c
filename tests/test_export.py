"""Export: SavedModel + TFLite on a model trained on the Oxford pets sample, with parity."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from _export_fixtures import pets_export, pets_photos

from unet_tf.cli import main
from unet_tf.export import (
    ExportError,
    ParityError,
    ParityThresholds,
    check_builtin_ops,
    convert_tflite,
    export,
    tflite_operators,
)
from unet_tf.predict import Predictor


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    return pets_export(tmp_path_factory)


def test_every_format_meets_the_strict_parity_thresholds(pets):
    _, out, report = pets
    parity = report["parity"]
    formats = parity["formats"]
    assert parity["passed"] and parity["images"] == 40
    assert formats["savedmodel"]["agreement"] >= 0.999
    assert formats["tflite-none"]["agreement"] >= 0.999
    assert formats["tflite-fp16"]["agreement"] >= 0.995
    keras_iou = parity["keras"]["mean_iou_vs_truth"]
    assert abs(formats["tflite-int8"]["mean_iou_vs_truth"] - keras_iou) <= 0.01
    assert keras_iou > 0.3  # a model that learned something, so the comparison means something
    assert json.loads((out / "parity.json").read_text())["formats"].keys() == formats.keys()


def test_tflite_files_hold_builtin_ops_only_and_take_pixels(pets):
    _, out, report = pets
    for name in ("model_fp32.tflite", "model_fp16.tflite", "model_int8.tflite"):
        content = (out / name).read_bytes()
        ops = check_builtin_ops(content, name)
        assert "CONV_2D" in ops and not any(op.startswith("CUSTOM") for op in ops)
        entry = report["tflite"][name]
        assert entry["input"]["shape"] == [1, 64, 64, 3]
    int8 = report["tflite"]["model_int8.tflite"]
    assert int8["input"]["dtype"] == "uint8" and int8["output"]["dtype"] == "uint8"
    assert int8["input"]["quantization"]["zero_point"] == 0
    assert int8["input"]["quantization"]["scale"] == pytest.approx(1.0, abs=1e-3)
    sizes = {name: (out / name).stat().st_size for name in report["tflite"]}
    assert sizes["model_int8.tflite"] < sizes["model_fp32.tflite"] / 3


def test_export_directory_carries_config_and_labels(pets):
    run, out, _ = pets
    config = json.loads((out / "config.json").read_text())
    assert config["class_names"] == ["pet", "background", "border"]
    assert config["input_size"] == [64, 64]
    assert config["preprocessing"]["scale"] == pytest.approx(1 / 255)
    assert config["export"]["savedmodel"]["signature"] == "serving_default"
    assert (out / "labels.txt").read_text().split() == ["pet", "background", "border"]
    assert not list(out.parent.glob(".*partial*"))  # the temporary folder was renamed


def test_saved_model_segments_any_size_in_a_process_without_unet_tf(pets, tmp_path):
    run, out, _ = pets
    photo = pets_photos(1)[0]
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import tensorflow as tf
        from PIL import Image
        image = np.asarray(Image.open({str(photo)!r}).convert("RGB").resize((251, 173)))
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
    assert mask.shape == (173, 251)
    from PIL import Image

    image = np.asarray(Image.open(photo).convert("RGB").resize((251, 173)))
    assert np.mean(mask == Predictor.from_path(run).predict(image)) >= 0.999


def test_a_failing_export_raises_with_numbers_and_writes_nothing(pets, tmp_path):
    run, _, _ = pets
    target = tmp_path / "never"
    with pytest.raises(ParityError, match=r"agreement 1\.00000 >= 1\.01") as info:
        export(run, target, formats="savedmodel", parity_images=2,
               thresholds=ParityThresholds(savedmodel_agreement=1.01))
    assert "savedmodel" in str(info.value) and not info.value.report["passed"]
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_export_refuses_to_overwrite_or_replace_its_own_run(pets, tmp_path):
    run, out, _ = pets
    with pytest.raises(ValueError, match="already exists; pass overwrite=True"):
        export(run, out)
    with pytest.raises(ValueError, match="model's own folder"):
        export(run, run)
    with pytest.raises(ValueError, match="quantize must be a comma-separated subset"):
        export(run, tmp_path / "x", quantize="int4")


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


def test_cli_export_prints_the_parity_table(pets, tmp_path, capsys):
    run, _, _ = pets
    code = main(["-q", "export", "--model", str(run), "--out", str(tmp_path / "e"),
                 "--formats", "tflite", "--quantize", "fp16", "--parity-images", "2"])
    assert code == 0
    out = capsys.readouterr().out
    assert "tflite-fp16" in out and "agreement" in out and "model_fp16.tflite" in out
    assert main(["export", "--model", str(run), "--out", str(tmp_path / "f"),
                 "--formats", "onnx"]) == 2
    assert "formats must be" in capsys.readouterr().err
