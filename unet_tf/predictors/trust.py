"""Which SavedModels may run: graphs made only of the ops that U-Net exports use.

A SavedModel is a program. Its graph may read and write files, print, or call back into
Python, and some of it runs as soon as it is loaded (resource initializers). A ``.keras``
file loaded with ``safe_mode`` holds no code and a ``.tflite`` file with builtin ops holds
arithmetic only, but a SavedModel from elsewhere runs only when every op of its graph is in
an allow-list: the ops that :func:`unet_tf.export` and Keras' ``model.export(path,
format="tf_saved_model")`` write for our U-Nets. Any other op is refused, with its name,
unless the user says the model is trusted (``--trust-model``). A deny-list of dangerous ops
cannot work: TensorFlow has thousands of ops, and new ones that touch files (dataset
caches, record writers, file readers) keep coming.

The graph is read in three parts (:func:`graph_ops`), each with its own list:

- ``save``: what ``saver_def``'s save tensor reaches, the variables' save function. TF runs
  it only when the model is saved again, with a file name it chooses.
- ``restore``: what ``saver_def``'s restore op reaches, the variables' restore function;
  TF may run it at load time with the variables' own file name.
- ``serving``: everything else (signatures, initializers, functions that nothing calls).

Each part has its own list, so a serving function cannot reach the save function's file
writes, nor a restore op hide extra work behind the saver's exemption.

Examples:
    >>> "Conv2D" in ALLOWED_OPS and "WriteFile" not in ALLOWED_OPS
    True
    >>> "SaveV2" in SAVE_OPS and "SaveV2" not in ALLOWED_OPS | RESTORE_OPS
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# The three lists below were derived, not typed: every U-Net variant (each preset of
# unet_tf.config.MODEL_PRESETS with residual, batch norm and output stride toggled, 1 and 3
# input channels, resized and native-resolution serving) was exported with unet_tf's
# SavedModel writer (unet_tf.deploy.savedmodel.save_saved_model, what unet_tf.export writes)
# and with Keras' model.export(format="tf_saved_model"), and the ops of each part of each
# graph (graph_ops) were collected; TensorFlow 2.21, Keras 3.15. Regenerate after a
# TensorFlow or Keras upgrade, or when the model or serving code gains a layer or op:
# `python tests/test_trust.py` prints the three literals (it takes a few minutes), and
# `pytest tests/test_trust.py -m slow` fails when they differ from these.

# Ops of the serving signatures, initializers and every other function.
ALLOWED_OPS = frozenset({
    "AddV2", "Any", "ArgMax", "AssignVariableOp", "BiasAdd", "Cast", "ConcatV2", "Const",
    "Conv2D", "Conv2DBackpropInput", "ExpandDims", "FloorDiv", "FloorMod", "GatherV2",
    "Greater", "Identity", "MatMul", "MaxPool", "Maximum", "MirrorPad", "Mul", "Neg", "NoOp",
    "Pack", "Placeholder", "Prod", "ReadVariableOp", "RealDiv", "Relu", "Reshape",
    "ResizeBilinear", "Rsqrt", "ScaleAndTranslate", "Shape", "Softmax", "Squeeze",
    "StatefulPartitionedCall", "StatelessIf", "StridedSlice", "Sub", "Tile", "Transpose",
    "VarHandleOp", "VarIsInitializedOp",
})

# Ops of the variables' save function (what saver_def.save_tensor_name reaches).
SAVE_OPS = frozenset({
    "Const", "DisableCopyOnRead", "Identity", "MergeV2Checkpoints", "NoOp", "Pack",
    "Placeholder", "ReadVariableOp", "SaveV2", "Select", "ShardedFilename",
    "StatefulPartitionedCall", "StaticRegexFullMatch", "StringJoin", "VarHandleOp",
})

# Ops of the variables' restore function (what saver_def.restore_op_name reaches).
RESTORE_OPS = frozenset({
    "AssignVariableOp", "Const", "Identity", "NoOp", "Placeholder", "RestoreV2",
    "StatefulPartitionedCall", "VarHandleOp",
})

PARTS = {"serving": ALLOWED_OPS, "save": SAVE_OPS, "restore": RESTORE_OPS}


class UntrustedModelError(ValueError):
    """A SavedModel whose graph holds an op outside the allow-list, not marked as trusted."""


def _attr_funcs(value) -> Iterable[str]:
    """Names of the functions an attribute value names, nested attributes included."""
    funcs = [value.func] if value.HasField("func") else []
    for func in [*funcs, *value.list.func]:
        yield func.name
        for inner in func.attr.values():
            yield from _attr_funcs(inner)


def _calls(node, library: dict) -> Iterable[str]:
    """Functions a node calls: through attributes (``f``, ``then_branch``, ``body`` ...) or
    as its op type (a node may name a library function as its op)."""
    if node.op in library:
        yield node.op
    for value in node.attr.values():
        yield from _attr_funcs(value)


def _input_name(name: str) -> str:
    """``^node``, ``node:1`` -> ``node``."""
    return name.lstrip("^").split(":")[0]


def _closure(
    roots: Iterable[str], nodes: dict, library: dict, funcs: Iterable[str] = ()
) -> tuple[set[str], set[str]]:
    """(graph nodes, functions) that the ``roots`` nodes and ``funcs`` functions reach,
    through inputs and function calls."""
    seen_nodes: set[str] = set()
    seen_funcs: set[str] = set()
    todo = [_input_name(name) for name in roots if name]
    calls = list(funcs)
    while todo:
        name = todo.pop()
        if name in seen_nodes or name not in nodes:
            continue
        seen_nodes.add(name)
        todo += [_input_name(i) for i in nodes[name].input]
        calls += _calls(nodes[name], library)
    while calls:
        name = calls.pop()
        if name in seen_funcs:
            continue
        seen_funcs.add(name)  # names that are no library function are checked as ops
        if name in library:
            calls += [f for node in library[name].node_def for f in _calls(node, library)]
    return seen_nodes, seen_funcs


def _parse(path: Path):
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    pb = path / "saved_model.pb"
    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(pb.read_bytes())
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise ValueError(f"{pb}: not a SavedModel protobuf ({exc})") from exc
    return saved


def graph_ops(path: str | Path) -> dict[str, dict[str, str]]:
    """The ops of a SavedModel's graphs, by part: ``{part: {op: where the first one is}}``.

    Parts are ``"serving"``, ``"save"`` and ``"restore"`` (see the module docstring). A node
    or function that the saver's and other nodes both reach counts in each part. A function
    named in an attribute but absent from the library is counted as an op of that name
    (TensorFlow runs an op when a call names one).

    Raises:
        ValueError: ``saved_model.pb`` cannot be parsed.

    Examples:
        >>> graph_ops("export/saved_model")["serving"]["Conv2D"]  # doctest: +SKIP
        'function __inference_serve_1733'
    """
    saved = _parse(Path(path))
    found: dict[str, dict[str, str]] = {part: {} for part in PARTS}
    for meta in saved.meta_graphs:
        graph = meta.graph_def
        library = {f.signature.name: f for f in graph.library.function}
        nodes = {node.name: node for node in graph.node}
        saver = {
            "save": _closure([meta.saver_def.save_tensor_name], nodes, library),
            "restore": _closure([meta.saver_def.restore_op_name], nodes, library),
        }
        saver_nodes = saver["save"][0] | saver["restore"][0]
        saver_funcs = saver["save"][1] | saver["restore"][1]
        # served: every other node, what signatures and collections (init ops) name, the
        # functions the object graph offers to Python, and functions nothing calls
        named = [t.name for sig in meta.signature_def.values()
                 for t in [*sig.inputs.values(), *sig.outputs.values()]]
        named += [v for c in meta.collection_def.values() for v in c.node_list.value]
        served = [*meta.object_graph_def.concrete_functions, *(set(library) - saver_funcs)]
        serving = _closure([n for n in nodes if n not in saver_nodes] + named, nodes, library,
                           served)
        for part, (part_nodes, part_funcs) in [*saver.items(), ("serving", serving)]:
            ops = found[part]
            for name in sorted(part_nodes):
                if nodes[name].op not in library:  # else a call, counted with the functions
                    ops.setdefault(nodes[name].op, f"graph node {name}")
            for name in sorted(part_funcs):
                if name not in library:
                    ops.setdefault(name, "called as a function")
                    continue
                for node in library[name].node_def:
                    if node.op not in library:
                        ops.setdefault(node.op, f"function {name}")
    return found


def refused_ops(path: str | Path) -> dict[str, str]:
    """``{op: where}`` for each op of a SavedModel's graph outside its part's allow-list.

    Examples:
        >>> refused_ops("export/saved_model")  # doctest: +SKIP
        {}
    """
    refused: dict[str, str] = {}
    for part, ops in graph_ops(path).items():
        for op, where in ops.items():
            if op not in PARTS[part]:
                saver = "" if part == "serving" else f" (the variables' {part} part)"
                refused.setdefault(op, where + saver)
    return refused


def check_saved_model(path: str | Path, trusted: bool = False) -> None:
    """Refuse a SavedModel whose graph holds an op outside the allow-list, unless ``trusted``.

    Call it before ``tf.saved_model.load``: loading may run the graph's initializers.

    Raises:
        UntrustedModelError: an op outside :data:`ALLOWED_OPS` (or outside
            :data:`SAVE_OPS` / :data:`RESTORE_OPS` for the variables' save / restore).
        ValueError: ``saved_model.pb`` cannot be parsed.

    Examples:
        >>> check_saved_model("export/saved_model")  # doctest: +SKIP
    """
    if trusted:
        return
    refused = refused_ops(path)
    if not refused:
        return
    (op, where), *others = sorted(refused.items())
    names = [name for name, _ in others]
    more = f" and {len(names)} more ({', '.join(names[:10])}{', ...' * (len(names) > 10)})"
    raise UntrustedModelError(
        f"{path}: the SavedModel's graph runs {op} ({where}){more if names else ''}: "
        f"{'ops' if names else 'an op'} that U-Net exports never use, which may read or write "
        "files, print or run Python. Pass --trust-model (trusted=True) only if you trust "
        "where the model came from"
    )
