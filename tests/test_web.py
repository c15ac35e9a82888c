"""The browser page: LiteRT.js in headless Chromium gives the Python LiteRT interpreter's masks.

The browser tests need Chromium (Debian: ``apt-get install chromium``; $CHROMIUM points at
another binary), the ``playwright`` package (test extra; it drives the installed Chromium,
no browser download) and LiteRT.js (``npm ci`` in ``unet_tf/web``); .ci/run installs all
three and each missing piece skips the browser tests with the reason.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _models import trained_export
from PIL import Image

from unet_tf.web import page as web_page
from unet_tf.web import runtime_dir, write_web
from unet_tf.web.server import page_dir

# The mask the page computes must match Python's on this share of pixels.
AGREEMENT = {"fp16": 0.99, "int8": 0.98}


def runtime_or_skip() -> None:
    try:
        runtime_dir()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def browser_or_skip() -> None:
    from unet_tf.web.browser import find_chromium

    runtime_or_skip()
    pytest.importorskip("playwright", reason="playwright is missing: pip install -e '.[test]'")
    if find_chromium() is None:
        pytest.skip("no Chromium binary (apt-get install chromium, or set $CHROMIUM)")


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    """The test session's tiny synthetic-data model, exported (fp32, fp16, int8 .tflite)."""
    runtime_or_skip()
    return trained_export(tmp_path_factory)[1]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three PNG photos: one shrunk to the training size, one enlarged, one of odd size."""
    from unet_tf.data.synthetic import make_scene

    folder = tmp_path_factory.mktemp("web_photos")
    paths = []
    for seed, (height, width) in ((11, (300, 240)), (12, (40, 56)), (13, (131, 97))):
        image, _ = make_scene(seed, size=max(height, width))
        paths.append(folder / f"photo_{height}x{width}.png")
        Image.fromarray(image[:height, :width]).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def web(export_dir, tmp_path_factory):
    return write_web(export_dir, model=["int8", "fp16"], out=tmp_path_factory.mktemp("web"))


@pytest.mark.parametrize("quantize, isolate", [("fp16", True), ("int8", False)])
def test_page_masks_match_python_litert(web, export_dir, photos, quantize, isolate, tmp_path):
    """fp16 runs on the threaded WASM (isolated page), int8 on the plain one (no headers)."""
    browser_or_skip()
    from unet_tf import Predictor
    from unet_tf.web.browser import PageSession

    name = web_page.MODELS[quantize]
    predictor = Predictor.from_path(export_dir / name)
    with PageSession(web, isolate=isolate) as session:
        loaded = session.open(name)
        assert loaded["model"] == name and loaded["threaded"] is isolate
        for photo in photos:
            page_mask = session.segment(photo)
            python_mask = predictor.predict(np.asarray(Image.open(photo).convert("RGB")))
            assert page_mask.shape == python_mask.shape, photo.name
            agreement = float(np.mean(page_mask == python_mask))
            print(f"{quantize} {photo.name}: page and Python LiteRT agree on "
                  f"{agreement:.4%} of pixels ({session.timings()['model']:.1f} ms in the page)")
            assert agreement >= AGREEMENT[quantize], photo.name
        session.show("blur")
        shot = session.screenshot(tmp_path / f"web_page_{quantize}.png")
        print(f"screenshot: {shot}")
        assert session.errors == []


def test_page_latency_against_python_litert(web, export_dir, photos):
    """Median of 20 runs in the page (WASM, 1 and 2 threads) beside Python LiteRT's."""
    browser_or_skip()
    from unet_tf.web.browser import PageSession, cpu_model, litert_latency

    name = web_page.MODELS["int8"]
    with PageSession(web) as session:
        session.open(name)
        session.segment(photos[0])
        page = session.benchmark(runs=20, threads=(1, 2))
    python = litert_latency(export_dir / name, threads=(1, 2))
    print(f"\n{name} on {cpu_model()}, median of 20 runs:")
    for entry in page:
        n = entry["threads"]
        print(f"  {n} thread(s): page (LiteRT.js WASM) {entry['median_ms']:.2f} ms, "
              f"Python LiteRT {python[n]:.2f} ms")
        assert entry["median_ms"] > 0 and python[n] > 0


# ----------------------------------------------------------------------------- No browser


def test_segment_js_resizes_like_tensorflow(tmp_path):
    """The page's resize in (antialiased bilinear) and logits out (bilinear) match TF's."""
    import shutil
    import subprocess

    import tensorflow as tf

    node = shutil.which("node")
    if node is None:
        pytest.skip("no node binary (Node.js) to run unet_tf/web/static/segment.js")
    rng = np.random.default_rng(0)
    cases = []
    for height, width, size in ((300, 240, 64), (40, 56, 64), (131, 97, 48)):
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        logits = rng.normal(size=(size, size, 4)).astype(np.float32)
        pixels = tf.image.resize(image.astype(np.float32), (size, size), antialias=True)
        mask = tf.argmax(tf.image.resize(logits[None], (height, width)), -1)[0]
        rgba = np.concatenate([image, np.full((height, width, 1), 255, np.uint8)], -1)
        cases.append({"h": height, "w": width, "size": size, "rgba": rgba.ravel().tolist(),
                      "logits": logits.ravel().tolist(), "pixels": pixels.numpy().ravel().tolist(),
                      "mask": mask.numpy().ravel().tolist()})
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    script = tmp_path / "check.mjs"
    script.write_text(f"""
import {{ modelPixels, postprocess }} from "{(web_page.STATIC_DIR / 'segment.js').as_uri()}";
import fs from "fs";
for (const c of JSON.parse(fs.readFileSync("{tmp_path / 'cases.json'}"))) {{
  const px = modelPixels(Uint8Array.from(c.rgba), c.h, c.w, [c.size, c.size], 3);
  const err = Math.max(...px.map((v, i) => Math.abs(v - c.pixels[i])));
  const {{ mask }} = postprocess(Float32Array.from(c.logits), c.size, c.size, 4, c.h, c.w);
  const agree = mask.reduce((n, v, i) => n + (v === c.mask[i]), 0) / mask.length;
  console.log(JSON.stringify({{ err, agree }}));
}}
""")
    out = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for line in out.stdout.splitlines():
        result = json.loads(line)
        assert result["err"] < 1e-2 and result["agree"] == 1.0, result


def test_write_web_copies_the_page_model_and_runtime(export_dir, tmp_path):
    out = write_web(export_dir, model="fp16", out=tmp_path / "site")
    config = json.loads((out / "config.json").read_text())
    assert config["web"]["model"] == "model_fp16.tflite"
    copied, exported = out / "model_fp16.tflite", export_dir / "model_fp16.tflite"
    assert copied.read_bytes() == exported.read_bytes()
    assert not (out / "model_int8.tflite").exists()
    for name in ("index.html", "app.js", "segment.js", "litert/core/index.js",
                 "litert/wasm/litert_wasm_threaded_internal.wasm"):
        assert (out / name).is_file(), name
    assert page_dir(out) == out
    write_web(export_dir, model="int8", out=out)  # an earlier page is replaced
    assert not (out / "model_fp16.tflite").exists()


def test_write_web_errors_say_what_would_work(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        write_web(export)
    (export / "config.json").write_text(json.dumps({"export": {"tflite": {
        "model_fp16.tflite": {"input": {"dtype": "float32"}}}}}))
    (export / "model_fp16.tflite").write_bytes(b"")
    with pytest.raises(ValueError, match=r"no model_int8.tflite .*\['model_fp16.tflite'\]"):
        write_web(export, model="int8")
    with pytest.raises(FileNotFoundError, match="run `npm ci` in .*web"):
        runtime_dir(tmp_path / "node_modules")
    with pytest.raises(FileNotFoundError, match="write_web"):
        page_dir(export)
