"""Export a trained model to a SavedModel and TFLite files, and prove they still agree with it.

:func:`export` writes an export directory::

    saved_models/pets-export/
        saved_model/         serving_default: images uint8 [batch, H, W, 3], any size ->
                             mask uint8 [batch, H, W], probabilities float32 [batch, H, W, K]
        model_fp32.tflite    float32 pixels 0..255 [1, h, w, C] at the training size -> logits
        model_fp16.tflite    same interface, float16 weights (half the size)
        model_int8.tflite    full integer: uint8 pixels in, uint8 (quantized) logits out
        config.json          the run's config.json plus an "export" section (formats, tensors)
        labels.txt           one class name per line, in index order
        parity.json          agreement of every format with the Keras model (see below)

Design choices, and why:

- **One preprocessing.** The SavedModel signature calls :func:`unet_tf.data.preprocess_image`,
  the function the tf.data training pipeline used, then the model, then resizes the logits
  back to the input's own size (:func:`unet_tf.predict.postprocess`).
- **TFLite takes raw pixel values 0..255 at the training size**, with the scaling to [0, 1]
  inside the file, so a phone app only resizes a camera frame and copies it in: float32
  for fp32 / fp16 files (rounding resized pixels to bytes alone would flip ~0.2% of the
  pixels), uint8 bytes for the int8 file, whose input quantization is scale 1, zero point 0
  when the representative images span 0..255 (photos do; the file records it either way).
  Resizing stays outside because TFLite wants a static input shape. Outputs are logits
  (uint8-quantized for int8; argmax works on them directly, softmax after dequantizing).
- **Builtin ops only.** Converters run with ``TFLITE_BUILTINS`` (``TFLITE_BUILTINS_INT8``
  for int8) and every file is read back: a Select TF (Flex) or custom op fails the export.
  (Keras' ``model.export(format="litert")`` enables Select TF ops by default, so it is not
  used.) No TFLite metadata is written: its maintained tooling (tflite-support) is archived;
  config.json and labels.txt carry class names, input size and normalization instead.
- **Full int8 rather than dynamic range.** Dynamic-range quantization (``quantize="dynamic"``,
  int8 weights, float activations) is offered but not the default: its speed depends on the
  CPU and runtime (reported 5x slower than fp32 on one setup; about as fast as int8 on the
  machine of ``benchmarks/export_bench.py``), and integer-only accelerators cannot run it,
  while full int8 is 4x smaller and fastest everywhere we measured.
- **Parity is measured, not assumed.** Every export runs :func:`parity_check` on validation
  images at their own size and fails under strict thresholds (:class:`ParityThresholds`).
- **Atomic.** Everything is written to a temporary folder beside the target and renamed into
  place only when every format converted and passed; a failed export leaves nothing behind.

Example:
    >>> import unet_tf
    >>> report = unet_tf.export("saved_models/pets", "saved_models/pets-export")  # doctest: +SKIP
    >>> report["parity"]["passed"]  # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from unet_tf.checkpoint import RunInfo, load_run, resolve_model_path
from unet_tf.config import IGNORE_LABEL, DataConfig
from unet_tf.data import load_source
from unet_tf.data.preprocess import scale_pixels
from unet_tf.metrics import scores_from_confusion
from unet_tf.predict import (
    CONFIG_FILE,
    LABELS_FILE,
    SAVED_MODEL_DIR,
    KerasPredictor,
    Predictor,
    as_rgb,
    resized_pixels,
    serving_function,
    serving_signature,
)

logger = logging.getLogger("unet_tf")

FORMATS = ("savedmodel", "tflite")
QUANTIZATIONS = ("none", "fp16", "int8", "dynamic")
DEFAULT_QUANTIZE = ("none", "fp16", "int8")  # dynamic range: opt-in (see above)
PARITY_FILE = "parity.json"
TFLITE_INPUT = "pixels"


def tflite_file_name(quantize: str) -> str:
    """File name of a TFLite export: ``model_fp32.tflite`` for "none", else model_<q>.tflite."""
    return f"model_{'fp32' if quantize == 'none' else quantize}.tflite"


@dataclass(frozen=True)
class ParityThresholds:
    """What an export must reach against the Keras model to be written (strict defaults).

    Agreement is the fraction of pixels whose class equals the Keras model's, over all
    pixels of the parity images at their own size. IoU drops are in mean-IoU units against
    the ground truth (0.01 = 1 point) and are checked both ways (``abs``).
    """

    savedmodel_agreement: float = 0.999  # same graph and weights: only float round-off differs
    fp32_agreement: float = 0.999  # TFLite kernels; input pixels rounded to uint8
    fp16_agreement: float = 0.995  # float16 weights
    int8_iou_drop: float = 0.01  # full integer: pixels near class boundaries may flip
    dynamic_iou_drop: float = 0.01  # dynamic-range quantized weights

    def check(self, name: str) -> tuple[str, float]:
        """(metric, threshold) that the format called ``name`` must pass."""
        key = {"savedmodel": "savedmodel", "tflite-none": "fp32", "tflite-fp16": "fp16",
               "tflite-int8": "int8", "tflite-dynamic": "dynamic"}[name]
        if key in ("int8", "dynamic"):
            return "iou_drop", getattr(self, f"{key}_iou_drop")
        return "agreement", getattr(self, f"{key}_agreement")


class ParityError(ValueError):
    """An exported format disagrees with the Keras model more than the thresholds allow."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


class ExportError(ValueError):
    """A model could not be converted as asked (e.g. a non-builtin TFLite op)."""


@contextlib.contextmanager
def quiet_tensorflow_logs():
    """Hide TensorFlow's INFO lines ("Assets written to ...") while saving, then restore."""
    tf_logger = tf.get_logger()
    level = tf_logger.level
    tf_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        tf_logger.setLevel(level)


# --------------------------------------------------------------------------- SavedModel


def save_saved_model(model, info: RunInfo, path: str | Path) -> Path:
    """Write a SavedModel whose ``serving_default`` segments uint8 images of any size.

    Args:
        model: Keras model returning logits.
        info: the run's config (input size, channels).
        path: folder to create.

    Returns:
        ``path``. Load it anywhere with ``tf.saved_model.load(path)
        .signatures["serving_default"](images=uint8_batch)`` -> {"mask", "probabilities"}.
    """
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        serving_function(model, info.input_size, info.model.input_channels),
        input_signature=[serving_signature()],
    )
    with quiet_tensorflow_logs():
        archive.write_out(str(path), verbose=False)
    return Path(path)


# ------------------------------------------------------------------------------- TFLite


def tflite_function(model, channels: int):
    """The network as TFLite holds it: pixels 0..255 -> logits (scaling inside)."""

    def network(pixels):
        x = scale_pixels(pixels)  # the file is fed resize_image() output
        return {"logits": model(x, training=False)}

    return network


def convert_tflite(
    model,
    info: RunInfo,
    quantize: str = "none",
    representative: Iterable[np.ndarray] | None = None,
) -> bytes:
    """Convert a Keras U-Net to a TFLite flatbuffer of builtin ops only.

    Args:
        model: Keras model returning logits.
        info: the run's config (training size and channels give the static input shape).
        quantize: "none" (fp32), "fp16" (float16 weights), "int8" (full integer, needs
            ``representative``) or "dynamic" (int8 weights, float activations).
        representative: float32 pixel arrays [1, H, W, C] (0..255, training size) drawn from
            the training data, to calibrate int8 activation ranges.

    Returns:
        The .tflite file's bytes. The input is pixels 0..255 [1, H, W, C] (float32, or uint8
        for int8); the output is logits [1, H, W, K] (float32, or quantized uint8 for int8).

    Raises:
        ExportError: when the converter fails or the result holds a non-builtin op.

    Example:
        >>> data = convert_tflite(model, info, "fp16")  # doctest: +SKIP
    """
    import keras

    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}; got {quantize!r}")
    if quantize == "int8" and representative is None:
        raise ValueError("int8 quantization needs representative images from the training data")
    height, width = (int(v) for v in info.input_size)
    channels = info.model.input_channels
    # Pixel values 0..255 in, scaling inside. Float models keep a float32 input: rounding
    # the resized pixels to uint8 alone flips ~0.2% of pixels near class boundaries. The
    # int8 converter quantizes this input to uint8 (inference_input_type below), which
    # with 0..255 calibration data is scale 1, zero point 0: plain pixel bytes.
    spec = tf.TensorSpec([1, height, width, channels], tf.float32, name=TFLITE_INPUT)

    with tempfile.TemporaryDirectory(prefix="unet_tf_tflite_") as tmp:
        # from_saved_model freezes the Keras 3 variables into constants (concrete functions
        # of a live model keep READ_VARIABLE ops that LiteRT cannot run).
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serving_default", tflite_function(model, channels),
            input_signature=[spec],
        )
        with quiet_tensorflow_logs():
            archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize in ("fp16", "int8", "dynamic"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "fp16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            samples = [np.asarray(x, np.float32) for x in representative]
            if not samples:
                raise ValueError("int8 quantization needs at least one representative image")

            def dataset():
                for x in samples:
                    yield [x]

            converter.representative_dataset = dataset
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.uint8
            converter.inference_output_type = tf.uint8
        try:
            content = converter.convert()
        except Exception as exc:  # the converter raises ConverterError and others
            raise ExportError(
                f"TFLite conversion ({quantize}) failed with builtin ops only: {exc}"
            ) from exc
    check_builtin_ops(content, tflite_file_name(quantize))
    return content


def tflite_operators(content: bytes) -> list[str]:
    """Names of the operators a .tflite flatbuffer uses (custom ops as ``CUSTOM:<name>``).

    Example:
        >>> tflite_operators(Path("model_int8.tflite").read_bytes())  # doctest: +SKIP
        ['CONCATENATION', 'CONV_2D', 'MAX_POOL_2D', 'QUANTIZE', 'TRANSPOSE_CONV']
    """
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if k.isupper()}
    ops = set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # Files store the code twice (a deprecated int8 field for codes < 127).
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            ops.add(f"CUSTOM:{(code.CustomCode() or b'?').decode()}")
        else:
            ops.add(names.get(builtin, f"UNKNOWN_{builtin}"))
    return sorted(ops)


def check_builtin_ops(content: bytes, name: str = "model.tflite") -> list[str]:
    """Return the file's operators; raise ExportError if any is a Flex (Select TF) or custom op.

    Example:
        >>> check_builtin_ops(Path("model_fp32.tflite").read_bytes())  # doctest: +SKIP
        ['CAST', 'CONCATENATION', 'CONV_2D', 'MAX_POOL_2D', 'TRANSPOSE_CONV']
    """
    ops = tflite_operators(content)
    bad = [op for op in ops if op.startswith("CUSTOM:")]
    if bad:
        raise ExportError(
            f"{name} uses non-builtin ops {bad} (Select TF ops appear as CUSTOM:Flex...); "
            "such files need the Flex delegate, which phones and edge boards lack. Replace the "
            "layers that produce them with built-in Keras layers."
        )
    return ops


def tensor_description(detail: dict) -> dict[str, Any]:
    scale, zero_point = detail["quantization"]
    return {
        "name": detail["name"],
        "dtype": np.dtype(detail["dtype"]).name,
        "shape": [int(v) for v in detail["shape"]],
        "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None,
    }


# ------------------------------------------------------------------------------- Data


def export_data(
    info: RunInfo, data: DataConfig | None
) -> tuple[DataConfig, str | None, DataConfig, str | None]:
    """(calibration data, its subset, parity data, its subset) for a run.

    Representative (calibration) images come from the run's training data; parity images
    from its validation data (its ``validation_data``, or the held-out fraction of its
    training data). An explicit ``data`` is split the same way (seeded fraction).
    """
    if data is not None:
        return data, "training", data, "validation"
    if info.extra.get("data"):
        train = DataConfig.from_dict(info.extra["data"])
        if info.extra.get("validation_data"):
            return train, None, DataConfig.from_dict(info.extra["validation_data"]), None
        return train, "training", train, "validation"
    raise ValueError(
        "this model has no recorded training data (a bare .keras file?); pass data= "
        "(--data SPEC) for the int8 calibration images and the parity check"
    )


def raw_examples(config: DataConfig, subset: str | None, limit: int, info: RunInfo):
    """Up to ``limit`` raw (uint8 image [H, W, C], int32 mask [H, W]) pairs at their own size."""
    source = load_source(config, subset=subset)
    pairs = []
    for image, mask in source.examples.take(limit):
        pairs.append((image.numpy(), mask.numpy()[..., 0]))
    if tuple(source.class_names) != tuple(info.class_names):
        logger.warning("data classes %s differ from the model's %s", source.class_names,
                       info.class_names)
    return pairs, source.description


def representative_pixels(images: Sequence[np.ndarray], info: RunInfo) -> list[np.ndarray]:
    """Training images as float32 pixels [1, H, W, C] at the training size (int8 calibration)."""
    return [
        resized_pixels(as_rgb(image), info.input_size, info.model.input_channels)
        for image in images
    ]


# ------------------------------------------------------------------------------- Parity


def confusion(truth: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """k x k confusion matrix over pixels whose truth is not IGNORE_LABEL."""
    truth = truth.ravel().astype(np.int64)
    pred = pred.ravel().astype(np.int64)
    valid = (truth != IGNORE_LABEL) & (truth < k)
    return np.bincount(truth[valid] * k + pred[valid], minlength=k * k).reshape(k, k)


def parity_check(
    reference: Predictor,
    predictors: dict[str, Predictor],
    examples: Sequence[tuple[np.ndarray, np.ndarray | None]],
    thresholds: ParityThresholds = ParityThresholds(),  # noqa: B008 (frozen, immutable)
) -> dict[str, Any]:
    """Compare every exported format with the Keras model and the ground truth.

    Args:
        reference: the Keras model's predictor.
        predictors: name ("savedmodel", "tflite-int8", ...) -> predictor of an export.
        examples: (uint8 image, int mask or None) pairs at their own size.
        thresholds: what each format must reach.

    Returns:
        A report: per format pixel agreement with Keras, mean IoU against Keras' masks and
        against the ground truth, the check applied and whether it passed; ``passed``
        overall. It does not raise; :func:`export` does.

    Example:
        >>> report = parity_check(keras_predictor, {"savedmodel": sm}, pairs)  # doctest: +SKIP
        >>> report["formats"]["savedmodel"]["agreement"]  # doctest: +SKIP
        1.0
    """
    k = reference.num_classes
    reference_truth = np.zeros((k, k), np.int64)
    stats = {name: {"same": 0, "pixels": 0, "vs_keras": np.zeros((k, k), np.int64),
                    "vs_truth": np.zeros((k, k), np.int64)} for name in predictors}
    labelled = all(mask is not None for _, mask in examples)
    for image, mask in examples:
        keras_mask = reference.predict(image)
        if mask is not None:
            reference_truth += confusion(mask, keras_mask, k)
        for name, predictor in predictors.items():
            pred = predictor.predict(image)
            s = stats[name]
            s["same"] += int(np.sum(pred == keras_mask))
            s["pixels"] += int(pred.size)
            s["vs_keras"] += confusion(keras_mask, pred, k)
            if mask is not None:
                s["vs_truth"] += confusion(mask, pred, k)

    keras_scores = scores_from_confusion(reference_truth, reference.class_names)
    report: dict[str, Any] = {
        "images": len(examples),
        "keras": {
            "mean_iou_vs_truth": keras_scores["mean_iou"] if labelled else None,
            "pixel_accuracy_vs_truth": keras_scores["pixel_accuracy"] if labelled else None,
        },
        "thresholds": dataclasses.asdict(thresholds),
        "formats": {},
    }
    passed = True
    for name, s in stats.items():
        truth_scores = scores_from_confusion(s["vs_truth"], reference.class_names)
        entry = {
            "agreement": s["same"] / max(s["pixels"], 1),
            "mean_iou_vs_keras": scores_from_confusion(s["vs_keras"], reference.class_names)[
                "mean_iou"],
            "mean_iou_vs_truth": truth_scores["mean_iou"] if labelled else None,
            "pixel_accuracy_vs_truth": truth_scores["pixel_accuracy"] if labelled else None,
        }
        metric, limit = thresholds.check(name)
        if metric == "agreement":
            value = entry["agreement"]
            ok = value >= limit
            entry["check"] = f"agreement {value:.5f} >= {limit}"
        elif labelled:
            value = abs(report["keras"]["mean_iou_vs_truth"] - entry["mean_iou_vs_truth"])
            ok = value <= limit
            entry["check"] = f"|mean IoU - Keras mean IoU| {value:.4f} <= {limit}"
        else:
            ok = False
            entry["check"] = "mean IoU drop needs labelled parity images; none given"
        entry["passed"] = bool(ok)
        passed &= ok
        report["formats"][name] = entry
    report["passed"] = bool(passed)
    return report


def format_parity(report: dict[str, Any]) -> str:
    """The parity report as a plain-text table."""
    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}"

    lines = [
        f"parity on {report['images']} validation images (at their own size); "
        f"Keras mean IoU vs truth {pct(report['keras']['mean_iou_vs_truth'])}",
        f"{'format':<16}{'agree %':>9}{'IoU vs keras':>14}{'IoU vs truth':>14}  check",
    ]
    for name, e in report["formats"].items():
        lines.append(
            f"{name:<16}{100 * e['agreement']:>9.3f}{pct(e['mean_iou_vs_keras']):>14}"
            f"{pct(e['mean_iou_vs_truth']):>14}  {'ok' if e['passed'] else 'FAILED'}: "
            f"{e['check']}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------- Export


def _parse(values: str | Sequence[str], allowed: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",") if v.strip()]
    values = tuple(values)
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ValueError(f"{what} must be a comma-separated subset of {list(allowed)}; got "
                         f"{list(values)}")
    return values


def export(
    model_path: str | Path,
    out_dir: str | Path,
    formats: str | Sequence[str] = FORMATS,
    quantize: str | Sequence[str] = DEFAULT_QUANTIZE,
    data: DataConfig | None = None,
    parity_images: int = 50,
    representative_images: int = 100,
    thresholds: ParityThresholds = ParityThresholds(),  # noqa: B008 (frozen, immutable)
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export a run (or .keras file) to a SavedModel and TFLite files, checking parity.

    Args:
        model_path: run directory or .keras file written by :func:`unet_tf.train`.
        out_dir: export directory to create (see the module docstring for its layout).
        formats: "savedmodel" and/or "tflite" (list or comma-separated string).
        quantize: TFLite variants: "none" (fp32), "fp16", "int8", "dynamic".
        data: data for int8 calibration (its "training" subset) and the parity check (its
            "validation" subset). Default: the run's own training and validation data.
        parity_images: validation images the parity check compares on.
        representative_images: training images that calibrate int8 activations.
        thresholds: parity thresholds; the defaults are strict.
        overwrite: replace an existing ``out_dir`` (only once the new export passed).

    Returns:
        The export report (also in config.json's "export" section and parity.json).

    Raises:
        ParityError: a format is under its threshold; the message holds the numbers, and
            nothing is written.
        ExportError: a conversion failed or produced a non-builtin TFLite op.

    Example:
        >>> report = export("saved_models/pets", "saved_models/pets-export",
        ...                 quantize="none,int8")  # doctest: +SKIP
        >>> print(format_parity(report["parity"]))  # doctest: +SKIP
    """
    formats = _parse(formats, FORMATS, "formats")
    quantize = _parse(quantize, QUANTIZATIONS, "quantize") if "tflite" in formats else ()
    out = Path(out_dir)
    keras_path, run_dir = resolve_model_path(model_path)
    if out.resolve() in (run_dir.resolve(), *run_dir.resolve().parents):
        raise ValueError(f"--out {out} would replace the model's own folder {run_dir}; "
                         "export to a new folder, e.g. saved_models/NAME-export")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ValueError(f"{out} already exists; pass overwrite=True (--overwrite) to replace "
                         "it, or choose another --out")

    start = time.time()
    model, info = load_run(model_path)
    rep_config, rep_subset, parity_config, parity_subset = export_data(info, data)
    parity_examples, parity_source = raw_examples(parity_config, parity_subset, parity_images,
                                                  info)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the export is an ordinary folder
    try:
        written: dict[str, Any] = {}
        predictors: dict[str, Predictor] = {}
        if "savedmodel" in formats:
            save_saved_model(model, info, tmp / SAVED_MODEL_DIR)
            written["savedmodel"] = {
                "path": SAVED_MODEL_DIR,
                "signature": "serving_default",
                "inputs": {"images": "uint8 [batch, height, width, 3], any size"},
                "outputs": {"mask": "uint8 [batch, height, width]",
                            "probabilities": "float32 [batch, height, width, classes]"},
            }
            logger.info("export: SavedModel written")
        tflite: dict[str, Any] = {}
        representative = None
        if "int8" in quantize:
            images = [im for im, _ in raw_examples(rep_config, rep_subset,
                                                   representative_images, info)[0]]
            representative = representative_pixels(images, info)
        for q in quantize:
            content = convert_tflite(model, info, q, representative)
            name = tflite_file_name(q)
            (tmp / name).write_bytes(content)
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_content=content)
            tflite[name] = {
                "quantize": q,
                "bytes": len(content),
                "input": tensor_description(interpreter.get_input_details()[0]),
                "output": tensor_description(interpreter.get_output_details()[0]),
                "operators": tflite_operators(content),
            }
            logger.info("export: %s (%d bytes)", name, len(content))
        if tflite:
            written["tflite"] = tflite

        config = info.to_dict()
        config["export"] = {
            **written,
            "source_model": str(keras_path),
            "representative_images": len(representative) if representative else 0,
            "versions": {"tensorflow": tf.__version__, **_versions()},
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        (tmp / LABELS_FILE).write_text("".join(f"{n}\n" for n in info.class_names))

        reference = KerasPredictor.from_model(model, info, keras_path)
        if "savedmodel" in formats:
            predictors["savedmodel"] = Predictor.from_path(tmp / SAVED_MODEL_DIR)
        for name, entry in tflite.items():
            predictors[f"tflite-{entry['quantize']}"] = Predictor.from_path(tmp / name)
        parity = parity_check(reference, predictors, parity_examples, thresholds)
        parity["data"] = parity_source
        (tmp / PARITY_FILE).write_text(json.dumps(parity, indent=2) + "\n")
        logger.info("%s", format_parity(parity))
        if not parity["passed"]:
            failed = [n for n, e in parity["formats"].items() if not e["passed"]]
            raise ParityError(
                f"export to {out} failed the parity check for {failed}; nothing was written.\n"
                + format_parity(parity),
                parity,
            )
        del predictors, reference
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report = {**config["export"], "parity": parity, "out": str(out),
              "seconds": round(time.time() - start, 1)}
    return report


def _versions() -> dict[str, str]:
    import keras

    from unet_tf import __version__

    try:
        from importlib.metadata import version

        litert = version("ai-edge-litert")
    except Exception:  # not installed as a distribution
        litert = "unknown"
    return {"keras": keras.__version__, "ai_edge_litert": litert, "unet_tf": __version__}


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished export into place: rename, so readers never see half of it."""
    if out.exists():
        old = tmp.with_name(tmp.name.replace(".partial", ".old"))
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)
