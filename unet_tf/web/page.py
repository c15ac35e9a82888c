"""Write the static browser page of an export directory (see :mod:`unet_tf.web`)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unet_tf.web.runtime import RUNTIME_FILES, runtime_dir

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
STATIC_FILES = ("index.html", "app.js", "draw.js", "segment.js", "style.css")
WEB_DIR = "web"  # the page's folder inside an export directory
CONFIG_FILE = "config.json"
# Quantization name -> .tflite file written by unet_tf's export.
MODELS = {"fp32": "model_fp32.tflite", "fp16": "model_fp16.tflite", "int8": "model_int8.tflite"}
# Static hosts that read a _headers file (Netlify, Cloudflare Pages) send these, so the page
# is cross-origin isolated there too; unet_tf.web.serve sends the same headers.
HEADERS_FILE = """/*
  Cross-Origin-Opener-Policy: same-origin
  Cross-Origin-Embedder-Policy: require-corp
"""


def _export_config(source: Path) -> dict[str, Any]:
    """The export's config.json; a run trained at native resolution has no page."""
    config_path = source / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path} not found; pass an export directory written by unet_tf.export "
            "(with formats including 'tflite')"
        )
    config = json.loads(config_path.read_text())
    if config.get("preprocessing", {}).get("resolution") == "native":
        raise ValueError(
            f"{config_path}: the run was trained at native resolution (no resize); the page "
            "runs a .tflite at its fixed training size only. Export a run trained with "
            "DataConfig(resolution='resize') for the browser"
        )
    return config


def _write_page(folder: Path, source: Path, names: list[str], runtime: Path,
                config: dict[str, Any]) -> None:
    """The page's files: static files, the .tflite files, LiteRT.js, config.json, _headers."""
    for name in STATIC_FILES:
        shutil.copy2(STATIC_DIR / name, folder / name)
    for name in names:
        shutil.copy2(source / name, folder / name)
    for src, dst in RUNTIME_FILES.items():
        (folder / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(runtime / src, folder / dst)
    version = json.loads((runtime / "core" / "package.json").read_text())["version"]
    config["web"] = {"model": names[0], "models": names, "litertjs": version}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    (folder / "_headers").write_text(HEADERS_FILE)


def _model_files(config: dict[str, Any], models: Sequence[str], source: Path) -> list[str]:
    """Names ("int8", "fp16", "model_int8.tflite") -> .tflite file names the export holds."""
    described = config.get("export", {}).get("tflite", {})
    names = []
    for model in models:
        name = MODELS.get(model, model)
        if name not in described or not (source / name).is_file():
            have = sorted(n for n in described if (source / n).is_file())
            raise ValueError(
                f"{source} has no {name} (model={model!r}); it holds {have or 'no .tflite file'}. "
                f"Pick one of {have} or export it: unet_tf.export(run, out, formats=('tflite',), "
                f"quantize=('{model if model in MODELS else 'int8'}',))"
            )
        entry = described[name]
        if entry["input"]["dtype"] not in ("float32", "uint8"):
            raise ValueError(
                f"{source / name} takes {entry['input']['dtype']} input; the page feeds "
                "float32 (fp32, fp16 files) or uint8 (int8 files)"
            )
        names.append(name)
    return names


def write_web(
    export_dir: str | Path,
    model: str | Sequence[str] = "int8",
    out: str | Path | None = None,
    runtime: str | Path | None = None,
) -> Path:
    """Write the browser page of an export directory; return its folder.

    Args:
        export_dir: a folder written by :func:`unet_tf.export` with TFLite files.
        model: "int8", "fp16", "fp32" or a .tflite file name; or several of them, the first
            being the one the page loads (``index.html?model=model_fp16.tflite`` picks
            another).
        out: the page's folder (replaced if it holds an earlier page); default
            ``EXPORT_DIR/web``.
        runtime: where LiteRT.js comes from: a ``node_modules`` folder, or a folder holding
            the two npm tarballs (for a machine without network). Default: ``npm ci``'s copy
            in this package's folder, else the per-user cache, else downloaded from npm into
            it (about 12 MB, once); see :func:`unet_tf.web.runtime.runtime_dir`.

    Returns:
        The folder; serve it with :func:`unet_tf.web.serve` or any static file server.

    Raises:
        FileNotFoundError: no config.json in ``export_dir``, or LiteRT.js neither found nor
            downloadable (the message says how to bring it in by hand).
        ValueError: the export lacks the requested .tflite file.

    Examples:
        >>> write_web("pets-export", model=["int8", "fp16"])  # doctest: +SKIP
        PosixPath('pets-export/web')
    """
    source = Path(export_dir)
    config = _export_config(source)
    names = _model_files(config, [model] if isinstance(model, str) else list(model), source)
    runtime = runtime_dir(runtime)
    out = Path(out) if out is not None else source / WEB_DIR
    if out.exists() and not (out / "index.html").is_file() and any(out.iterdir()):
        raise FileExistsError(
            f"{out} exists and is not a page written by write_web; pass another out= folder"
        )

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    tmp.chmod(0o755)
    try:
        _write_page(tmp, source, names, runtime, config)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
