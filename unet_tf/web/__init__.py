"""The exported model in a browser tab: a static page that runs the .tflite with LiteRT.js.

:func:`write_web` turns an export directory into ``EXPORT_DIR/web/``, a folder any static
file server can host: ``index.html``, ``app.js``, ``draw.js`` and ``segment.js`` (the page),
``config.json`` (the export's, plus the model the page loads), the ``.tflite`` file and the
LiteRT.js runtime (its ES module and WebAssembly files; :func:`runtime_dir` finds them, and
the first time downloads the pinned npm tarballs, about 12 MB, into a per-user cache; see
:mod:`unet_tf.web.runtime` for machines without network). :func:`serve` hosts it with
Python's ``http.server`` and the cross-origin isolation headers that let the WebAssembly use
several threads.

The page repeats the Python TFLite predictor's steps in JavaScript (``static/segment.js``):
TensorFlow's antialiased bilinear resize to the training size, the input tensor's dtype and
quantization from config.json, bilinear logits back to the photo's size, argmax.

Examples:
    >>> from unet_tf.web import serve, write_web
    >>> web = write_web("pets-export", model="int8")  # doctest: +SKIP
    >>> serve(web, port=8000)  # doctest: +SKIP
    Serving pets-export/web at http://127.0.0.1:8000/ (cross-origin isolated) ...
"""

from __future__ import annotations

from unet_tf.web.page import MODELS, WEB_DIR, write_web
from unet_tf.web.runtime import runtime_dir
from unet_tf.web.server import make_server, serve

__all__ = ["MODELS", "WEB_DIR", "make_server", "runtime_dir", "serve", "write_web"]
