"""Which SavedModels may run: a scan of the graph for ops with side effects.

A SavedModel is a program. Its graph may read and write files, print, or call back into
Python, and some of it runs as soon as it is loaded (resource initializers). A ``.keras``
file loaded with ``safe_mode`` holds no code and a ``.tflite`` file with builtin ops holds
arithmetic only, but a SavedModel from elsewhere is refused when its graph holds an op of
:data:`SIDE_EFFECT_OPS`, unless the user says it is trusted (``--trust-model``). The
save / restore functions that every SavedModel carries for its variables are exempt: TF
calls them with its own file names, and the serving signatures cannot reach them.

Example:
    >>> "WriteFile" in SIDE_EFFECT_OPS and "Conv2D" not in SIDE_EFFECT_OPS
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# Files, checkpoints, printing and logging, Python callbacks, reading data, the network.
SIDE_EFFECT_OPS = frozenset({
    "WriteFile", "ReadFile", "MatchingFiles", "DeleteFile", "RecursivelyCreateDir",
    "Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice",
    "MergeV2Checkpoints", "ShardedFilename", "ShardedFilespec",
    "Print", "PrintV2", "WriteScalarSummary", "WriteImageSummary",
    "WriteHistogramSummary", "WriteAudioSummary", "WriteGraphSummary", "WriteRawProtoSummary",
    "WriteSummary", "CreateSummaryFileWriter", "CreateSummaryDbWriter", "ImportEvent",
    "FlushSummaryWriter", "CloseSummaryWriter", "SummaryWriter",
    "PyFunc", "PyFuncStateless", "EagerPyFunc",
    "TFRecordDataset", "TFRecordDatasetV2", "FixedLengthRecordDataset",
    "FixedLengthRecordDatasetV2", "TextLineDataset", "LMDBDataset", "SqlDataset",
    "CSVDataset", "CSVDatasetV2", "SnapshotDataset", "SnapshotDatasetV2", "SaveDataset",
    "SaveDatasetV2", "LoadDataset", "DatasetToTFRecord", "ExperimentalSqlDataset",
    "LoadAndRemapMatrix", "InitializeTableFromTextFile", "InitializeTableFromTextFileV2",
    "ImmutableConst", "DecodeProtoV2", "EncodeProto", "RpcCall", "Rpc", "TryRpc",
    "CollectiveBcastSend", "CollectiveBcastRecv", "_Send", "_Recv", "_HostSend", "_HostRecv",
})


class UntrustedModelError(ValueError):
    """A SavedModel whose graph holds ops with side effects, not marked as trusted."""


def _func_names(node) -> Iterable[str]:
    """Names of the functions a node calls (``f``, ``then_branch``, ``body``, lists ...)."""
    for value in node.attr.values():
        if value.HasField("func"):
            yield value.func.name
        for func in value.list.func:
            yield func.name


def side_effect_ops(path: str | Path) -> dict[str, str]:
    """{op: where it is} for each op of :data:`SIDE_EFFECT_OPS` in a SavedModel's graph.

    Raises:
        ValueError: ``saved_model.pb`` cannot be parsed.
    """
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    pb = Path(path) / "saved_model.pb"
    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(pb.read_bytes())
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise ValueError(f"{pb}: not a SavedModel protobuf ({exc})") from exc
    found: dict[str, str] = {}
    for meta in saved.meta_graphs:
        graph, library = meta.graph_def, {f.signature.name: f for f in
                                          meta.graph_def.library.function}
        nodes = {node.name: node for node in graph.node}
        # the variables' save / restore: the nodes that saver_def names and all they reach
        saver = {meta.saver_def.save_tensor_name, meta.saver_def.restore_op_name}
        todo = [name.lstrip("^").split(":")[0] for name in saver if name]
        exempt_nodes: set[str] = set()
        while todo:
            name = todo.pop()
            if name in exempt_nodes or name not in nodes:
                continue
            exempt_nodes.add(name)
            todo += [i.lstrip("^").split(":")[0] for i in nodes[name].input]
        exempt_funcs = reachable(
            {f for n in exempt_nodes for f in _func_names(nodes[n])}, library)
        for node in graph.node:
            if node.name not in exempt_nodes and node.op in SIDE_EFFECT_OPS:
                found.setdefault(node.op, f"graph node {node.name}")
        for name, func in library.items():
            if name in exempt_funcs:
                continue
            for node in func.node_def:
                if node.op in SIDE_EFFECT_OPS:
                    found.setdefault(node.op, f"function {name}")
    return found


def reachable(names: set[str], library: dict) -> set[str]:
    """The functions in ``names`` and every function they call, transitively."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen or name not in library:
            continue
        seen.add(name)
        todo += [f for node in library[name].node_def for f in _func_names(node)]
    return seen


def check_saved_model(path: str | Path, trusted: bool = False) -> None:
    """Refuse a SavedModel whose graph has side effects, unless it is ``trusted``."""
    if trusted:
        return
    found = side_effect_ops(path)
    if found:
        op, where = sorted(found.items())[0]
        more = f" (and {len(found) - 1} more: {sorted(found)[1:5]})" if len(found) > 1 else ""
        raise UntrustedModelError(
            f"{path}: the SavedModel's graph runs {op} ({where}){more}, an op that touches "
            "files, prints or runs Python; unet_tf exports never do. Pass --trust-model "
            "(trusted=True) only if you trust where it came from"
        )
