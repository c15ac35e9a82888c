"""The bioimage.io package of a run, checked by bioimage.io's own tools (bioimageio.core).

Needs the ``bioimageio`` extra (``pip install "unet-tf[bioimageio]"``); without it the tests
that write a package are skipped and only the install hint is checked. Nothing here may use
the network: downloads would be refused by the proxy the ``offline`` fixture sets.
"""

from __future__ import annotations

import shutil
import sys
import time

import numpy as np
import pytest
from _models import IMAGE_SIZE, scenes, trained_export

from unet_tf.deploy.bioimageio import (
    INPUT_ID,
    OUTPUT_ID,
    WEIGHTS_FORMAT,
    write_bioimageio,
)

pytestmark = pytest.mark.slow

# a closed port: any download bioimageio attempts fails at once instead of waiting for a
# network that CI machines may not have
DEAD_PROXY = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """No network, bioimage.io's cache in a temporary folder, TensorFlow as Keras backend."""
    pytest.importorskip("bioimageio.core", reason='needs pip install "unet-tf[bioimageio]"')
    with pytest.MonkeyPatch.context() as mp:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            mp.setenv(name, DEAD_PROXY)
        mp.setenv("NO_PROXY", "")
        mp.setenv("no_proxy", "")
        from bioimageio.spec import settings

        mp.setattr(settings, "cache_path", tmp_path_factory.mktemp("bioimageio_cache"))
        # bioimageio.core reads it for Keras weights (default "torch") and writes it back
        mp.setenv("KERAS_BACKEND", "tensorflow")
        # its TensorFlow adapter unzips the weights into the working directory
        mp.chdir(tmp_path_factory.mktemp("bioimageio_cwd"))
        yield


@pytest.fixture(scope="module")
def package(tmp_path_factory, offline):
    """(run directory, package folder, package zip) of the shared tiny model."""
    run, _, _ = trained_export(tmp_path_factory)
    out = tmp_path_factory.mktemp("bioimageio") / "synthetic"
    zip_path = out.with_suffix(".zip")
    rdf = write_bioimageio(run, out, zip_path=zip_path, authors=["unet_tf tests"])
    assert rdf == out / "rdf.yaml"
    return run, out, zip_path


def read_rdf(folder):
    import ruyaml

    return ruyaml.YAML(typ="safe", pure=True).load((folder / "rdf.yaml").read_text())


def test_bioimageio_core_model_test_passes(package):
    from bioimageio.core import test_model

    _, out, zip_path = package
    for source in (zip_path,):  # the folder is the zip's content (the export test runs it)
        start = time.time()
        summary = test_model(source)
        seconds = time.time() - start
        failed = [f"{d.name}: {[e.msg for e in d.errors]}" for d in summary.details
                  if d.status == "failed"]
        assert summary.status == "passed", f"{source}: {failed}"
        names = " ".join(d.name for d in summary.details)
        # the weights really ran: test tensors reproduced, and other sizes and batch sizes
        assert f"Reproduce test outputs from test inputs ({WEIGHTS_FORMAT})" in names
        assert "size parameter n: 2" in names, names
        print(f"bioimageio.core test_model({source.name}): {seconds:.1f} s")


def test_test_output_is_softmax_of_the_keras_logits(package):
    import keras
    import tensorflow as tf

    from unet_tf.checkpoint import RunInfo

    run, out, _ = package
    info = RunInfo.load(run)
    pixels = np.load(out / "test_input.npy")
    expected_probabilities = np.load(out / "test_output.npy")
    # a "resize" run: the test image is at the training size, pixel values 0..255
    assert pixels.shape == (1, *IMAGE_SIZE, 3) and pixels.dtype == np.float32
    assert not info.native and pixels.shape[1] % info.model.size_multiple == 0
    assert 1.0 < pixels.max() <= 255.0
    assert expected_probabilities.shape == (1, *IMAGE_SIZE, len(info.class_names))

    model = keras.saving.load_model(run / "model.keras", compile=False)
    x = pixels * info.preprocessing["scale"] + info.preprocessing["offset"]
    probabilities = tf.nn.softmax(model(x.astype(np.float32), training=False), axis=-1)
    np.testing.assert_allclose(expected_probabilities, probabilities.numpy(), atol=1e-4,
                               rtol=0)


def test_rdf_names_weights_licence_tensors_and_files(package):
    run, out, _ = package
    rdf = read_rdf(out)
    assert rdf["format_version"].startswith("0.5") and rdf["type"] == "model"
    assert list(rdf["weights"]) == [WEIGHTS_FORMAT]
    assert rdf["license"] == "CC-BY-4.0"
    (image,), (probabilities,) = rdf["inputs"], rdf["outputs"]
    assert image["id"] == INPUT_ID and probabilities["id"] == OUTPUT_ID
    assert [a.get("id", a["type"]) for a in image["axes"]] == ["batch", "y", "x", "channel"]
    assert [a.get("id", a["type"]) for a in probabilities["axes"]] == [
        "batch", "y", "x", "channel"]
    assert image["axes"][1]["size"] == {"min": 8, "step": 8}  # 2**depth of the tiny U-Net
    assert probabilities["axes"][3]["channel_names"] == [
        "background", "disc", "square", "triangle"]
    scale = [p for p in image["preprocessing"] if p["id"] == "scale_linear"]
    assert scale and scale[0]["kwargs"]["gain"] == pytest.approx(1 / 255)
    for entry in (rdf["weights"][WEIGHTS_FORMAT], rdf["documentation"], *rdf["covers"],
                  image["test_tensor"], probabilities["test_tensor"]):
        assert (out / entry["source"]).is_file(), entry
    assert "## Validation" in (out / rdf["documentation"]["source"]).read_text()
    assert not (run / "README.md").exists()  # the card was written from config.json


def test_run_readme_and_licence_are_used(package, tmp_path):
    run, _, _ = package
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    card = "# Shapes\n\nA model card written by hand.\n\n## Validation\n\nNone yet.\n"
    (copy / "README.md").write_text(card)
    out = write_bioimageio(copy, tmp_path / "package", license="MIT", name="shapes model",
                           test_image=scenes(1, size=96)[0])
    rdf = read_rdf(out.parent)
    assert rdf["license"] == "MIT" and rdf["name"] == "shapes model"
    assert (out.parent / rdf["documentation"]["source"]).read_text() == card
    # any test image is resized to the training size of a "resize" run
    assert np.load(out.parent / "test_input.npy").shape == (1, *IMAGE_SIZE, 3)


def test_bad_arguments_are_refused_before_any_work(package, tmp_path):
    run, out, _ = package
    with pytest.raises(ValueError, match="'no-such-licence' is not a current SPDX"):
        write_bioimageio(run, tmp_path / "a", license="no-such-licence")
    with pytest.raises(ValueError, match="only letters, digits"):
        write_bioimageio(run, tmp_path / "b", name="U-Net: pets/v2")
    with pytest.raises(ValueError, match="not an empty folder"):
        write_bioimageio(run, out)
    with pytest.raises(ValueError, match="test_image is blank"):  # bioimage.io refuses it
        write_bioimageio(run, tmp_path / "c", test_image=np.zeros((40, 50, 3), np.uint8))
    assert not any(tmp_path.iterdir())  # nothing left behind


def test_missing_bioimageio_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "bioimageio.spec", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "unet-tf\[bioimageio\]"'):
        write_bioimageio(tmp_path / "run", tmp_path / "out")


def test_export_writes_a_package_that_bioimageio_core_passes(offline, tmp_path_factory,
                                                            tmp_path, capsys):
    """`unet-tf export --formats bioimageio`: the package beside the other formats, its test
    tensors from the first parity image, a shipped model's SPDX licence."""
    import json

    from bioimageio.core import test_model

    from unet_tf.cli import main

    run, _, _ = trained_export(tmp_path_factory)
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    config["shipped"] = {"task": "shapes", "licence": "CC0", "spdx": "CC0-1.0"}
    (copy / "config.json").write_text(json.dumps(config))
    out = tmp_path / "export"
    assert main(["-q", "export", "--model", str(copy), "--out", str(out), "--formats",
                 "savedmodel,bioimageio", "--parity-images", "4"]) == 0
    assert "bioimageio.zip" in capsys.readouterr().out
    written = json.loads((out / "config.json").read_text())["export"]["bioimageio"]
    assert written == {"format": "bioimageio", "path": "bioimageio", "zip": "bioimageio.zip",
                       "spec": "0.5", "license": "CC0-1.0"}
    assert read_rdf(out / "bioimageio")["license"] == "CC0-1.0"
    summary = test_model(out / "bioimageio.zip")
    assert summary.status == "passed", [d.name for d in summary.details
                                        if d.status == "failed"]


def test_package_licence_follows_the_model_or_the_user(offline):
    """A shipped model's own SPDX id, one given explicitly, else CC-BY-4.0; a shipped model
    without a listed licence (membranes: research use) must be given one, before any work."""
    from unet_tf.checkpoint import RunInfo
    from unet_tf.config import ModelConfig
    from unet_tf.deploy.exporter import bioimageio_license

    def info(shipped=None):
        return RunInfo(ModelConfig(), ("a", "b"), (64, 64), {},
                       {"shipped": shipped} if shipped else {})

    research = {"licence": "research use", "spdx": "LicenseRef-research-use"}
    assert bioimageio_license(info(), None) == "CC-BY-4.0"
    assert bioimageio_license(info({"spdx": "CC-BY-NC-4.0"}), None) == "CC-BY-NC-4.0"
    assert bioimageio_license(info(research), "CC-BY-4.0") == "CC-BY-4.0"
    with pytest.raises(ValueError, match=r"no SPDX licence \(research use\).*--license"):
        bioimageio_license(info(research), None)
    with pytest.raises(ValueError, match="'nope' is not a current SPDX"):
        bioimageio_license(info({"spdx": "CC0-1.0"}), "nope")
