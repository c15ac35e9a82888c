"""The SavedModel trust check: an allow-list of the ops our U-Net exports use.

Three SavedModels crafted by a security review got past the old deny-list: a dataset cache
that writes files, the Experimental alias of a TFRecord writer, and a whole-file reader.
Each must be refused before TensorFlow loads it, while everything unet_tf and Keras export
for our U-Nets is accepted.

Run as a script, this file derives the allow-lists of :mod:`unet_tf.predictors.trust`
from every U-Net variant and prints them (``python tests/test_trust.py``, a few minutes).
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from unet_tf import RunInfo, build_unet, model_preset
from unet_tf.cli import main
from unet_tf.config import DEFAULT_PRESET, MODEL_PRESETS, ModelConfig
from unet_tf.data import PREPROCESSING
from unet_tf.deploy.savedmodel import save_saved_model
from unet_tf.predictors.trust import (
    PARTS,
    UntrustedModelError,
    check_saved_model,
    graph_ops,
    refused_ops,
)

CLASSES = ("background", "disc", "square", "triangle")
SIGNATURE = tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")


def run_info(config: ModelConfig, native: bool = False) -> RunInfo:
    preprocessing = {**PREPROCESSING, **({"resolution": "native"} if native else {})}
    return RunInfo(config, CLASSES[: config.num_classes], (32, 32), preprocessing)


def outputs(images, value):
    """unet_tf's signature outputs, with ``value`` folded in so nothing is pruned."""
    probabilities = tf.zeros_like(tf.cast(images[..., :1], tf.float32)) + 0.25
    probabilities += 0.0 * tf.cast(tf.size(value), tf.float32)
    return {"mask": tf.zeros_like(images[..., 0]),
            "probabilities": tf.tile(probabilities, [1, 1, 1, 4])}


class DatasetCache(tf.Module):
    """(a) ``Dataset.cache(FILENAME)``: CacheDatasetV2 writes the cache where it is told."""

    def __init__(self, target: Path):
        super().__init__()
        self.target = str(target)

    @tf.function(input_signature=[SIGNATURE])
    def serve(self, images):
        dataset = tf.data.Dataset.from_tensors(tf.reduce_sum(tf.cast(images, tf.int64)))
        total = dataset.cache(self.target).reduce(tf.constant(0, tf.int64), lambda a, b: a + b)
        return outputs(images, total)


class RecordWriter(tf.Module):
    """(b) ExperimentalDatasetToTFRecord: chosen bytes to a chosen path."""

    def __init__(self, target: Path):
        super().__init__()
        self.target = str(target)

    @tf.function(input_signature=[SIGNATURE])
    def serve(self, images):
        dataset = tf.data.Dataset.from_tensors(tf.constant("chosen bytes"))
        tf.raw_ops.ExperimentalDatasetToTFRecord(
            input_dataset=dataset._variant_tensor, filename=self.target, compression_type="")
        return outputs(images, images)


class FileReader(tf.Module):
    """(c) WholeFileReaderV2 + ReaderReadV2 from a queue of file names: reads any file."""

    def __init__(self, target: Path):
        super().__init__()
        self.target = str(target)

    @tf.function(input_signature=[SIGNATURE])
    def serve(self, images):
        queue = tf.raw_ops.FIFOQueueV2(component_types=[tf.string], shapes=[[]], capacity=1)
        tf.raw_ops.QueueEnqueueV2(handle=queue, components=[tf.constant(self.target)])
        reader = tf.raw_ops.WholeFileReaderV2()
        _, contents = tf.raw_ops.ReaderReadV2(reader_handle=reader, queue_handle=queue)
        result = outputs(images, tf.strings.length(contents))
        return {**result, "leak": contents}


ATTACKS = {  # name: (module, the op the error names)
    "dataset-cache": (DatasetCache, "CacheDatasetV2"),
    "experimental-tfrecord-writer": (RecordWriter, "ExperimentalDatasetToTFRecord"),
    "whole-file-reader": (FileReader, "ReaderReadV2"),
}


def attack_happened(name: str, target: Path, result) -> bool:
    if name == "whole-file-reader":
        return result is not None and result["leak"].numpy() == target.read_bytes()
    return bool(list(target.parent.glob(target.name + "*")))


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_the_crafted_models_really_do_what_the_review_said(name, tmp_path):
    """Eagerly, each module writes or reads its file: the refusal below refuses something."""
    module, _ = ATTACKS[name]
    target = tmp_path / "target.txt"
    if name == "whole-file-reader":
        target.write_text("secret host name\n")
    instance = module(target)  # tf.function holds its method's instance weakly
    result = instance.serve(tf.zeros([1, 8, 8, 3], tf.uint8))
    assert attack_happened(name, target, result)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_crafted_savedmodel_is_refused_before_it_runs(name, tmp_path, capsys, monkeypatch):
    module, op = ATTACKS[name]
    target = tmp_path / "target.txt"
    if name == "whole-file-reader":
        target.write_text("secret host name\n")
    folder = tmp_path / "model"
    instance = module(target)
    tf.saved_model.save(instance, str(folder), signatures={"serving_default": instance.serve})
    run_info(model_preset("tiny", num_classes=4)).save(folder)
    image = tmp_path / "img.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    before = sorted(tmp_path.rglob("*"))

    def no_loading(*args, **kwargs):
        raise AssertionError("the SavedModel was loaded before the trust check refused it")

    monkeypatch.setattr(tf.saved_model, "load", no_loading)
    code = main(["predict", "--model", str(folder), str(image), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and op in errors[0] and "--trust-model" in errors[0], err
    assert str(folder) in errors[0]
    assert not attack_happened(name, target, None)
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, not even --out
    with pytest.raises(UntrustedModelError, match=op):
        check_saved_model(folder)
    check_saved_model(folder, trusted=True)  # the user's call


@pytest.fixture(scope="module")
def tiny_exports(tmp_path_factory) -> dict[str, Path]:
    """unet_tf's SavedModel and Keras' export of the smallest U-Net."""
    base = tmp_path_factory.mktemp("trust_exports")
    config = model_preset("tiny", base_filters=4, depth=2)
    model = build_unet(config)
    save_saved_model(model, run_info(config), base / "unet_tf")
    model.export(str(base / "keras"), format="tf_saved_model", verbose=False)
    return {"unet_tf": base / "unet_tf", "keras": base / "keras"}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["unet_tf", "keras"])
def test_our_exports_are_accepted(tiny_exports, kind):
    path = tiny_exports[kind]
    assert refused_ops(path) == {}
    check_saved_model(path)
    ops = graph_ops(path)
    assert "Conv2D" in ops["serving"] and "SaveV2" in ops["save"] and "RestoreV2" in ops[
        "restore"]


def edited_copy(source: Path, folder: Path, edit) -> Path:
    """A copy of the SavedModel ``source`` whose protobuf ``edit(meta_graph)`` changed."""
    from tensorflow.core.protobuf import saved_model_pb2

    shutil.copytree(source, folder)
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((folder / "saved_model.pb").read_bytes())
    edit(saved.meta_graphs[0])
    (folder / "saved_model.pb").write_bytes(saved.SerializeToString())
    return folder


def saver_function(meta, part: str) -> str:
    """The library function that the saver's save or restore node calls."""
    name = meta.saver_def.save_tensor_name if part == "save" else meta.saver_def.restore_op_name
    node = next(n for n in meta.graph_def.node if n.name == name.split(":")[0])
    return node.attr["f"].func.name


@pytest.mark.slow
def test_the_savers_exemption_hides_nothing(tiny_exports, tmp_path):
    """A write behind the restore op, a signature calling the save function, a call that
    names an op instead of a function: each is refused, with where it is."""

    def write_behind_restore(meta):
        write = meta.graph_def.node.add(name="sneaky_write", op="WriteFile")
        write.input.extend(["saver_filename", "saver_filename"])
        restore = next(n for n in meta.graph_def.node if n.name == meta.saver_def.restore_op_name)
        restore.input.append("^sneaky_write")

    def serve_the_save_function(meta):
        call = meta.graph_def.node.add(name="sneaky_save", op="StatefulPartitionedCall")
        call.attr["f"].func.name = saver_function(meta, "save")

    def call_an_op(meta):
        call = meta.graph_def.node.add(name="sneaky_call", op="PartitionedCall")
        call.attr["f"].func.name = "WriteFile"

    cases = {"restore": (write_behind_restore, "WriteFile", "restore part"),
             "save": (serve_the_save_function, "SaveV2", "traced_save"),
             "call": (call_an_op, "WriteFile", "called as a function")}
    for name, (edit, op, where) in cases.items():
        folder = edited_copy(tiny_exports["unet_tf"], tmp_path / name, edit)
        refused = refused_ops(folder)
        assert op in refused and where in refused[op], (name, refused)
        with pytest.raises(UntrustedModelError, match=op):
            check_saved_model(folder)


# --- the allow-lists, derived -------------------------------------------------------------
def variants() -> list[tuple[str, ModelConfig]]:
    """Every preset, also with residual, batch norm and output stride toggled and with one
    input channel; 4 base filters (the ops do not depend on the width), duplicates dropped."""
    found: dict[ModelConfig, str] = {}
    for preset, config in MODEL_PRESETS.items():
        config = dataclasses.replace(config, base_filters=4)
        for change in ({}, {"residual": not config.residual},
                       {"batch_norm": not config.batch_norm},
                       {"output_stride": 3 - config.output_stride}, {"input_channels": 1}):
            found.setdefault(dataclasses.replace(config, **change), f"{preset} {change}")
    return [(name, config) for config, name in found.items()]


def sample_variants() -> list[tuple[str, ModelConfig]]:
    """Two variants between them holding every kind of block: the default preset (stride-2
    stem, batch norm) and a residual, batch-norm-free, one-channel paper-stride tiny one."""
    tiny = dataclasses.replace(MODEL_PRESETS["tiny"], base_filters=4, residual=True,
                               batch_norm=False, output_stride=1, input_channels=1)
    default = dataclasses.replace(MODEL_PRESETS[DEFAULT_PRESET], base_filters=4)
    return [("default", default), ("tiny residual no-BN gray", tiny)]


def derived_allow_lists(folder: Path, chosen=None) -> dict[str, set[str]]:
    """{part: ops} of unet_tf's SavedModels (resized and native) and Keras' export of every
    variant (or of the ``chosen`` ones)."""
    found: dict[str, set[str]] = {part: set() for part in PARTS}
    for i, (_, config) in enumerate(chosen or variants()):
        model = build_unet(config)
        paths = [save_saved_model(model, run_info(config, native), folder / f"{i}_{native}")
                 for native in (False, True)]
        model.export(str(folder / f"{i}_keras"), format="tf_saved_model", verbose=False)
        for path in [*paths, folder / f"{i}_keras"]:
            for part, ops in graph_ops(path).items():
                found[part] |= set(ops)
            shutil.rmtree(path)
    return found


def literal(name: str, ops) -> str:
    """``NAME = frozenset({...})`` as trust.py holds it: sorted, wrapped at 96 columns."""
    body = textwrap.fill(", ".join(f'"{op}"' for op in sorted(ops)), 96,
                         initial_indent="    ", subsequent_indent="    ")
    return f"{name} = frozenset({{\n{body},\n}})"


CONSTANTS = {"serving": "ALLOWED_OPS", "save": "SAVE_OPS", "restore": "RESTORE_OPS"}


@pytest.mark.slow
def test_every_op_our_exports_use_is_allowed(tmp_path):
    """Fails after a TF / Keras upgrade or a model change that adds ops; its message holds the
    new literals for trust.py. Two variants here (~40 s); `python tests/test_trust.py`
    derives the lists from all of them (~5 minutes) and prints them."""
    derived = derived_allow_lists(tmp_path, sample_variants())
    frozen = {part: set(ops) for part, ops in PARTS.items()}
    assert all(derived[part] <= frozen[part] for part in PARTS), "\n".join(
        [f"{part}: new {sorted(derived[part] - frozen[part])}, unused "
         f"{sorted(frozen[part] - derived[part])}" for part in PARTS]
        + [literal(CONSTANTS[part], derived[part]) for part in PARTS])


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        lists = derived_allow_lists(Path(tmp))
    print(f"# {len(variants())} variants, TensorFlow {tf.__version__}", file=sys.stderr)
    for part in PARTS:
        print(literal(CONSTANTS[part], lists[part]))
