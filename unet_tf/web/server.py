"""Serve the browser page with Python's http.server (see :mod:`unet_tf.web`).

Any static file server works; this one adds the cross-origin isolation headers (COOP/COEP)
that give the page SharedArrayBuffer, so LiteRT.js can run its threaded WebAssembly.
"""

from __future__ import annotations

import functools
import numbers
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from unet_tf.web.page import WEB_DIR

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class PageHandler(SimpleHTTPRequestHandler):
    """Static files with correct module / WebAssembly types, no caching, quiet logs."""

    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
        ".tflite": "application/octet-stream",
    }
    isolate = True

    def end_headers(self) -> None:
        if self.isolate:
            for key, value in ISOLATION_HEADERS.items():
                self.send_header(key, value)
        self.send_header("Cache-Control", "no-cache")  # a re-export shows up on reload
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


def page_dir(directory: str | Path) -> Path:
    """An export directory's ``web/`` folder, or ``directory`` itself if it is the page."""
    directory = Path(directory)
    if (directory / "index.html").is_file():
        return directory
    if (directory / WEB_DIR / "index.html").is_file():
        return directory / WEB_DIR
    raise FileNotFoundError(
        f"{directory} holds no index.html nor {WEB_DIR}/index.html; write the page first with "
        f"unet_tf.web.write_web({str(directory)!r}) (or `unet-tf export --formats tflite,web`)"
    )


def check_port(port: int) -> int:
    """Return ``port`` if it is a TCP port (0..65535, 0: any free one); else a ValueError.

    Examples:
        >>> check_port(8000)
        8000
    """
    if isinstance(port, bool) or not isinstance(port, numbers.Integral) or not (
            0 <= port <= 65535):
        raise ValueError(f"port must be a TCP port 0..65535 (0: any free one); got {port!r}; "
                         "try 8000")
    return int(port)


def make_server(
    directory: str | Path, port: int = 8000, isolate: bool = True, host: str = "127.0.0.1",
    verbose: bool = False,
) -> ThreadingHTTPServer:
    """An HTTP server for the page, not yet serving (call ``serve_forever``).

    Args:
        directory: the page's folder, or an export directory holding ``web/``.
        port: TCP port, 0..65535; 0 picks a free one (read it from
            ``server.server_address[1]``).
        isolate: send COOP/COEP headers (cross-origin isolation: threaded WebAssembly).
        host: address to listen on; "0.0.0.0" to let phones on the same network connect
            (browsers allow the webcam on http:// only for localhost).
        verbose: log every request.

    Examples:
        >>> server = make_server("pets-export", port=0)  # doctest: +SKIP
        >>> threading.Thread(target=server.serve_forever, daemon=True).start()  # doctest: +SKIP
    """
    port = check_port(port)
    root = page_dir(directory)
    handler = type("Handler", (PageHandler,), {"isolate": isolate})
    try:
        server = ThreadingHTTPServer((host, port), functools.partial(handler,
                                                                     directory=str(root)))
    except OSError as exc:  # port in use or privileged, unknown host
        raise OSError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); try another "
                      "port (--port; 0: any free one) or host (--host)") from exc
    server.verbose = verbose
    server.root = root
    return server


def serve(
    directory: str | Path, port: int = 8000, isolate: bool = True, host: str = "127.0.0.1"
) -> None:
    """Serve the page until interrupted (Ctrl+C), printing its address.

    Args:
        directory: the page's folder, or an export directory holding ``web/``.
        port: TCP port, 0..65535 (0: any free one); anything else is a ValueError.
        isolate: send the cross-origin isolation headers (2+ WebAssembly threads).
        host: address to listen on.

    Examples:
        >>> serve("pets-export")  # doctest: +SKIP
        Serving pets-export/web at http://127.0.0.1:8000/ (cross-origin isolated) ...
    """
    server = make_server(directory, port=port, isolate=isolate, host=host, verbose=True)
    address = f"http://{host}:{server.server_address[1]}/"
    mode = "cross-origin isolated" if isolate else "not isolated: one WebAssembly thread"
    print(f"Serving {server.root} at {address} ({mode}); Ctrl+C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
