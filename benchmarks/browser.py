"""Drive the page in headless Chromium: masks and latency from the browser, for checks.

A harness, not part of the package: ``benchmarks/web_bench.py`` measures with it and
``tests/test_web.py`` checks the page's masks with it.

:class:`PageSession` serves a page folder, opens it in Chromium through Playwright (the
``playwright`` package of the ``test`` extra; it uses an installed Chromium, e.g. Debian's
``/usr/bin/chromium``, and downloads no browser) and reads back what the page computed.
:func:`litert_latency` times the same .tflite file with the Python LiteRT interpreter, so
the two can be compared in one run.

Examples:
    >>> with PageSession("pets-export/web") as session:  # doctest: +SKIP
    ...     session.open("model_int8.tflite")
    ...     mask = session.segment("cat.png")
    ...     print(session.benchmark(runs=20, threads=(1, 2)))
"""

from __future__ import annotations

import base64
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unet_tf.web.server import make_server

# Flags that let Chromium run headless as root in a container with no network or GPU.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)


def find_chromium() -> str | None:
    """The Chromium binary: $CHROMIUM, else ``chromium`` / ``chromium-browser`` on PATH."""
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser",
                      "/usr/bin/chromium"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def cpu_model() -> str:
    """The host CPU's model name and logical core count, e.g. 'AMD EPYC (2 cores)'."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"


class PageSession:
    """A page served locally and open in headless Chromium; use as a context manager.

    Args:
        directory: the page's folder (written by :func:`unet_tf.web.write_web`).
        isolate: serve with cross-origin isolation headers (threaded WebAssembly).
        chromium: the browser binary (default: :func:`find_chromium`).
        timeout_s: how long to wait for the model to load or a photo to be segmented.
    """

    def __init__(self, directory: str | Path, isolate: bool = True,
                 chromium: str | None = None, timeout_s: float = 60.0):
        self.directory = Path(directory)
        self.isolate = isolate
        self.chromium = chromium or find_chromium()
        if not self.chromium:
            raise FileNotFoundError(
                "no Chromium found; install it (Debian: apt-get install chromium) or set "
                "$CHROMIUM to the browser binary"
            )
        self.timeout_ms = timeout_s * 1000
        self.errors: list[str] = []  # uncaught page errors and console errors
        self.page = None

    def __enter__(self) -> PageSession:
        from playwright.sync_api import sync_playwright

        self._server = make_server(self.directory, port=0, isolate=self.isolate)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._profile = tempfile.mkdtemp(prefix="unet_tf_chromium_")
        try:
            self._playwright = sync_playwright().start()
            self._context = self._playwright.chromium.launch_persistent_context(
                self._profile, executable_path=self.chromium, args=list(CHROMIUM_FLAGS),
                headless=True, viewport={"width": 1100, "height": 900},
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for close in ("_context", "_playwright"):
            target = getattr(self, close, None)
            if target is not None:
                try:
                    target.close() if close == "_context" else target.stop()
                except Exception:  # the browser may already be gone
                    pass
        self._server.shutdown()
        self._server.server_close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def open(self, model: str | None = None, threads: int | None = None) -> dict[str, Any]:
        """Load the page (with ``?model=`` / ``?threads=``); return what it loaded.

        Raises:
            RuntimeError: the page failed to load the model (its error message included).
        """
        if self.page is not None:
            self.page.close()
        self.page = self._context.new_page()
        self.page.set_default_timeout(self.timeout_ms)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                     if m.type == "error" and "INFO:" not in m.text
                     and "WARNING:" not in m.text else None)
        query = "&".join(f"{k}={v}" for k, v in (("model", model), ("threads", threads)) if v)
        self.page.goto(self.url + (f"?{query}" if query else ""))
        try:
            return self.page.evaluate("window.unetReady")
        except Exception as exc:
            status = self.page.text_content("#status")
            raise RuntimeError(f"the page at {self.url} did not load: {status} ({exc})") from exc

    def segment(self, photo: str | Path) -> np.ndarray:
        """Give the page a photo through its file picker; its uint8 class mask [H, W]."""
        photo = Path(photo)
        self.page.evaluate("window.unetResult = null; window.unetError = null")
        self.page.set_input_files("#file", str(photo))
        self.page.wait_for_function(
            "name => window.unetError || (window.unetResult && window.unetResult.name === name)",
            arg=photo.name)
        if error := self.page.evaluate("window.unetError"):
            raise RuntimeError(f"the page failed on {photo}: {error}")
        size = self.page.evaluate("[unetResult.height, unetResult.width]")
        data = base64.b64decode(self.page.evaluate("unetMaskBase64()"))
        return np.frombuffer(data, np.uint8).reshape(size)

    def timings(self) -> dict[str, float]:
        """Milliseconds of the last photo's steps: preprocess, model, postprocess, total."""
        return self.page.evaluate("unetResult.timings")

    def benchmark(self, runs: int = 20, threads: Sequence[int] = (1, 2)) -> list[dict]:
        """Median model latency in the page (WASM) per thread count, on the last photo."""
        return self.page.evaluate(
            "opts => unetBenchmark(opts)", {"runs": runs, "threads": list(threads)})

    def show(self, view: str = "overlay", keep: str | None = None) -> None:
        """Switch the page's display: "overlay", "blur", "mask" or "photo"."""
        self.page.check(f"input[name=view][value={view}]")
        if keep is not None:
            self.page.select_option("#keep", label=keep)

    def screenshot(self, path: str | Path) -> Path:
        """Save a PNG of the whole page."""
        self.page.screenshot(path=str(path), full_page=True)
        return Path(path)


def litert_latency(tflite: str | Path, threads: Sequence[int] = (1, 2), runs: int = 20,
                   warmup: int = 10) -> dict[int, float]:
    """Median milliseconds per thread count of one Python LiteRT run of a .tflite file.

    A run is what the page times too: set the input, invoke, copy the output. Rounds
    alternate between the thread counts, as the page's benchmark does.

    Examples:
        >>> litert_latency("pets-export/model_int8.tflite", threads=(1, 2))  # doctest: +SKIP
        {1: 2.3, 2: 1.4}
    """
    from ai_edge_litert.interpreter import Interpreter

    runners = []
    for n in threads:
        interpreter = Interpreter(model_path=str(tflite), num_threads=n)
        interpreter.allocate_tensors()
        source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        pixels = np.full(source["shape"], 128).astype(source["dtype"])

        def run(interpreter=interpreter, source=source, target=target, pixels=pixels):
            interpreter.set_tensor(source["index"], pixels)
            interpreter.invoke()
            return interpreter.get_tensor(target["index"])

        for _ in range(warmup):
            run()
        runners.append(run)
    times: list[list[float]] = [[] for _ in threads]
    for _ in range(runs):
        for run, samples in zip(runners, times, strict=True):
            start = time.perf_counter()
            run()
            samples.append((time.perf_counter() - start) * 1000)
    return {n: statistics.median(t) for n, t in zip(threads, times, strict=True)}
