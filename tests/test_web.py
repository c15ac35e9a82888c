"""The browser page: LiteRT.js in headless Chromium gives the Python LiteRT interpreter's masks.

The browser tests (marked slow) take the path a pip user takes: no npm, LiteRT.js found or
downloaded by :func:`unet_tf.web.runtime_dir` into the per-user cache (once per machine). They
need Chromium (Debian: ``apt-get install chromium``; $CHROMIUM points at another binary) and
the ``playwright`` package (test extra; it drives the installed Chromium, no browser download),
and skip, saying why, when one of these is missing or the npm registry cannot be reached.
The runtime's own checks (integrity, unsafe paths, vendored tarballs) run on small fake
tarballs, with no network.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import json
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from _models import trained_export
from PIL import Image

from unet_tf.web import page as web_page
from unet_tf.web import runtime as web_runtime
from unet_tf.web import runtime_dir, write_web
from unet_tf.web.server import page_dir

REPO = Path(__file__).resolve().parents[1]
# The mask the page computes must match Python's on this share of pixels.
AGREEMENT = {"fp16": 0.99, "int8": 0.98}


def runtime_or_skip():
    """The real LiteRT.js runtime (downloaded into the user cache the first time), or skip."""
    try:
        return runtime_dir()
    except web_runtime.RuntimeUnavailableError as exc:
        pytest.skip(f"the npm registry cannot be reached to download LiteRT.js: {exc}")


def browser():
    """benchmarks/browser.py: the Playwright harness these tests share with web_bench."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module("benchmarks.browser")


def browser_or_skip() -> None:
    pytest.importorskip("playwright", reason="playwright is missing: pip install -e '.[test]'")
    if browser().find_chromium() is None:
        pytest.skip("no Chromium binary (apt-get install chromium, or set $CHROMIUM)")
    runtime_or_skip()


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    """The test session's tiny synthetic-data model, exported (fp32, fp16, int8 .tflite)."""
    browser_or_skip()
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


def assert_masks_agree(session, predictor, photos, quantize: str) -> None:
    for photo in photos:
        page_mask = session.segment(photo)
        python_mask = predictor.predict(np.asarray(Image.open(photo).convert("RGB")))
        assert page_mask.shape == python_mask.shape, photo.name
        agreement = float(np.mean(page_mask == python_mask))
        print(f"{quantize} {photo.name}: page and Python LiteRT agree on {agreement:.4%} of "
              "pixels")
        assert agreement >= AGREEMENT[quantize], (photo.name, agreement)


@pytest.mark.slow
@pytest.mark.parametrize("quantize, isolate", [("fp16", True), ("int8", False)])
def test_page_masks_match_python_litert(web, export_dir, photos, quantize, isolate, tmp_path):
    """fp16 runs on the threaded WASM (isolated page), int8 on the plain one (no headers)."""
    from unet_tf import Predictor

    name = web_page.MODELS[quantize]
    predictor = Predictor.from_path(export_dir / name)
    with browser().PageSession(web, isolate=isolate) as session:
        loaded = session.open(name)
        assert loaded["model"] == name and loaded["threaded"] is isolate
        assert_masks_agree(session, predictor, photos, quantize)
        session.show("blur")
        shot = session.screenshot(tmp_path / f"web_page_{quantize}.png")
        print(f"screenshot: {shot}")
        assert session.errors == []


@pytest.mark.slow
def test_a_shipped_model_page_needs_no_export_step(export_dir, photos, tmp_path, monkeypatch):
    """`unet-tf serve-web NAME`: a run folder holding its int8 .tflite (what saved_models/
    ships) gets its page written into the user cache; the page segments like Python."""
    import shutil

    from unet_tf import Predictor
    from unet_tf.web.shipped import page_for_run

    run = tmp_path / "shipped" / "scenes"
    shutil.copytree(export_dir.parent / "run", run)
    with pytest.raises(FileNotFoundError, match="export its page first"):
        page_for_run(run)
    shutil.copy(export_dir / "model_int8.tflite", run / "model_int8.tflite")
    runtime = runtime_or_skip()  # the user cache's, before the cache moves
    monkeypatch.setenv("UNET_TF_CACHE", str(tmp_path / "cache"))
    page = page_for_run(run, runtime=runtime)
    assert page == tmp_path / "cache" / "pages" / "scenes" / "web"
    predictor = Predictor.from_path(run / "model_int8.tflite")
    with browser().PageSession(page, isolate=False) as session:
        session.open("model_int8.tflite")
        assert_masks_agree(session, predictor, photos[:2], "int8")
        assert session.errors == []


@pytest.mark.slow
def test_page_runs_the_thread_count_it_reports(web, export_dir, photos):
    """?threads=1 and 2 give Python LiteRT's masks; without isolation the page says 1 thread.

    Latency (page against Python, 1 and 2 threads) is measured by benchmarks/web_bench.py.
    """
    from unet_tf import Predictor

    name = web_page.MODELS["int8"]
    predictor = Predictor.from_path(export_dir / name)
    with browser().PageSession(web, isolate=True) as session:
        for threads in (1, 2):
            loaded = session.open(name, threads=threads)
            assert loaded == {"model": name, "threads": threads, "isolated": True,
                              "threaded": True}
            assert f"{threads} thread" in session.page.text_content("#status")
            assert_masks_agree(session, predictor, photos[:2], "int8")
        assert session.errors == []
    with browser().PageSession(web, isolate=False) as session:  # the single-threaded WASM only
        loaded = session.open(name, threads=2)
        assert loaded["threads"] == 1 and loaded["threaded"] is False
        assert "1 thread" in session.page.text_content("#status")
        assert_masks_agree(session, predictor, photos[:1], "int8")


@pytest.mark.slow
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


# ------------------------------------------- The runtime, on fake npm tarballs (no network)

FAKE_VERSION = "0.0.0-test"


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fake_tarball(short: str, extra: dict[str, bytes] | None = None) -> bytes:
    """An npm-style tarball (files under package/) with the runtime files of one package."""
    files = {f"package/{src.split('/', 1)[1]}": f"// {src}\n".encode()
             for src in web_runtime.RUNTIME_FILES if src.split("/", 1)[0] == short}
    files["package/package.json"] = json.dumps(
        {"name": f"@litertjs/{short}", "version": FAKE_VERSION}).encode()
    files.update(extra or {})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.fixture
def fake_npm(tmp_path, monkeypatch):
    """(vendor folder with the two fake .tgz, their lock file, cache folder); no network.

    The lock, in place of unet_tf's package-lock.json, pins the tarballs' true hashes; tests
    edit it to break them. Any download fails the test unless it patches urlopen itself.
    """
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    tarballs = {short: fake_tarball(short) for short in ("core", "wasm-utils")}
    for short, data in tarballs.items():
        (vendor / f"{short}-{FAKE_VERSION}.tgz").write_bytes(data)
    lock = tmp_path / "package-lock.json"
    lock.write_text(json.dumps({"packages": {"": {"name": "fake"}, **{
        f"node_modules/@litertjs/{short}": {"version": FAKE_VERSION, "integrity": integrity(data)}
        for short, data in tarballs.items()}}}))
    cache = tmp_path / "cache"
    monkeypatch.setenv("UNET_TF_CACHE", str(cache))
    for name in ("npm_config_registry", "NPM_CONFIG_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(web_runtime, "NODE_MODULES", tmp_path / "no_npm_ci")
    monkeypatch.setattr(web_runtime, "LOCK_FILE", lock)

    def no_network(url, *args, **kwargs):
        raise AssertionError(f"unexpected download of {url}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return vendor, lock, cache


def set_integrity(lock, short: str, value: str) -> None:
    pinned = json.loads(lock.read_text())
    pinned["packages"][f"node_modules/@litertjs/{short}"]["integrity"] = value
    lock.write_text(json.dumps(pinned))


def serve_tarballs(monkeypatch, vendor, seen: list[str]) -> None:
    """Make urlopen answer registry URLs with the vendor folder's tarballs."""

    class Response(io.BytesIO):
        def __init__(self, data: bytes):
            super().__init__(data)
            self.headers = {"Content-Length": str(len(data))}

    def urlopen(url, *args, **kwargs):
        seen.append(url)
        return Response((vendor / url.rsplit("/", 1)[-1]).read_bytes())

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)


def test_runtime_uses_vendored_tarballs_without_network(fake_npm, tmp_path):
    vendor, lock, cache = fake_npm
    (vendor / f"core-{FAKE_VERSION}.tgz").rename(vendor / f"litertjs-core-{FAKE_VERSION}.tgz")
    root = runtime_dir(vendor)  # `npm pack` names work too
    assert root == cache / f"litertjs-{FAKE_VERSION}"
    for src in web_runtime.RUNTIME_FILES:
        assert (root / src).is_file(), src
    assert (root / "core/dist/index.js").read_text() == "// core/dist/index.js\n"
    assert runtime_dir() == root  # later calls find the cache
    assert runtime_dir(root) == root  # and the folder itself is a valid source
    assert sorted(p.name for p in cache.iterdir()) == [root.name]  # no temporary folders left


def test_runtime_refuses_a_tarball_with_the_wrong_hash(fake_npm, monkeypatch):
    vendor, lock, cache = fake_npm
    set_integrity(lock, "core", integrity(b"another file"))
    with pytest.raises(web_runtime.IntegrityError, match="core-0.0.0-test.tgz is not the file"):
        runtime_dir(vendor)
    assert not cache.exists() or not any(cache.iterdir())
    seen: list[str] = []
    serve_tarballs(monkeypatch, vendor, seen)
    with pytest.raises(web_runtime.IntegrityError, match="registry.npmjs.org/@litertjs/core"):
        runtime_dir()  # the same from the registry: nothing kept, nothing unpacked
    assert seen and not any(cache.iterdir())


def test_runtime_refuses_a_tarball_with_a_parent_path(fake_npm, tmp_path):
    vendor, lock, cache = fake_npm
    evil = fake_tarball("core", {"package/../../evil.js": b"alert(1)\n"})
    (vendor / f"core-{FAKE_VERSION}.tgz").write_bytes(evil)
    set_integrity(lock, "core", integrity(evil))  # even a pinned tarball is checked
    with pytest.raises(web_runtime.IntegrityError, match=r"unsafe path .*evil\.js"):
        runtime_dir(vendor)
    assert not any(cache.iterdir())
    assert not list(tmp_path.rglob("evil.js"))


def test_runtime_downloads_verifies_and_caches(fake_npm, monkeypatch):
    vendor, lock, cache = fake_npm
    monkeypatch.setenv("npm_config_registry", "https://npm.example.org/mirror/")
    seen: list[str] = []
    serve_tarballs(monkeypatch, vendor, seen)
    root = runtime_dir()
    assert seen == [f"https://npm.example.org/mirror/@litertjs/{s}/-/{s}-{FAKE_VERSION}.tgz"
                    for s in ("core", "wasm-utils")]
    assert root == cache / f"litertjs-{FAKE_VERSION}"
    assert sorted(p.name for p in cache.iterdir()) == [root.name]  # tarballs not kept
    assert runtime_dir() == root and len(seen) == 2  # downloaded once


def test_runtime_offline_error_says_how_to_vendor(fake_npm, monkeypatch):
    _, lock, cache = fake_npm

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(web_runtime.RuntimeUnavailableError,
                       match=r"could not download https://registry.npmjs.org/@litertjs/core/-/"
                       r"core-0.0.0-test.tgz .*--web-runtime FOLDER"):
        runtime_dir()
    assert not any(cache.iterdir())


def fake_export(folder, names):
    """An export folder as write_web reads it: config.json and (fake) .tflite files."""
    folder.mkdir()
    dtype = {"model_int8.tflite": "uint8"}
    (folder / "config.json").write_text(json.dumps({"class_names": ["background", "shape"],
                                                    "export": {"tflite": {
        name: {"input": {"dtype": dtype.get(name, "float32")}} for name in names}}}))
    for name in names:
        (folder / name).write_bytes(name.encode())
    return folder


def test_write_web_copies_the_page_model_and_runtime(fake_npm, tmp_path):
    vendor, lock, _ = fake_npm
    export = fake_export(tmp_path / "export", ("model_fp16.tflite", "model_int8.tflite"))
    runtime = runtime_dir(vendor)
    out = write_web(export, model="fp16", out=tmp_path / "site", runtime=runtime)
    config = json.loads((out / "config.json").read_text())
    assert config["web"] == {"model": "model_fp16.tflite", "models": ["model_fp16.tflite"],
                             "litertjs": FAKE_VERSION}
    copied, exported = out / "model_fp16.tflite", export / "model_fp16.tflite"
    assert copied.read_bytes() == exported.read_bytes()
    assert not (out / "model_int8.tflite").exists()
    for src, dst in web_runtime.RUNTIME_FILES.items():
        assert (out / dst).read_bytes() == (runtime / src).read_bytes(), dst
    for name in ("index.html", "app.js", "segment.js", "_headers"):
        assert (out / name).is_file(), name
    assert page_dir(out) == out
    write_web(export, model="int8", out=out, runtime=runtime)  # an earlier page is replaced
    assert not (out / "model_fp16.tflite").exists()


def test_write_web_errors_say_what_would_work(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        write_web(export)
    fake_export(tmp_path / "fp16_only", ("model_fp16.tflite",))
    with pytest.raises(ValueError, match=r"no model_int8.tflite .*\['model_fp16.tflite'\]"):
        write_web(tmp_path / "fp16_only", model="int8")
    with pytest.raises(FileNotFoundError, match=r"missing does not exist; pass a node_modules"):
        runtime_dir(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"neither @litertjs/core .* nor the npm "
                       r"tarballs core-2.5.3.tgz and wasm-utils-2.5.3.tgz"):
        runtime_dir(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="write_web"):
        page_dir(export)


def test_export_checks_the_web_runtime_before_converting(tmp_path, monkeypatch, capsys):
    """A missing runtime fails `unet-tf export --formats ...,web` at once, not after TFLite."""
    from unet_tf.cli import main
    from unet_tf.deploy import exporter

    def no_conversion(*args, **kwargs):
        raise AssertionError("the model was loaded before the web runtime was checked")

    monkeypatch.setattr(exporter, "load_run", no_conversion)
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    args = ["-q", "export", "--model", str(run), "--out", str(tmp_path / "e"),
            "--web-runtime", str(tmp_path / "empty")]
    assert main([*args, "--formats", "tflite-int8,web"]) == 2
    assert "nor the npm tarballs core-2.5.3.tgz" in capsys.readouterr().err
    assert main([*args, "--formats", "tflite-int8"]) == 2
    assert "is for the 'web' format" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()
