"""Bad input found by review: each gets one clear error line (exit 2) or sensible behaviour.

Tracebacks and misleading messages that ``unet-tf`` users met: a tile larger than the image
(27.9 GiB allocated), a port above 65535 (OverflowError), a misspelt tfds name (450 lines),
a truncated model.keras ("File not found"), ``blur --keep 0`` (an index offered, then
refused) and ``evaluate --out FILE`` (a bare errno). Everything uses an untrained tiny model
on 32-48 px images.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from unet_tf import DataConfig, RunInfo, build_unet, model_preset
from unet_tf.cli import main
from unet_tf.data import PREPROCESSING
from unet_tf.tiling import clamp_tile, predict_tiled

CLASSES = ("background", "disc", "square", "triangle")


def save_run(run: Path, classes=CLASSES, native=False) -> Path:
    """An untrained tiny model saved as a run folder (model.keras + config.json)."""
    run.mkdir(parents=True)
    config = model_preset("tiny", num_classes=len(classes))
    build_unet(config).save(run / "model.keras")
    preprocessing = {**PREPROCESSING, "resolution": "native"} if native else dict(PREPROCESSING)
    RunInfo(config, classes, (32, 32), preprocessing,
            {"data": DataConfig(num_examples=2, batch_size=2, image_size=(32, 32)).to_dict()}
            ).save(run)
    return run


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> SimpleNamespace:
    base = tmp_path_factory.mktemp("messages")
    run = save_run(base / "run")
    image = base / "rgb.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), np.uint8)).save(image)
    truncated = base / "truncated"
    truncated.mkdir()
    shutil.copy(run / "config.json", truncated / "config.json")
    data = (run / "model.keras").read_bytes()
    (truncated / "model.keras").write_bytes(data[: len(data) // 2])
    a_file = base / "a_file.txt"
    a_file.write_text("x")
    web = base / "export" / "web"
    web.mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html>")
    return SimpleNamespace(base=base, run=run, image=image, truncated=truncated,
                           a_file=a_file, export=web.parent)


def run_cli(argv) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``unet-tf ARGV`` run in this process."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse: usage line, one error line, exit 2
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def one_error(argv, *words, lines: int | None = None) -> str:
    """Run ``argv``; assert exit 2, one ``error:`` line holding ``words``, no traceback.

    ``lines``: the most lines stderr may hold (argparse adds its usage lines).
    """
    code, out, err = run_cli(argv)
    assert "Traceback" not in out + err
    assert lines is None or len(err.splitlines()) <= lines, err[:2000]
    assert code == 2, err[-2000:]
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


# --- 1. a tile larger than the image is clamped to it ----------------------------------------

def pointwise(tiles: np.ndarray) -> np.ndarray:
    """A segmenter whose answer at a pixel depends on that pixel only."""
    p = tiles[..., :1].astype("float32") / 255
    return np.concatenate([1 - p, p], axis=-1)


def test_clamp_tile_covers_the_padded_image_in_one_tile():
    assert clamp_tile(100000, 40, 16, multiple=4) == 72  # 40 + 2 * 16
    assert clamp_tile(100000, 41, 16, multiple=8) == 80  # rounded up to the pooling grid
    assert clamp_tile(64, 300, 16, multiple=4) == 64  # smaller than the image: unchanged


def test_a_huge_tile_on_a_thin_image_makes_small_tiles_and_the_same_mask():
    image = np.zeros((20, 300, 3), np.uint8)
    image[:, 150:] = 255
    image[5:9, 40:44] = 255
    shapes = []

    def segment(tiles):
        shapes.extend([tiles.shape[1:3]] * len(tiles))
        return pointwise(tiles)

    mask, probs = predict_tiled(segment, image, tile=100000, overlap=32, num_classes=2,
                                return_probabilities=True, multiple=16)
    assert shapes == [(64, 336)]  # one tile: 20 + 32 and 300 + 32 rounded up to 16
    expected = (image[..., 0] > 127).astype(np.uint8)
    assert np.array_equal(mask, expected)
    assert np.allclose(probs, pointwise(image[None])[0], atol=1e-6)
    shapes.clear()
    # a tile larger than the image's height only: one row of 64 x 128 tiles, blended
    mask, _ = predict_tiled(segment, image, tile=128, overlap=32, num_classes=2, multiple=16)
    assert set(shapes) == {(64, 128)} and len(shapes) == 4
    assert np.array_equal(mask, expected)


@pytest.mark.slow
def test_a_tile_larger_than_the_image_gives_the_mask_of_a_tile_of_its_size():
    from unet_tf.predictors.keras_model import KerasPredictor

    config = model_preset("tiny", num_classes=4)
    info = RunInfo(config, CLASSES, (32, 32), {**PREPROCESSING, "resolution": "native"}, {})
    predictor = KerasPredictor.from_model(build_unet(config), info)
    image = np.random.default_rng(2).integers(0, 255, (40, 40, 3), np.uint8)
    huge = predictor.predict(image, tile=100000, overlap=32)
    assert huge.shape == (40, 40)
    assert np.array_equal(huge, predictor.predict(image, tile=72, overlap=32))  # 40 + 2 * 16
    # no overlap, no margin: one tile of the image padded to the grid, as without tiles
    assert np.array_equal(predictor.predict(image, tile=100000, overlap=0),
                          predictor.predict(image))


@pytest.mark.slow
def test_predict_and_evaluate_with_a_tile_larger_than_the_image(ctx):
    code, out, err = run_cli(["predict", "--model", ctx.run, ctx.image, "--out",
                              ctx.base / "predicted", "--tile", "100000"])
    assert code == 0 and "Traceback" not in err, err[-2000:]
    with Image.open(ctx.base / "predicted" / "rgb_mask.png") as mask:
        assert mask.size == (48, 40)
    code, out, err = run_cli(["evaluate", "--model", ctx.run, "--tile", "100000"])
    assert code == 0, err[-2000:]
    assert "tiles of 100000 px" in out


@pytest.mark.slow
def test_instances_with_a_tile_larger_than_the_image(ctx):
    run = save_run(ctx.base / "two_classes", classes=("background", "foreground"))
    code, out, err = run_cli(["instances", "--model", run, ctx.image, "--out",
                              ctx.base / "objects", "--tile", "100000"])
    assert code == 0 and "Traceback" not in err, err[-2000:]
    assert (ctx.base / "objects" / "rgb_instances.png").exists()


# --- 2. ports --------------------------------------------------------------------------------

@pytest.mark.parametrize(("port", "words"), [("70000", ["0..65535", "try 8000"]),
                                             ("65536", ["0..65535"]), ("-1", ["0..65535"]),
                                             ("http", ["port number"])])
def test_serve_web_refuses_a_port_outside_0_to_65535(ctx, port, words):
    one_error(["serve-web", ctx.export, "--port", port], "--port", port, *words)


def test_serve_web_accepts_port_0_for_any_free_port():
    from unet_tf.cli import build_parser

    assert build_parser().parse_args(["serve-web", "x", "--port", "0"]).port == 0
    assert build_parser().parse_args(["serve-web", "x", "--port", "65535"]).port == 65535


def test_the_library_checks_the_port_and_says_when_it_is_taken(ctx):
    from unet_tf.web import make_server, serve

    with pytest.raises(ValueError, match=r"0\.\.65535.*got 70000"):
        serve(ctx.export, port=70000)
    with pytest.raises(ValueError, match="got -1"):
        make_server(ctx.export, port=-1)
    server = make_server(ctx.export, port=0)  # 0: any free port
    try:
        taken = server.server_address[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{taken}.*--port"):
            make_server(ctx.export, port=taken)
    finally:
        server.server_close()


# --- 3. a misspelt tfds name -----------------------------------------------------------------

@pytest.mark.slow  # importing tensorflow_datasets takes seconds
def test_a_misspelt_tfds_name_gets_the_closest_names_in_one_line(ctx):
    pytest.importorskip("tensorflow_datasets")
    message = one_error(["evaluate", "--model", ctx.run, "--data", "tfds:oxford_iiit_pett"],
                        "no tfds dataset named 'oxford_iiit_pett'", "closest: oxford_iiit_pet",
                        lines=1)  # not the 450 names of every dataset
    assert "network" not in message


@pytest.mark.slow
def test_tfds_names_with_config_version_or_camel_case_pass_the_check():
    pytest.importorskip("tensorflow_datasets")
    from unet_tf.data.files import DataError
    from unet_tf.data.tfds import check_dataset_name

    for name in ("oxford_iiit_pet", "oxford_iiit_pet:4.0.0", "OxfordIiitPet",
                 "cityscapes/semantic_segmentation"):
        check_dataset_name(name)
    with pytest.raises(DataError, match="no tfds dataset named 'zzzqqqxxx'; tfds.list_builders"):
        check_dataset_name("zzzqqqxxx")


# --- 4. a truncated model.keras --------------------------------------------------------------

def test_a_truncated_model_keras_is_not_called_missing(ctx):
    from unet_tf import load_run

    words = ("model.keras", "exists", "Keras cannot load", "truncated or corrupt")
    for argv in (["evaluate", "--model", ctx.truncated],
                 ["evaluate", "--model", ctx.truncated / "model.keras"],
                 ["predict", "--model", ctx.truncated, ctx.image, "--out", ctx.base / "o"]):
        assert "not found" not in one_error(argv, *words).lower()
    with pytest.raises(ValueError, match="exists .* but Keras cannot load it"):
        load_run(ctx.truncated)


# --- 5. blur --keep takes class names --------------------------------------------------------

def test_blur_keep_an_index_says_which_name_to_pass(ctx):
    one_error(["blur", "--model", ctx.run, "--keep", "0", ctx.image, "--out", ctx.base / "b"],
              "keep='0'", "class names", "class 0 is 'background'", "--keep background",
              "'disc'", "'triangle'")


def test_keep_messages_match_what_is_accepted():
    from unet_tf.apps import keep_indices

    pets = ("pet", "background", "border")
    assert keep_indices([1, "PET"], pets) == [0, 1]  # Python ints are indices
    with pytest.raises(ValueError, match=r"keep='dog' .*e\.g\. --keep pet"):
        keep_indices(["dog"], pets)
    with pytest.raises(ValueError, match=r"keep=7 is not a class index .* 0\.\.2"):
        keep_indices([7], pets)
    with pytest.raises(ValueError, match="keep is empty.*--keep pet"):
        keep_indices([], pets)


# --- 6. evaluate --out -----------------------------------------------------------------------

def test_evaluate_out_a_file_is_refused_before_evaluating(ctx):
    one_error(["evaluate", "--model", ctx.run, "--out", ctx.a_file],
              "--out", "a_file.txt", "is a file", "pass a folder")
    one_error(["evaluate", "--model", ctx.run, "--out", ctx.a_file / "report"],
              "is inside", "a_file.txt, a file", "pass a folder")
