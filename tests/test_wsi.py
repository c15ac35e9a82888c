"""Images larger than memory (unet_tf.wsi): lazy readers, blocks equal to in-memory tiling,
objects stitched across block borders, resume, Dask, OME-Zarr output, clear errors.

The quick tests use a hand-set "instance model" (a 1x1 convolution: red = interior, green =
boundary), so their results are known; the slow ones the shipped ``nuclei`` model on a mosaic
of DSB 2018 images.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from conftest import data_dir
from unet_tf import DataConfig, RunInfo, model_preset
from unet_tf.data import PREPROCESSING
from unet_tf.instances import object_separator
from unet_tf.instances.metrics import overlaps
from unet_tf.predictors import Predictor
from unet_tf.wsi import open_image, segment_large
from unet_tf.wsi import runner as runner_module

CLASSES = ("background", "interior", "boundary")


def save_instance_run(run: Path) -> Path:
    """A run folder whose model reads objects off the colours: red interior, green rim."""
    import keras

    run.mkdir(parents=True)
    inputs = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(3, 1, name="head_logits")
    outputs = conv(inputs)
    # logits: background 2 - 8 (r + g), interior 12 r - 2, boundary 12 g - 2 (inputs in [0, 1])
    conv.set_weights([np.array([[[[-8, 12, 0], [-8, 0, 12], [0, 0, 0]]]], np.float32),
                      np.array([2, -2, -2], np.float32)])
    keras.Model(inputs, outputs).save(run / "model.keras")
    RunInfo(model_preset("tiny", num_classes=3), CLASSES, (32, 32),
            {**PREPROCESSING, "resolution": "native"},
            {"data": {**DataConfig(image_size=(32, 32)).to_dict(), "spec": "instances:cells"}}
            ).save(run)
    return run


def disc_image(shape, discs) -> np.ndarray:
    """uint8 RGB: each (cy, cx, r) disc red inside, with a 2-px green rim."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    image = np.zeros((*shape, 3), np.uint8)
    for cy, cx, r in discs:
        d = np.hypot(yy - cy, xx - cx)
        image[d < r - 2, 0] = 255
        image[(d >= r - 2) & (d < r), 1] = 255
    return image


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    base = tmp_path_factory.mktemp("wsi")
    run = save_instance_run(base / "run")
    rng = np.random.default_rng(0)
    discs = [(150, 150, 40)]  # centred on the corner that four 150-px blocks share
    discs += [(int(y), int(x), int(r)) for y, x, r in zip(
        rng.integers(20, 380, 14), rng.integers(20, 480, 14), rng.integers(8, 16, 14),
        strict=True) if np.hypot(y - 150, x - 150) > 70]
    image = disc_image((400, 500), discs)
    path = base / "slide.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tif:  # tiled, with a pyramid
        tif.write(image, tile=(128, 128), subifds=1, photometric="rgb")
        tif.write(image[::2, ::2], tile=(128, 128), subfiletype=1, photometric="rgb")
    return base, run, image, path


def run_job(case, name, **options):
    base, run, _, path = case
    options = {"block": 150, "halo": 48, "tile": 128, "overlap": 32, "progress": False,
               **options}
    out = base / f"{name}.ome.zarr"
    return out, segment_large(str(run), str(path), str(out), **options)


def level0(out: Path, labels: str) -> np.ndarray:
    group = zarr.open_group(str(out), mode="r")[f"labels/{labels}"]
    return np.asarray(group[group.attrs["ome"]["multiscales"][0]["datasets"][0]["path"]])


def f1_at_half(true: np.ndarray, pred: np.ndarray) -> float:
    _, iou = overlaps(true, pred)
    tp = np.count_nonzero(iou > 0.5)
    return 2 * tp / max(iou.shape[0] + iou.shape[1], 1)


def test_readers_open_pyramidal_tiff_and_zarr_lazily(case, tmp_path):
    base, _, image, path = case
    full, half = open_image(path), open_image(path, level=1)
    assert full.shape == (400, 500) and half.shape == (200, 250) and full.levels == 2
    assert np.array_equal(full.read(slice(10, 50), slice(300, 420)), image[10:50, 300:420])
    gray = tmp_path / "gray.zarr"
    zarr.create_array(gray, shape=(64, 80), chunks=(32, 32), dtype="uint16")[:] = 512
    region = open_image(gray).read(slice(0, 4), slice(0, 4))
    assert region.shape == (4, 4, 3) and int(region.max()) == 2  # 16 bits >> 8, as as_rgb


def test_blocks_equal_the_in_memory_tiled_prediction(case):
    _, run, image, _ = case
    out, summary = run_job(case, "classes")
    predictor = Predictor.from_path(run)
    mask = predictor.predict(image, tile=128, overlap=32)
    assert summary["blocks"] == 12
    assert np.array_equal(level0(out, "classes"), mask)


def test_an_object_across_four_blocks_is_one_object(case):
    _, run, image, _ = case
    out, summary = run_job(case, "instances", instances=True)
    labels = level0(out, "instances")
    corner = labels[110:190, 110:190]  # the disc centred where four blocks meet
    ids = set(np.unique(labels[[130, 130, 170, 170], [130, 170, 130, 170]]).tolist())
    assert len(ids) == 1 and 0 not in ids and np.count_nonzero(corner == ids.pop()) > 4000
    predictor = Predictor.from_path(run)
    _, probs = predictor.predict(image, return_probabilities=True, tile=128, overlap=32)
    whole = object_separator(predictor.config, run)(probs)
    assert summary["objects"] == int(whole.max())
    assert f1_at_half(whole, labels) == 1.0
    table = (out.parent / "instances_objects.csv").read_text().splitlines()
    assert table[0].startswith("id,area,centroid_y") and len(table) == summary["objects"] + 1


def test_a_killed_job_resumes_and_writes_the_same_result(case, monkeypatch):
    reference, _ = run_job(case, "whole", instances=True)
    calls = []
    real = runner_module.run_block

    def dies_after_five(*args):
        if len(calls) == 5:
            raise KeyboardInterrupt  # as a kill would, between blocks
        calls.append(args[1])
        return real(*args)

    monkeypatch.setattr(runner_module, "run_block", dies_after_five)
    with pytest.raises(KeyboardInterrupt):
        run_job(case, "killed", instances=True)
    monkeypatch.setattr(runner_module, "run_block", real)
    out = case[0] / "killed.ome.zarr"
    assert len(list((out / ".work" / "done").iterdir())) == 5
    _, summary = run_job(case, "killed", instances=True)
    assert summary["resumed"] and not (out / ".work").exists()
    assert np.array_equal(level0(out, "instances"), level0(reference, "instances"))


def test_the_output_reads_back_with_ome_zarr_py(case):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    out, _ = run_job(case, "probs", probabilities=True)
    nodes = list(Reader(parse_url(str(out)))())
    image = nodes[0]
    assert [a["name"] for a in image.metadata["axes"]] == ["c", "y", "x"]
    assert image.data[0].shape == (3, 400, 500) and image.data[1].shape == (3, 200, 250)
    probs = np.asarray(image.data[0][:, 150, 150])
    assert probs.dtype == np.uint8 and probs[1] > 200  # the disc's interior
    labels = [n for n in nodes if any(isinstance(s, Label) for s in n.specs)]
    assert len(labels) == 1 and labels[0].metadata["name"] == "classes"
    assert {k: v["class"] for k, v in labels[0].metadata["properties"].items()} == dict(
        enumerate(CLASSES))
    scales = [t[0]["scale"] for t in labels[0].metadata["coordinateTransformations"]]
    assert scales == [[1.0, 1.0], [2.0, 2.0]]
    assert labels[0].data[0].shape == (400, 500) and labels[0].data[0].dtype == np.uint8


def test_bad_inputs_name_the_file(case, tmp_path):
    base, run, _, path = case
    not_tiff = tmp_path / "notes.tif"
    not_tiff.write_text("not an image")
    with pytest.raises(ValueError, match="notes.tif: not a readable TIFF"):
        open_image(not_tiff)
    with pytest.raises(ValueError, match=r"slide.ome.tif has 2 pyramid level\(s\)"):
        open_image(path, level=3)
    existing = tmp_path / "done.ome.zarr"
    existing.mkdir()
    with pytest.raises(FileExistsError, match="done.ome.zarr exists; pass --overwrite"):
        segment_large(str(run), str(path), str(existing), progress=False)
    with pytest.raises(ValueError, match="end the path with .ome.zarr"):
        segment_large(str(run), str(path), str(tmp_path / "out.png"), progress=False)
    with pytest.raises(ValueError, match="halo must be at least 0 and less than the block"):
        segment_large(str(run), str(path), str(tmp_path / "h.ome.zarr"), block=64, halo=64,
                      progress=False)


def test_the_cli_writes_ome_zarr_and_names_what_it_refuses(case, capsys):
    from unet_tf.cli import main

    base, run, _, path = case
    out = base / "cli.ome.zarr"
    argv = ["-q", "instances", "--model", str(run), str(path), "--out", str(out), "--block",
            "150", "--halo", "48", "--tile", "128"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "12 blocks" in printed and "objects -> " in printed and "cli_objects.csv" in printed
    assert level0(out, "instances").max() > 10
    assert main(argv) == 2
    assert f"{out} exists; pass --overwrite" in capsys.readouterr().err
    assert main([*argv[:6], str(base / "two.ome.zarr"), *argv[7:], "--level", "2"]) == 2
    assert "has 2 pyramid level(s) (0 to 1); got --level 2" in capsys.readouterr().err


@pytest.mark.slow
def test_an_unreachable_scheduler_is_named_within_30_s(case, tmp_path):
    base, run, _, path = case
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match=r"tcp://127.0.0.1:9.*dask scheduler"):
        segment_large(str(run), str(path), str(tmp_path / "x.ome.zarr"),
                      scheduler="tcp://127.0.0.1:9", progress=False)
    assert time.perf_counter() - start < 30


@pytest.mark.slow
def test_two_dask_workers_give_the_labels_of_one_process(case):
    one, _ = run_job(case, "one", instances=True)
    two, summary = run_job(case, "two", instances=True, workers=2)
    assert summary["blocks"] == 12
    assert np.array_equal(level0(one, "instances"), level0(two, "instances"))


@pytest.mark.slow
def test_streaming_the_shipped_nuclei_model_matches_in_memory(tmp_path):
    from PIL import Image


    images = sorted((data_dir("dsb2018_nuclei") / "images").glob("*.png"))[:4]
    parts = [np.asarray(Image.open(p).convert("RGB").resize((256, 256))) for p in images]
    mosaic = np.concatenate([np.concatenate(parts[r * 2:r * 2 + 2], 1) for r in (0, 1)], 0)
    path = tmp_path / "mosaic.tif"
    tifffile.imwrite(path, mosaic, tile=(128, 128), photometric="rgb")
    predictor = Predictor.from_path("nuclei")
    mask, probs = predictor.predict(mosaic, return_probabilities=True, tile=256, overlap=32)
    whole = object_separator(predictor.config, predictor.path)(probs)
    out = tmp_path / "mosaic.ome.zarr"
    summary = segment_large("nuclei", str(path), str(out), instances=True, block=320,
                            halo=64, tile=256, overlap=32, progress=False)
    labels = level0(out, "instances")
    assert summary["objects"] > 30
    assert f1_at_half(whole, labels) >= 0.99, json.dumps(summary)
    assert np.array_equal(np.asarray(zarr.open_group(str(out), mode="r")["s0"]), mask)
