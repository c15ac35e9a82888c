"""Export a trained model to a SavedModel, TFLite and ONNX files; prove they agree with it.

:func:`export` writes an export directory::

    saved_models/pets-export/
        saved_model/         serving_default: images uint8 [batch, H, W, 3], any size ->
                             mask uint8 [batch, H, W], probabilities float32 [batch, H, W, K];
                             segment_tiles: the same at the images' own pixel size
        model_fp32.tflite    float32 pixels 0..255 [1, h, w, C] at the training size -> logits
        model_fp16.tflite    same interface, float16 weights (half the size)
        model_int8.tflite    full integer: uint8 pixels in, uint8 (quantized) logits out
        model.onnx           (opt-in, "onnx") serving_default for onnxruntime: images uint8
                             [batch, H, W, 3], any size -> mask, probabilities at that size
        bioimageio/          (opt-in, "bioimageio") a bioimage.io model package, spec 0.5
        bioimageio.zip       the same package as one file, as the model zoo uploads it
        config.json          the run's config.json plus an "export" section (formats, tensors)
        labels.txt           one class name per line, in index order
        parity.json          agreement of every format with the Keras model

It is **atomic**: everything is written to a temporary folder beside the target and renamed
into place only when every format converted and passed its parity check; a failed export
leaves nothing behind, and ``overwrite`` only ever replaces an earlier export.

Examples:
    >>> import unet_tf
    >>> report = unet_tf.export("saved_models/pets", "saved_models/pets-export")  # doctest: +SKIP
    >>> report["parity"]["passed"]  # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from unet_tf.checkpoint import CONFIG_FILE, RunInfo, load_run, resolve_model_path
from unet_tf.config import DataConfig, ExportConfig
from unet_tf.deploy.export_data import export_data, raw_examples
from unet_tf.deploy.onnx import ONNX_FILE, convert_onnx, describe_onnx, require_onnx
from unet_tf.deploy.parity import ParityError, format_parity, parity_check
from unet_tf.deploy.savedmodel import save_saved_model
from unet_tf.deploy.tflite import (
    convert_tflite,
    describe_tflite,
    representative_pixels,
    tflite_file_name,
)
from unet_tf.predictors import SAVED_MODEL_DIR, Predictor
from unet_tf.predictors.keras_model import KerasPredictor

logger = logging.getLogger("unet_tf")

PARITY_FILE = "parity.json"
LABELS_FILE = "labels.txt"
BIOIMAGEIO_DIR = "bioimageio"  # the package folder; bioimageio.zip beside it


def bioimageio_license(info: RunInfo, license: str | None) -> str:
    """The SPDX id a bioimage.io package of this run carries, checked before any conversion.

    ``license`` when given; else a shipped model's own (its training data's terms), else
    CC-BY-4.0 (the bioimage.io model zoo's usual choice) for a user's run. A shipped model
    whose data has no listed SPDX licence (``membranes``: research use) needs one said.
    """
    from unet_tf.deploy.bioimageio import license_id

    shipped = info.extra.get("shipped")
    if license is None and shipped:
        try:
            return license_id(shipped.get("spdx") or "")
        except ValueError:
            raise ValueError(
                f"this model's training data has no SPDX licence ({shipped.get('licence')}); "
                "a bioimage.io package needs one: check the data's terms, then pass "
                "--license ID (ExportConfig(license=...) in Python)") from None
    return license_id(license or "CC-BY-4.0")


def check_target(out: Path, run_dir: Path, overwrite: bool) -> None:
    """Refuse an ``out`` that is the run itself, a file, or a folder that is not an export."""
    if out.resolve() in (run_dir.resolve(), *run_dir.resolve().parents):
        raise ValueError(f"--out {out} would replace the model's own folder {run_dir}; "
                         "export to a new folder, e.g. saved_models/NAME-export")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder to create")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"{out} already exists; pass overwrite=True (--overwrite) to "
                             "replace it, or choose another --out")
        if not (out / PARITY_FILE).is_file():
            raise ValueError(f"{out} is not an export folder (no {PARITY_FILE}); --overwrite "
                             "replaces earlier exports only, never other folders")


def export(model_path: str | Path, out_dir: str | Path, config: ExportConfig | None = None,
           data: DataConfig | None = None, web_runtime: str | Path | None = None,
           ) -> dict[str, Any]:
    """Export a run (or .keras file) to a SavedModel, TFLite and ONNX files, checking parity.

    Args:
        model_path: run directory or .keras file written by :func:`unet_tf.train`.
        out_dir: export directory to create (see the module docstring for its layout).
        config: formats, parity and calibration image counts, thresholds, overwrite
            (default: ``ExportConfig()``: SavedModel and TFLite fp32, fp16, int8; "onnx"
            is opt-in and needs ``pip install "unet-tf[onnx]"``).
        data: data for int8 calibration (its "training" subset) and the parity check (its
            "validation" subset). Default: the run's own training and validation data. Its
            classes are matched to the model's by name (another order is remapped).
        web_runtime: where the "web" format's LiteRT.js comes from (a folder with its two
            npm tarballs, or a node_modules folder); default: found or downloaded by
            :func:`unet_tf.web.runtime_dir`.

    Returns:
        The export report (also in config.json's "export" section and parity.json).

    Raises:
        ValueError: ``data`` has other classes than the model (checked before anything is
            converted).
        ParityError: a format is under its threshold; the message holds the numbers, and
            nothing is written.
        ExportError: a conversion failed, produced a non-builtin TFLite op or an op outside
            standard ONNX, or "onnx" was asked for without tf2onnx / onnxruntime installed
            (checked before anything is converted).

    Examples:
        >>> report = export("saved_models/pets", "saved_models/pets-export",
        ...                 ExportConfig(formats=("tflite-int8",)))  # doctest: +SKIP
        >>> print(format_parity(report["parity"]))  # doctest: +SKIP
    """
    config = config or ExportConfig()
    out = Path(out_dir)
    keras_path, run_dir = resolve_model_path(model_path)
    check_target(out, run_dir, config.overwrite)
    runtime = check_requirements(config, web_runtime)
    start = time.time()
    model, info = load_run(model_path)
    spdx = bioimageio_license(info, config.license) if "bioimageio" in config.formats else None
    # data of other classes are refused here, before anything is converted or written
    examples = export_examples(info, data, config, model_path)
    with staged(out) as tmp:
        report = write_export(tmp, out, model, info, keras_path, config, examples, spdx,
                              runtime)
    return {**report, "out": str(out), "seconds": round(time.time() - start, 1)}


def export_examples(info: RunInfo, data: DataConfig | None, config: ExportConfig,
                    model_path: str | Path) -> tuple[list, str, Any]:
    """(parity examples, their data's description, int8 calibration pixels or None)."""
    rep_config, rep_subset, parity_config, parity_subset = export_data(info, data)
    parity_examples, parity_source = raw_examples(parity_config, parity_subset,
                                                  config.parity_images, info, model_path)
    representative = None
    if "int8" in config.tflite_variants:
        images = [im for im, _ in raw_examples(rep_config, rep_subset,
                                               config.representative_images, info,
                                               model_path)[0]]
        representative = representative_pixels(images, info)
    return parity_examples, parity_source, representative


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A temporary folder beside ``out``, renamed to ``out`` when the block succeeds and
    removed when it fails: readers never see half an export."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the export is an ordinary folder
    try:
        yield tmp
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_export(tmp: Path, out: Path, model, info: RunInfo, keras_path: Path,
                 config: ExportConfig, examples: tuple[list, str, Any], spdx: str | None,
                 runtime: Path | None) -> dict[str, Any]:
    """Convert, describe and check every format in ``tmp``, then add the packages built
    from the checked files; the report (config.json's "export" section and the parity)."""
    parity_examples, parity_source, representative = examples
    written = convert(model, info, config, representative, tmp)
    run_config = info.to_dict()
    run_config["export"] = {
        **written,
        "source_model": keras_path.name,
        "representative_images": len(representative) if representative else 0,
        "versions": _versions(onnx="onnx" in written),
    }
    (tmp / CONFIG_FILE).write_text(json.dumps(run_config, indent=2) + "\n")
    (tmp / LABELS_FILE).write_text("".join(f"{n}\n" for n in info.class_names))
    parity = check_parity(model, info, keras_path, written, tmp, out, parity_examples,
                          parity_source, config)
    if "bioimageio" in config.formats:  # its test tensors: the first parity image
        add_bioimageio(keras_path, tmp, spdx, parity_examples[0][0], run_config)
    if "web" in config.formats:
        from unet_tf.web import write_web

        page_models = [v for v in ("int8", "fp16", "fp32") if v in config.tflite_variants]
        write_web(tmp, model=page_models, out=tmp / "web", runtime=runtime)
        logger.info("export: web page written (loads %s)", tflite_file_name(page_models[0]))
    return {**run_config["export"], "parity": parity}


def check_requirements(config: ExportConfig, web_runtime: str | Path | None) -> Path | None:
    """Check the opt-in formats' extras now, not after minutes of conversion; returns the
    web format's LiteRT.js folder (found or downloaded), or None without that format."""
    runtime = None
    if "web" in config.formats:
        from unet_tf.web import runtime_dir

        runtime = runtime_dir(web_runtime)
    elif web_runtime is not None:
        raise ValueError(f"web_runtime={str(web_runtime)!r} is for the 'web' format; add web "
                         f"to formats {list(config.formats)}")
    if "onnx" in config.formats:
        require_onnx()
    if "bioimageio" in config.formats:
        from unet_tf.deploy.bioimageio import require_bioimageio

        try:
            require_bioimageio()
        except ImportError as exc:  # a missing extra is the user's to fix: one line
            raise ValueError(str(exc)) from None
    return runtime


def convert(model, info: RunInfo, config: ExportConfig, representative, tmp: Path
            ) -> dict[str, Any]:
    """Write the SavedModel, .tflite and .onnx files into ``tmp``; their config.json entries."""
    written: dict[str, Any] = {}
    if "savedmodel" in config.formats:
        save_saved_model(model, info, tmp / SAVED_MODEL_DIR)
        written["savedmodel"] = {
            "format": "savedmodel",
            "path": SAVED_MODEL_DIR,
            "signatures": ["serving_default", "segment_tiles"],
            "inputs": {"images": "uint8 [batch, height, width, 3], any size"},
            "outputs": {"mask": "uint8 [batch, height, width]",
                        "probabilities": "float32 [batch, height, width, classes]"},
        }
        logger.info("export: SavedModel written")
    tflite = {}
    for variant in config.tflite_variants:
        content = convert_tflite(model, info, variant, representative)
        name = tflite_file_name(variant)
        (tmp / name).write_bytes(content)
        tflite[name] = describe_tflite(content, f"tflite-{variant}")
        logger.info("export: %s (%d bytes)", name, len(content))
    if tflite:
        written["tflite"] = tflite
    if "onnx" in config.formats:
        started = time.time()
        content = convert_onnx(model, info)
        (tmp / ONNX_FILE).write_bytes(content)
        written["onnx"] = describe_onnx(content)
        logger.info("export: %s (%d bytes, converted in %.1f s)", ONNX_FILE, len(content),
                    time.time() - started)
    return written


def check_parity(model, info: RunInfo, keras_path: Path, written: dict[str, Any], tmp: Path,
                 out: Path, examples: list, source: str, config: ExportConfig
                 ) -> dict[str, Any]:
    """Compare every written format with the Keras model on ``examples`` and write
    parity.json; the parity report, or :class:`ParityError` (with the numbers) when a format
    is under its threshold."""
    # exported formats run no test-time augmentation: nor does the reference they match
    reference = KerasPredictor.from_model(model, info, keras_path, tta=False)
    predictors: dict[str, Predictor] = {}
    if "savedmodel" in written:
        predictors["savedmodel"] = Predictor.from_path(tmp / SAVED_MODEL_DIR)
    for name, entry in written.get("tflite", {}).items():
        predictors[entry["format"]] = Predictor.from_path(tmp / name)
    if "onnx" in written:
        predictors["onnx"] = Predictor.from_path(tmp / ONNX_FILE)
    parity = parity_check(reference, predictors, examples, config.thresholds)
    parity["data"] = source
    (tmp / PARITY_FILE).write_text(json.dumps(parity, indent=2) + "\n")
    logger.info("%s", format_parity(parity))
    if not parity["passed"]:
        failed = [n for n, e in parity["formats"].items() if not e["passed"]]
        raise ParityError(
            f"export to {out} failed the parity check for {failed}; nothing was written.\n"
            + format_parity(parity),
            parity,
        )
    return parity


def add_bioimageio(keras_path: Path, tmp: Path, spdx: str, test_image, run_config: dict
                   ) -> None:
    """Write the bioimage.io package and its .zip into ``tmp``; record it in config.json."""
    from unet_tf.deploy.bioimageio import write_bioimageio

    write_bioimageio(keras_path, tmp / BIOIMAGEIO_DIR, license=spdx, test_image=test_image,
                     zip_path=tmp / f"{BIOIMAGEIO_DIR}.zip")
    run_config["export"]["bioimageio"] = {
        "format": "bioimageio", "path": BIOIMAGEIO_DIR, "zip": f"{BIOIMAGEIO_DIR}.zip",
        "spec": "0.5", "license": spdx}
    (tmp / CONFIG_FILE).write_text(json.dumps(run_config, indent=2) + "\n")
    logger.info("export: bioimage.io package written (%s, licence %s)", BIOIMAGEIO_DIR, spdx)


def _versions(onnx: bool = False) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import keras
    import tensorflow as tf

    from unet_tf import __version__

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"

    versions = {"tensorflow": tf.__version__, "keras": keras.__version__,
                "ai_edge_litert": installed("ai-edge-litert"), "unet_tf": __version__}
    if onnx:
        versions.update({name: installed(name) for name in ("tf2onnx", "onnx", "onnxruntime")})
    return versions


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished export into place: rename, so readers never see half of it."""
    if out.exists():
        old = tmp.with_name(tmp.name.replace(".partial", ".old"))
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)
