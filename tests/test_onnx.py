"""ONNX export: model.onnx keeps the SavedModel's contract and agrees with Keras in onnxruntime."""

import json
import sys

import numpy as np
import pytest
import tensorflow as tf
from _models import CLASS_NAMES, agreement, scene_files, scenes, trained_export
from PIL import Image

from unet_tf import ExportConfig, Predictor, export, model_preset
from unet_tf.checkpoint import RunInfo
from unet_tf.cli import main
from unet_tf.data.preprocess import PREPROCESSING
from unet_tf.deploy import ExportError
from unet_tf.deploy.onnx import ONNX_FILE, check_onnx_ops, convert_onnx
from unet_tf.model import build_unet
from unet_tf.predictors.keras_model import KerasPredictor
from unet_tf.predictors.onnx import OnnxPredictor
from unet_tf.serving import serving_function

pytestmark = pytest.mark.slow  # the shared trained model, an export and onnxruntime


@pytest.fixture(scope="module")
def ort():
    import onnxruntime  # the "onnx" extra, part of "test": missing, these tests fail

    return onnxruntime


@pytest.fixture(scope="module")
def onnx():
    import onnx

    return onnx


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory):
    """(run, export directory of `unet-tf export --formats onnx`, its report as written)."""
    run, _, _ = trained_export(tmp_path_factory)
    out = tmp_path_factory.mktemp("onnx") / "export"
    assert main(["-q", "export", "--model", str(run), "--out", str(out), "--formats", "onnx",
                 "--parity-images", "16"]) == 0
    report = json.loads((out / "config.json").read_text())["export"]
    return run, out, {**report, "parity": json.loads((out / "parity.json").read_text())}


def test_export_writes_model_onnx_that_passes_parity(onnx_export):
    _, out, report = onnx_export
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "labels.txt", ONNX_FILE, "parity.json"]
    entry = report["parity"]["formats"]["onnx"]
    assert list(report["parity"]["formats"]) == ["onnx"]
    assert report["parity"]["passed"] and entry["passed"], entry
    assert entry["agreement"] >= 0.999 and entry["check"].startswith("agreement")
    described = report["onnx"]
    assert described["path"] == ONNX_FILE and described["opset"] == 18
    assert described["bytes"] == (out / ONNX_FILE).stat().st_size
    assert described["inputs"] == {"images": {"dtype": "uint8",
                                              "shape": ["batch", "height", "width", 3]}}
    assert described["outputs"]["probabilities"] == {
        "dtype": "float32", "shape": ["batch", "height", "width", len(CLASS_NAMES)]}
    assert "onnxruntime" in report["versions"] and "tf2onnx" in report["versions"]


def test_onnxruntime_alone_segments_an_odd_size_like_keras(onnx_export, ort):
    """No unet_tf in the loop: the file's own contract, run by onnxruntime directly."""
    run, out, _ = onnx_export
    session = ort.InferenceSession(str(out / ONNX_FILE), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    keras_predictor = Predictor.from_path(run)
    # whole scenes squeezed to an odd height and width, so every image holds shapes
    images = [np.asarray(Image.fromarray(scene).resize((70, 45), Image.BILINEAR))
              for scene in scenes(2, size=96)]
    mask, probabilities = session.run(["mask", "probabilities"], {"images": np.stack(images)})
    assert mask.dtype == np.uint8 and mask.shape == (2, 45, 70)
    assert probabilities.dtype == np.float32 and probabilities.shape == (2, 45, 70, 4)
    assert np.allclose(probabilities.sum(-1), 1.0, atol=1e-4)
    assert np.array_equal(mask, probabilities.argmax(-1))
    expected = np.stack([keras_predictor.predict(image) for image in images])
    assert len(np.unique(expected)) > 1  # the model finds shapes: not background alone
    assert agreement(mask, expected) >= 0.99, agreement(mask, expected)


def test_the_file_holds_standard_onnx_ops_only(onnx_export, onnx):
    _, out, report = onnx_export
    model = onnx.load(str(out / ONNX_FILE))
    onnx.checker.check_model(model, full_check=True)
    nodes = list(model.graph.node)
    for node in nodes:  # subgraphs too (the native runs' padding has an If)
        for attr in node.attribute:
            nodes.extend(n for g in (*([attr.g] if attr.HasField("g") else []), *attr.graphs)
                         for n in g.node)
    assert {n.domain for n in nodes} <= {""}, {n.domain for n in nodes}
    ops = {n.op_type for n in nodes}
    assert {"Conv", "Resize", "Softmax", "ArgMax"} <= ops
    assert not ops & {"ScaleAndTranslate", "StatefulPartitionedCall", "PartitionedCall"}
    assert all(onnx.defs.has(op, 18, "") for op in ops)
    assert report["onnx"]["operators"] == sorted(ops)


def test_predictor_and_cli_predict_run_the_onnx_file(onnx_export, tmp_path, capsys):
    run, out, _ = onnx_export
    predictor = Predictor.from_path(out / ONNX_FILE, num_threads=1)
    assert isinstance(predictor, OnnxPredictor) and predictor.format == "onnx"
    image = scenes(1, size=120, seed=5)[0][:111, :89]
    mask, probabilities = predictor.predict(image, return_probabilities=True)
    assert mask.shape == (111, 89) and probabilities.shape == (111, 89, 4)
    assert agreement(mask, Predictor.from_path(run).predict(image)) >= 0.999
    with pytest.raises(ValueError, match="no tile path.*saved_model"):
        predictor.predict(image, tile=64)

    files = scene_files(tmp_path / "in", 1)
    assert main(["-q", "predict", "--model", str(out / ONNX_FILE), *map(str, files),
                 "--out", str(tmp_path / "masks")]) == 0
    assert "scene0_mask.png" in capsys.readouterr().out
    assert (tmp_path / "masks" / "scene0_mask.png").is_file()


@pytest.mark.parametrize("resolution", ["native", "resize"])
def test_conversion_matches_the_serving_function_at_any_size(resolution, tmp_path, ort):
    """An untrained model (random weights, so every logit matters): preprocessing, padding
    and resizes in onnxruntime against the TF serving function, images smaller and larger
    than the training size, odd sizes, batches; for native runs tiles too."""
    config = model_preset("tiny", depth=3, base_filters=8, num_classes=4, output_stride=2)
    model = build_unet(config)
    info = RunInfo(config, CLASS_NAMES, (64, 64), {**PREPROCESSING, "resolution": resolution})
    content = convert_onnx(model, info)
    session = ort.InferenceSession(content, providers=["CPUExecutionProvider"])
    serve = serving_function(model, None if info.native else (64, 64), 3, 8)
    rng = np.random.default_rng(0)
    for shape in [(1, 45, 70, 3), (2, 150, 97, 3), (1, 5, 3, 3), (1, 64, 64, 3)]:
        images = rng.integers(0, 256, shape, dtype=np.uint8)
        mask, probabilities = session.run(["mask", "probabilities"], {"images": images})
        expected = serve(tf.constant(images))
        assert mask.shape == shape[:3], (shape, mask.shape)
        assert np.allclose(probabilities, expected["probabilities"].numpy(), atol=1e-4), shape
        assert agreement(mask, expected["mask"].numpy()) >= 0.999, shape

    (tmp_path / ONNX_FILE).write_bytes(content)
    info.save(tmp_path)
    predictor = Predictor.from_path(tmp_path / ONNX_FILE)
    image = rng.integers(0, 256, (100, 90, 3), dtype=np.uint8)
    if info.native:  # tiles at the pixel size are the file's own function
        keras_tiles = KerasPredictor.from_model(model, info).predict(image, tile=48, overlap=16)
        assert agreement(predictor.predict(image, tile=48, overlap=16), keras_tiles) >= 0.999
    else:
        with pytest.raises(ValueError, match="training size 64x64"):
            predictor.predict(image, tile=48, overlap=16)


def test_an_op_outside_onnx_fails_the_export(onnx):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ScaleAndTranslate", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    content = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(ExportError, match=r"outside standard ONNX opset 18: \['ScaleAndTr"):
        check_onnx_ops(content.SerializeToString())


def test_a_missing_onnxruntime_names_the_install_command(onnx_export, tmp_path, monkeypatch,
                                                        capsys):
    run, out, _ = onnx_export
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    with pytest.raises(ImportError, match=r'pip install "unet-tf\[onnx\]"'):
        Predictor.from_path(out / ONNX_FILE)
    code = main(["-q", "predict", "--model", str(out / ONNX_FILE),
                 *map(str, scene_files(tmp_path / "in", 1)), "--out", str(tmp_path / "o")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1, error
    assert 'onnxruntime, which is not installed: pip install "unet-tf[onnx]"' in error
    # the export refuses before converting anything, and writes nothing
    with pytest.raises(ExportError, match="onnxruntime") as info:
        export(run, tmp_path / "never", ExportConfig(formats=("savedmodel", "onnx")))
    assert 'pip install "unet-tf[onnx]"' in str(info.value)
    assert not (tmp_path / "never").exists()
