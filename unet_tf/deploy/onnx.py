"""ONNX export: the SavedModel's serving function as one standard-ops ONNX graph.

- **The same contract as the SavedModel.** ``model.onnx`` is
  :func:`unet_tf.serving.serving_function` converted by tf2onnx: input ``images`` (uint8
  [batch, height, width, 3], any size), outputs ``mask`` (uint8 [batch, height, width]) and
  ``probabilities`` (float32 [batch, height, width, classes]) at that size. The training
  preprocessing (antialiased bilinear resize, or the mirror padding of native-resolution
  runs), the network and the resize back are all inside, so onnxruntime needs no unet_tf.
- **No tile signature.** The SavedModel's ``segment_tiles`` (images at their own pixel
  size) is not in the file: tf2onnx cannot convert a ``tf.cond`` whose branches read the
  weights, and a second file would store them twice. Native-resolution runs need none (their
  ``serving_default`` already segments at the pixel size); tiling a resized run needs the
  SavedModel or a .tflite file (the ONNX predictor's ``predict(tile=...)`` says so).
- **Standard ONNX ops only.** Keras' ``model.export(format="onnx")`` converts the network
  alone (float input at a fixed preprocessing), so the serving function is converted
  instead. TensorFlow's antialiased resize (``ScaleAndTranslate``), which tf2onnx does not
  map and would leave in the graph as an op no runtime knows, becomes ONNX ``Resize`` with
  ``antialias=1`` (the same triangle filter widened by the downscale factor, renormalized
  at the borders: it matches TensorFlow to float round-off). Every file is read back and a
  node outside the default ONNX domain, or an op ONNX does not define, fails the export.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
from typing import Any

import tensorflow as tf

from unet_tf.checkpoint import RunInfo
from unet_tf.deploy.savedmodel import quiet_tensorflow_logs
from unet_tf.deploy.tflite import ExportError
from unet_tf.predictors.onnx import INSTALL_HINT
from unet_tf.serving import SERVING_INPUT, serving_function, serving_signature

ONNX_FILE = "model.onnx"
# Opset 18 is the first whose Resize has `antialias`, which the training preprocessing's
# resize needs, and the newest that tf2onnx 1.17 writes; onnxruntime runs it since 1.14.
OPSET = 18


def require_onnx() -> None:
    """Raise ExportError naming the install command unless tf2onnx, onnx and onnxruntime
    (the parity check runs the file) are installed."""
    missing = []
    for name in ("tf2onnx", "onnx", "onnxruntime"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ExportError(f"the onnx format needs {', '.join(missing)} (not installed): "
                          f"{INSTALL_HINT}")


@contextlib.contextmanager
def conversion_errors():
    """Collect tf2onnx's logged errors: it logs a node it failed to convert and carries on."""
    errors: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            errors.append(record.getMessage().splitlines()[0])

    handler = Collect(logging.ERROR)
    tf2onnx_logger = logging.getLogger("tf2onnx")
    tf2onnx_logger.addHandler(handler)
    try:
        yield errors
    finally:
        tf2onnx_logger.removeHandler(handler)


def convert_onnx(model, info: RunInfo) -> bytes:
    """Convert a Keras U-Net and its serving preprocessing to an ONNX file's bytes.

    Args:
        model: Keras model returning logits.
        info: the run's config (training size, channels, depth, resolution policy).

    Returns:
        The .onnx file's bytes: ``images`` uint8 [batch, height, width, 3] -> ``mask``
        uint8 [batch, height, width], ``probabilities`` float32 [batch, height, width,
        classes].

    Raises:
        ExportError: tf2onnx is missing, or the graph holds an op outside standard ONNX.

    Examples:
        >>> import onnxruntime  # doctest: +SKIP
        >>> session = onnxruntime.InferenceSession(convert_onnx(model, info))  # doctest: +SKIP
        >>> mask, probabilities = session.run(None, {"images": batch})  # doctest: +SKIP
    """
    require_onnx()
    import tf2onnx

    channels, multiple = info.model.input_channels, info.model.size_multiple
    size = None if info.native else info.input_size
    signature = [serving_signature()]
    function = tf.function(serving_function(_static_channels(model, channels), size, channels,
                                            multiple), input_signature=signature)
    with quiet_tensorflow_logs(), conversion_errors() as errors:
        try:
            proto, _ = tf2onnx.convert.from_function(
                function, input_signature=signature, opset=OPSET,
                custom_op_handlers={"ScaleAndTranslate": (_scale_and_translate, ["Resize"]),
                                    "FloorMod": (_floor_mod, []), "FloorDiv": (_floor_div, [])})
        except Exception as exc:  # tf2onnx raises what its op handlers raised
            raise ExportError(f"tf2onnx could not convert the model: {exc}") from exc
    if errors:
        raise ExportError(f"tf2onnx could not convert the model: {'; '.join(errors[:5])}")
    _name_dimensions(proto, len(info.class_names))
    proto.doc_string = "unet_tf U-Net: uint8 images of any size -> mask, probabilities"
    for key, value in (("class_names", json.dumps(list(info.class_names))),
                       ("input_size", json.dumps(list(info.input_size))),
                       ("resolution", "native" if info.native else "resize")):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    content = proto.SerializeToString()
    check_onnx_ops(content)
    return content


def _static_channels(model, channels: int):
    """The model, called on input whose channel count is static.

    Native-resolution runs mirror-pad through ``tf.tile`` with computed multiples
    (:func:`unet_tf.serving.pad_to_multiple`), which loses the static channel count; Keras
    then wraps every convolution in an XLA-compiled function, which tf2onnx cannot convert.
    """

    def call(x, training=False):
        return model(tf.ensure_shape(x, [None, None, None, channels]), training=training)

    return call


def _scale_and_translate(ctx, node, name, args):
    """tf2onnx handler: TF ScaleAndTranslate (antialiased resize) -> ONNX Resize, NHWC."""
    import numpy as np
    from onnx import TensorProto
    from tf2onnx import constants, utils

    kernel = node.get_attr_str("kernel_type")
    translation = node.inputs[3]
    if kernel != "triangle" or not translation.is_const() or np.any(
            translation.get_tensor_value(as_list=False)):
        raise ExportError(f"a resize with kernel {kernel!r} or a translation has no ONNX "
                          "Resize equivalent; only (antialiased) bilinear resizes convert")
    antialias = int(node.get_attr_value("antialias", 1))
    images, size = node.input[0], node.input[1]
    nchw = ctx.make_node("Transpose", [images], {"perm": constants.NHWC_TO_NCHW})
    batch_channels = ctx.make_node("Slice", [
        ctx.make_node("Shape", [nchw.output[0]]).output[0],
        ctx.make_const(utils.make_name("zero"), np.array([0], np.int64)).output[0],
        ctx.make_const(utils.make_name("two"), np.array([2], np.int64)).output[0]])
    sizes = ctx.make_node("Concat", [
        batch_channels.output[0],
        ctx.make_node("Cast", [size], {"to": TensorProto.INT64}).output[0]], {"axis": 0})
    # sizes, not scales: the scale is then out / in exactly as TensorFlow computes it
    resize = ctx.make_node(
        "Resize", [nchw.output[0], "", "", sizes.output[0]],
        {"mode": "linear", "coordinate_transformation_mode": "half_pixel",
         "antialias": antialias, "exclude_outside": 1})
    shapes, dtypes = node.output_shapes, node.output_dtypes
    ctx.remove_node(node.name)
    ctx.make_node("Transpose", resize.output, {"perm": constants.NCHW_TO_NHWC},
                  name=node.name, outputs=node.output, shapes=shapes, dtypes=dtypes)


def _integer(ctx, node) -> bool:
    from onnx import TensorProto

    return ctx.get_dtype(node.input[0]) in (TensorProto.INT32, TensorProto.INT64)


def _floor_mod(ctx, node, name, args):
    """tf2onnx handler: integer FloorMod -> ONNX Mod (fmod=0 takes the divisor's sign).

    tf2onnx computes ``x - (x / y) * y`` with ONNX's truncating integer Div: -45 % 8 gives
    -5 instead of 3, and the native-resolution padding (``-height % multiple``) turns into
    a crop.
    """
    from tf2onnx.onnx_opset.math import FloorMod

    if not _integer(ctx, node):
        return FloorMod.version_7(ctx, node)
    node.type = "Mod"
    node.set_attr("fmod", 0)
    return None


def _floor_div(ctx, node, name, args):
    """tf2onnx handler: integer FloorDiv as ``(x - x mod y) / y`` (exact, floors negatives)."""
    from tf2onnx.onnx_opset.math import FloorDiv

    if not _integer(ctx, node):
        return FloorDiv.version_6(ctx, node)
    x, y = node.input
    mod = ctx.make_node("Mod", [x, y], {"fmod": 0})
    floored = ctx.make_node("Sub", [x, mod.output[0]])
    ctx.replace_input(node, x, floored.output[0], 0)
    node.type = "Div"
    return None


def _name_dimensions(proto, classes: int) -> None:
    """Name the dynamic dimensions (batch, height, width) on the inputs and outputs."""
    names = {SERVING_INPUT: ("batch", "height", "width", 3), "mask": ("batch", "height", "width"),
             "probabilities": ("batch", "height", "width", classes)}
    for value in (*proto.graph.input, *proto.graph.output):
        if value.name not in names:
            continue
        dims = value.type.tensor_type.shape.dim
        del dims[:]
        for dim in names[value.name]:
            if isinstance(dim, int):
                dims.add().dim_value = dim
            else:
                dims.add().dim_param = dim


def onnx_operators(content: bytes) -> list[str]:
    """The ops of an ONNX file's nodes, subgraphs included; other domains as ``domain:op``.

    Examples:
        >>> onnx_operators(Path("model.onnx").read_bytes())[:3]  # doctest: +SKIP
        ['ArgMax', 'Cast', 'Concat']
    """
    import onnx

    ops: set[str] = set()

    def walk(graph):
        for node in graph.node:
            standard = node.domain in ("", "ai.onnx")
            ops.add(node.op_type if standard else f"{node.domain}:{node.op_type}")
            for attr in node.attribute:
                for sub in (*([attr.g] if attr.HasField("g") else []), *attr.graphs):
                    walk(sub)

    walk(onnx.load_from_string(content).graph)
    return sorted(ops)


def _opset(model) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def check_onnx_ops(content: bytes, name: str = ONNX_FILE) -> list[str]:
    """Return the file's ops; raise ExportError on another domain or an op ONNX lacks.

    tf2onnx leaves TensorFlow ops it cannot map in the graph and carries on, so a file can
    convert and still fail to load in onnxruntime; this finds them at export time.
    """
    import onnx

    ops = onnx_operators(content)
    opset = _opset(onnx.load_from_string(content))
    bad = [op for op in ops if ":" in op or not onnx.defs.has(op, opset, "")]
    if bad:
        raise ExportError(
            f"{name} holds ops outside standard ONNX opset {opset}: {bad} (TensorFlow ops "
            "that tf2onnx could not map); onnxruntime cannot run them. Replace the layers "
            "that produce them with built-in Keras layers.")
    return ops


def describe_onnx(content: bytes) -> dict[str, Any]:
    """A .onnx file's entry in config.json: format, size, opset, tensors, operators."""
    import onnx

    model = onnx.load_from_string(content)

    def tensor(value) -> dict[str, Any]:
        dims = value.type.tensor_type.shape.dim
        return {"dtype": onnx.helper.tensor_dtype_to_np_dtype(
            value.type.tensor_type.elem_type).name,
            "shape": [d.dim_param or d.dim_value for d in dims]}

    return {
        "format": "onnx",
        "path": ONNX_FILE,
        "bytes": len(content),
        "opset": _opset(model),
        "inputs": {v.name: tensor(v) for v in model.graph.input},
        "outputs": {v.name: tensor(v) for v in model.graph.output},
        "operators": onnx_operators(content),
    }
