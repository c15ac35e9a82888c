"""TFLite conversion with builtin ops only, and the checks that read a file back.

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
- **Full int8 rather than dynamic range.** Dynamic-range quantization (``dynamic``, int8
  weights, float activations) is offered but not a default: its speed depends on the CPU
  and runtime, and integer-only accelerators cannot run it, while full int8 is 4x smaller
  and fastest everywhere we measured.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from unet_tf.checkpoint import RunInfo
from unet_tf.config import TFLITE_VARIANTS
from unet_tf.data.preprocess import resize_image, scale_pixels
from unet_tf.deploy.savedmodel import quiet_tensorflow_logs
from unet_tf.imageio import as_rgb

TFLITE_INPUT = "pixels"


class ExportError(ValueError):
    """A model could not be converted as asked (e.g. a non-builtin TFLite op)."""


def tflite_file_name(variant: str) -> str:
    """File name of a TFLite variant: ``model_fp32.tflite``, ``model_int8.tflite``, ...

    Examples:
        >>> tflite_file_name("int8")
        'model_int8.tflite'
    """
    return f"model_{variant}.tflite"


def tflite_function(model, channels: int):
    """The network as TFLite holds it: pixels 0..255 -> logits (scaling inside)."""

    def network(pixels):
        x = scale_pixels(pixels)  # the file is fed resize_image() output
        return {"logits": model(x, training=False)}

    return network


def convert_tflite(
    model,
    info: RunInfo,
    quantize: str = "fp32",
    representative: Iterable[np.ndarray] | None = None,
) -> bytes:
    """Convert a Keras U-Net to a TFLite flatbuffer of builtin ops only.

    Args:
        model: Keras model returning logits.
        info: the run's config (training size and channels give the static input shape).
        quantize: "fp32", "fp16" (float16 weights), "int8" (full integer, needs
            ``representative``) or "dynamic" (int8 weights, float activations).
        representative: float32 pixel arrays [1, H, W, C] (0..255, training size) drawn from
            the training data, to calibrate int8 activation ranges.

    Returns:
        The .tflite file's bytes. The input is pixels 0..255 [1, H, W, C] (float32, or uint8
        for int8); the output is logits [1, H, W, K] (float32, or quantized uint8 for int8).

    Raises:
        ExportError: when the converter fails or the result holds a non-builtin op.

    Examples:
        >>> data = convert_tflite(model, info, "fp16")  # doctest: +SKIP
    """
    import keras

    if quantize not in TFLITE_VARIANTS:
        raise ValueError(f"quantize must be one of {TFLITE_VARIANTS}; got {quantize!r}")
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
        archive.add_endpoint("serving_default", tflite_function(model, channels),
                             input_signature=[spec])
        with quiet_tensorflow_logs():
            archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        quantization(converter, quantize, representative)
        try:
            content = converter.convert()
        except Exception as exc:  # the converter raises ConverterError and others
            raise ExportError(
                f"TFLite conversion ({quantize}) failed with builtin ops only: {exc}"
            ) from exc
    check_builtin_ops(content, tflite_file_name(quantize))
    return content


def quantization(converter, quantize: str, representative: Iterable[np.ndarray] | None
                 ) -> None:
    """Set the converter's ops and quantization for a variant: builtin ops only; float16
    weights (fp16); int8 weights (dynamic); integers only, uint8 in and out, calibrated on
    ``representative`` (int8)."""
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


def tflite_operators(content: bytes) -> list[str]:
    """Names of the operators a .tflite flatbuffer uses (custom ops as ``CUSTOM:<name>``).

    Examples:
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

    Examples:
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


def representative_pixels(images: Sequence[np.ndarray], info: RunInfo) -> list[np.ndarray]:
    """Training images as float32 pixels [1, H, W, C] at the training size (int8 calibration)."""
    size, channels = tuple(info.input_size), info.model.input_channels
    return [resize_image(as_rgb(image)[None], size, channels).numpy() for image in images]


def describe_tflite(content: bytes, export_format: str) -> dict[str, Any]:
    """A .tflite file's entry in config.json: format, size, tensors, operators."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    return {
        "format": export_format,
        "bytes": len(content),
        "input": tensor_description(interpreter.get_input_details()[0]),
        "output": tensor_description(interpreter.get_output_details()[0]),
        "operators": tflite_operators(content),
    }
