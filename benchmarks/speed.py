"""Speed on this CPU: training throughput, input pipeline, inference latency and memory.

One entry point measures every contender in the same run. The host is a shared, noisy VM,
so contenders are interleaved (each repeat runs every contender once, starting from a
different one) and the best of N repeats is reported beside the median. It prints four
tables and records each section in ``benchmarks/results/speed.jsonl`` (one record per
section; ``--out FILE`` also merges them into a JSON file):

- **Host**: CPU model, its SIMD / matrix flags (avx2, avx512f, avx512_vnni, avx512_bf16,
  amx), cores, library versions, and the float32 matmul FLOP/s of TensorFlow (2048 x 2048
  products in a ``tf.function``, best repeat): the practical peak the other tables are
  compared with.
- **Training**: images/s of the train step inside ``model.fit`` on one in-memory batch of
  16, at 128 and 256 px, for every preset (``tiny``, ``f12-os2`` = the default that
  ``unet-tf train`` builds, ``f12``, ``f16``, ``classic``)
  built and compiled as ``unet_tf.train`` does with the default ``TrainConfig`` (AdamW,
  the segmentation loss, IoU metrics, ``precision="auto"``: bfloat16 compute on CPUs with
  AVX-512 BF16 or AMX, float32 elsewhere; ``jit_compile="auto"`` as a long run resolves it:
  XLA on CPUs with AVX2 but no AVX-512, see ``unet_tf.xla``) and for the keras-io
  "U-Net-like" baseline compiled as its trainer does (float32, RMSprop, cross-entropy, the
  same metrics, Keras' default of no XLA on CPUs);
  ``x keras-io`` is the ratio of images/s to the baseline's in the same run. The first
  steps, which trace
  and compile, are a warm-up; a timed block is ``--steps`` steps, or fewer once it has run
  30 s (``classic`` at 256 px takes most of a minute per step). ``GFLOP/img fwd`` is one
  image's forward pass (2 x the multiply-adds of every convolution, counted from the traced
  graph's shapes); ``% peak`` is the achieved training FLOP/s, counted as 3 x forward FLOPs
  per image, over the matmul peak: the best of the host section's matmul blocks and of one
  more matmul block per repeat, interleaved with the training blocks.
- **Input pipeline**: images/s that ``unet_tf.data.make_dataset(config, training=True)``
  delivers with its augmentation, iterated without a model: the default synthetic data and,
  from ``--data-root``, the data configs of the recipes (``recipe_pets.py``,
  ``recipe_isbi.py`` and its elastic ``paper`` variant, ``recipe_camvid.py``). ``cold`` is
  the first pass (decode, resize, fill the cache; measured once), ``warm`` later passes
  (augmentation of cached examples: what training sees after epoch 1). ``x train`` is warm
  over the images/s that the default preset trains at that size (from the training table,
  scaled by pixel count from the nearest measured size): above 1 the pipeline keeps up when
  it has the cores to itself; in training both share them.
- **Inference**: milliseconds per image, batch 1, with 1 and 2 threads, at 256 and 512 px,
  for the default preset and the keras-io baseline (both untrained: weights do not change
  the speed) in every format: Keras (``model.keras`` loaded, the model in a ``tf.function``),
  SavedModel (``serving_default`` at the model's size, so with the serving pre- and
  post-processing: scaling, softmax and argmax) and TFLite fp32 / fp16 / int8
  (``interpreter.invoke()`` of LiteRT with ``num_threads``). Every format of both models
  comes from ``unet_tf.export`` (TFLiteConverter, builtin ops only, int8 calibrated on
  representative synthetic images), one export per size, since TFLite inputs are static.
  Each cell runs in a fresh process: TF fixes its thread pools at start-up, and memory
  peaks are per process. TFLite processes import LiteRT only, as a TF-free deployment
  would. ``best`` is the fastest repeat's median, ``median`` the median of every timed
  call; ``GFLOP/s`` is the network's forward FLOPs over ``best`` (integer operations for
  int8, which may pass the float32 peak); ``load`` is loading the model plus its first
  call; ``peak RSS`` is the process's peak resident memory (``VmHWM``) and ``+model`` that
  peak minus the resident memory just before the model is loaded (after the imports).

Usage (from the repository root; the full run takes about 30 minutes on 2 idle cores)::

    nice -n 10 python -m benchmarks speed > benchmarks/results/speed.log 2>&1
    python -m benchmarks speed --only inference --repeats 5
    python -m benchmarks speed --only train --models lean,small --out saved_models/speed/t.json
    python -m benchmarks speed --quick   # smoke run, tiny sizes, under 2 minutes

``--quick`` writes to ``saved_models/speed/speed_quick.json`` unless ``--out`` is given, so
that a smoke run never replaces the measured results. Models and exports go to
``saved_models/speed/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import host, host_label, latest, peak_rss_mib, record
from benchmarks.recipe_common import ROOT, SHARED_DATA, relative_paths
from benchmarks.speed_common import (
    alternate,
    forward_flops,
    matmul_block,
    matmul_peak,
    rotated,
    rss_mib,
    time_calls,
)
from unet_tf.config import DEFAULT_PRESET  # stdlib only: no TensorFlow at import

WORK = ROOT / "saved_models" / "speed"
SECTIONS = ("train", "pipeline", "inference")
# the default first, then the earlier defaults (lean, small) and the paper's size
PRESETS = tuple(dict.fromkeys(("tiny", DEFAULT_PRESET, "f12", "f16", "classic")))
BASELINE = "keras_io"
MATMUL = "float32 matmul"  # the training section's interleaved peak (GFLOP/s)
EXPORT_FORMATS = ("savedmodel", "tflite-fp32", "tflite-fp16", "tflite-int8")
FORMATS = ("keras", *EXPORT_FORMATS)


@dataclasses.dataclass(frozen=True)
class Settings:
    train_sizes: tuple[int, ...] = (128, 256)
    train_batch: int = 16
    models: tuple[str, ...] = PRESETS  # trained beside the baseline, which always runs
    steps: int = 5  # timed train steps per contender and repeat, at most ...
    block_seconds: float = 30.0  # ... and no more once this long (classic at 256 px)
    warmup_steps: int = 2  # the first traces and compiles the train step
    repeats: int = 3
    matmul: tuple[int, int, int] = (2048, 8, 5)  # size, products per call, repeats
    pipeline_examples: int | None = None  # None: every example of each source
    pipeline_seconds: float = 1.0  # a warm block is whole epochs until this long
    inference_sizes: tuple[int, ...] = (256, 512)
    threads: tuple[int, ...] = (1, 2)
    latency_seconds: float = 2.0  # timed calls per cell and repeat: at least 5, this long
    calibration_images: int = 16  # int8 representative images (speed does not depend on it)
    export_examples: int = 40  # synthetic scenes an export draws calibration and parity from


QUICK = Settings(train_sizes=(32,), train_batch=4, steps=2, warmup_steps=1, repeats=1,
                 matmul=(512, 4, 2), pipeline_examples=16, pipeline_seconds=0.0,
                 inference_sizes=(64,), threads=(1,), latency_seconds=0.1,
                 calibration_images=2, export_examples=8)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def rel(path: Path | str) -> str:
    """A path relative to the repository root (or ../ for the shared data) when possible."""
    return relative_paths(str(path))


def class_names() -> tuple[str, ...]:
    """The synthetic data's classes: every model has these, so that the exports calibrate
    and check on synthetic data."""
    from unet_tf.data.synthetic import CLASS_NAMES

    return tuple(CLASS_NAMES)


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table, numbers right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value, digits: int = 1, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value * scale:,.{digits}f}"


# ---------------------------------------------------------------------------- models


def build_model(name: str):
    """(uncompiled Keras model, the ModelConfig its config.json records) for a contender."""
    from unet_tf import ModelConfig, build_unet, model_preset

    if name == BASELINE:
        from benchmarks.keras_io_baseline import build_keras_io_model

        # ModelConfig records classes, channels and the input multiple (16, as depth 4)
        return (build_keras_io_model(len(class_names()), 3),
                ModelConfig(num_classes=len(class_names()), input_channels=3,
                            output_stride=1))
    config = model_preset(name, num_classes=len(class_names()))
    return build_unet(config), config


def compiled_model(name: str):
    """A contender compiled as it trains: compile_model for presets, the keras-io recipe's
    RMSprop + cross-entropy for the baseline (keras_io_baseline.train_keras_io)."""
    import keras

    from unet_tf import TrainConfig, compile_model, segmentation_metrics

    if name == BASELINE:
        model, _ = build_model(name)
        model.compile(
            optimizer="rmsprop",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=segmentation_metrics(class_names()),
        )
    else:
        from unet_tf.precision import dtype_policy

        with dtype_policy(TrainConfig().precision):  # as unet_tf.train builds it
            model, _ = build_model(name)
        compile_model(model, class_names(), TrainConfig(), steps_per_epoch=100,
                      jit_compile=training_xla(name))
    return model


def training_xla(name: str) -> bool | str:
    """Whether a contender trains with XLA here: what the default TrainConfig resolves to for
    a long run (unet_tf.xla) for presets; Keras' default for the baseline, as its recipe."""
    from unet_tf import TrainConfig
    from unet_tf.xla import resolve_jit_compile

    return "auto" if name == BASELINE else resolve_jit_compile(TrainConfig().jit_compile)


def training_precision(name: str) -> str:
    """What a contender trains at on this host: the default TrainConfig's for presets."""
    from unet_tf import TrainConfig
    from unet_tf.precision import resolve_precision

    return "float32" if name == BASELINE else resolve_precision(TrainConfig().precision)


# ---------------------------------------------------------------------------- host


def measure_host(s: Settings) -> dict:
    log(f"host: {host_label(host())}; {host()['versions']}")
    n, chain, repeats = s.matmul
    peak = matmul_peak(n, chain, repeats)
    log(f"float32 matmul {n}x{n}: {peak['gflops_best']:.1f} GFLOP/s best, "
        f"{peak['gflops_median']:.1f} median of {repeats}")
    return {"matmul_peak": peak}


# ---------------------------------------------------------------------------- training


def measure_training(s: Settings, peak_gflops: float) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    class StepTimer(keras.callbacks.Callback):
        """Wall time from the first train step's start to the last one's end (fit's own
        setup and teardown left out); stops fit once a block has run block_seconds."""

        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.steps, self.seconds = batch + 1, time.perf_counter() - self.start
            if self.seconds >= s.block_seconds:
                self.model.stop_training = True

    def timed_fit(model, batches) -> float:
        """Images/s of up to s.steps train steps in one model.fit call."""
        timer = StepTimer()
        model.fit(batches, steps_per_epoch=s.steps, epochs=1, verbose=0, callbacks=[timer],
                  shuffle=False)
        return s.train_batch * timer.steps / timer.seconds

    contenders = (*s.models, BASELINE)
    matmul = matmul_block(*s.matmul[:2])

    def matmul_gflops() -> float:
        return matmul() / 1e9

    rows = []
    for size in s.train_sizes:
        log(f"training at {size} px, batch {s.train_batch}: building {', '.join(contenders)}")
        keras.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        x = rng.random((s.train_batch, size, size, 3), dtype=np.float32)
        y = rng.integers(0, len(class_names()), (s.train_batch, size, size, 1), dtype=np.int32)
        batches = tf.data.Dataset.from_tensors((x, y)).repeat()  # one batch, in memory
        models, info = {}, {}
        for name in contenders:
            model = compiled_model(name)
            flops = forward_flops(model, size, size)
            start = time.perf_counter()
            model.fit(batches, steps_per_epoch=s.warmup_steps, epochs=1, verbose=0,
                      shuffle=False)
            warmup = time.perf_counter() - start
            models[name] = model
            info[name] = {"params": int(model.count_params()), "forward_flops": flops["flops"],
                          "precision": training_precision(name),
                          "xla": bool(model.jit_compile),
                          "macs_by_op": flops["macs_by_op"], "warmup_seconds": warmup}
            log(f"  {name}: {flops['flops'] / 1e9:.2f} GFLOP/image forward, "
                f"{s.warmup_steps} warm-up steps in {warmup:.1f} s")

        # the matmul is a contender too: its best block in this alternation is the peak
        # the same spells of contention had a chance to spare (the run's first one can
        # come from a quieter minute)
        blocks = {n: functools.partial(timed_fit, models[n], batches) for n in contenders}
        rates = alternate({**blocks, MATMUL: matmul_gflops}, s.repeats, log)
        peak = max(peak_gflops, *rates[MATMUL])
        for name in contenders:
            best = max(rates[name])
            train_gflops = best * 3 * info[name]["forward_flops"] / 1e9
            rows.append({
                "model": name, "size": size, "batch_size": s.train_batch, **info[name],
                "images_per_s": rates[name], "images_per_s_best": best,
                "images_per_s_median": statistics.median(rates[name]),
                "ms_per_step_best": 1000 * s.train_batch / best,
                "train_gflops_per_s": train_gflops,
                "matmul_gflops_interleaved": rates[MATMUL],
                "matmul_gflops_peak": peak,  # the run's best: first measurement or these
                "fraction_of_matmul_peak": train_gflops / peak,
            })
        baseline = max(rates[BASELINE])
        for row in rows[-len(contenders):]:
            row["x_baseline"] = row["images_per_s_best"] / baseline
        default = rows[-len(contenders):][contenders.index(DEFAULT_PRESET)]
        log(f"  {size} px: {DEFAULT_PRESET} (default) {default['x_baseline']:.2f}x keras-io, "
            f"{100 * default['fraction_of_matmul_peak']:.0f}% of the float32 matmul peak")
        del models
        keras.backend.clear_session()
        gc.collect()
    return {"rows": rows, "steps": s.steps, "warmup_steps": s.warmup_steps,
            "repeats": s.repeats}


def training_table(section: dict) -> str:
    rows = [[r["model"] + (" (default)" if r["model"] == DEFAULT_PRESET else ""),
             r.get("precision", "float32") + (" + XLA" if r.get("xla") else ""),
             f"{r['size']}", f"{r['params'] / 1e6:.2f}",
             fmt(r["forward_flops"], 2, 1e-9), fmt(r["images_per_s_best"]),
             fmt(r["images_per_s_median"]), fmt(r.get("x_baseline"), 2),
             fmt(r["ms_per_step_best"], 0), fmt(r["train_gflops_per_s"]),
             fmt(r["fraction_of_matmul_peak"], 1, 100)]
            for r in section["rows"]]
    return table(["model", "precision", "px", "M params", "GFLOP/img fwd", "img/s best",
                  "img/s median", "x keras-io", "ms/step best", "train GFLOP/s", "% peak"], rows)


# ---------------------------------------------------------------------------- pipeline


def pipeline_sources(data_root: Path, examples: int | None) -> dict:
    """name -> (DataConfig, make_dataset keyword arguments), or a reason to skip it.

    The real-data configs are those of the recipes (recipe_pets.py, recipe_isbi.py,
    recipe_camvid.py); ISBI takes a seeded 80% of the 22 slices instead of the recipe's
    symlinked 17 (the same images, per image the same work).
    """
    from unet_tf import AugmentConfig, DataConfig

    sources: dict = {"synthetic": (DataConfig(), {"subset": "training"})}
    pets, isbi, camvid = (data_root / d for d in ("oxford_pets_sample", "isbi2012_em", "camvid"))
    if pets.is_dir():
        sources["pets"] = (DataConfig(
            spec=f"oxford-pets:{pets}", image_size=(128, 128), batch_size=16,
            validation_fraction=0.2, seed=0,
            augment=AugmentConfig(flip=True, scale=(1.0, 1.5), rotate=15.0, brightness=0.15,
                                  contrast=0.15, saturation=0.2, hue=0.02),
        ), {"subset": "training"})
    else:
        sources["pets"] = f"{rel(pets)} is absent"
    if isbi.is_dir():
        base = AugmentConfig(flip=True, vertical_flip=True, rotate90=True, scale=(1.0, 1.0),
                             brightness=0.1, contrast=0.1, crop=(256, 256))
        isbi_data = DataConfig(
            spec=f"folder:{isbi}", image_size=(512, 512), batch_size=4,
            class_names=("membrane", "interior"), mask_values=(0, 255), seed=0, augment=base)
        sources["isbi"] = (isbi_data, {"subset": "training"})
        # the recipe's "paper" variant: elastic deformation and rotations on top
        sources["isbi_elastic"] = (dataclasses.replace(
            isbi_data, augment=dataclasses.replace(base, elastic=10.0, rotate=15.0)),
            {"subset": "training"})
    else:
        sources["isbi"] = sources["isbi_elastic"] = f"{rel(isbi)} is absent"
    if camvid.is_dir():
        meta = json.loads((ROOT / "benchmarks" / "data" / "camvid.json").read_text())
        sources["camvid"] = (DataConfig(
            spec=f"folder:{camvid}", split="train", image_size=(192, 256), batch_size=8,
            seed=0, class_names=tuple(meta["class_names"]),
            mask_values=tuple(meta["mask_values"]), ignore_values=tuple(meta["ignore_values"]),
            augment=AugmentConfig(flip=True, scale=(1.0, 1.5), brightness=0.15, contrast=0.15,
                                  saturation=0.15),
        ), {})
    else:
        sources["camvid"] = f"{rel(camvid)} is absent"
    if examples:
        sources = {name: (dataclasses.replace(v[0], num_examples=examples), v[1])
                   if isinstance(v, tuple) else v for name, v in sources.items()}
    return sources


def one_pass(ds) -> int:
    """Iterate one epoch (a whole one: tf.data drops a cache left half-filled)."""
    images = 0
    for image, _ in ds:
        images += int(image.shape[0])
    return images


def default_training_rate(train: dict | None, height: int, width: int) -> tuple[float, str] | None:
    """Images/s of the default preset at height x width, scaled by pixel count from the
    measured size nearest in pixels."""
    rows = [r for r in (train or {}).get("rows", []) if r["model"] == DEFAULT_PRESET]
    if not rows:
        return None
    pixels = height * width
    row = min(rows, key=lambda r: abs(r["size"] ** 2 - pixels))
    rate = row["images_per_s_best"] * row["size"] ** 2 / pixels
    how = f"{row['size']} px" if row["size"] ** 2 == pixels else f"{row['size']} px, scaled"
    return rate, how


def measure_pipeline(s: Settings, data_root: Path, train: dict | None) -> dict:
    from unet_tf import AugmentConfig, make_dataset

    none = AugmentConfig.none()
    sources = pipeline_sources(data_root, s.pipeline_examples)
    datasets, rows = {}, {}
    for name, source in sources.items():
        if isinstance(source, str):
            log(f"pipeline {name}: skipped, {source}")
            rows[name] = {"source": name, "skipped": source}
            continue
        config, kwargs = source
        start = time.perf_counter()
        ds, src = make_dataset(config, training=True, **kwargs)
        setup = time.perf_counter() - start
        start = time.perf_counter()
        images = one_pass(ds)
        cold = images / (time.perf_counter() - start)
        size = config.augment.crop or config.image_size
        datasets[name] = ds
        rows[name] = {
            "source": name, "spec": rel(config.spec), "description": rel(src.description),
            "examples": src.size, "output_size": list(size), "batch_size": config.batch_size,
            # the augmentations switched on: what differs from none at all
            "augment": {k: v for k, v in dataclasses.asdict(config.augment).items()
                        if v != getattr(none, k)},
            "setup_seconds": setup, "cold_images_per_s": cold,
        }
        log(f"pipeline {name}: {src.size} examples, set up in {setup:.1f} s, first pass "
            f"{cold:.0f} images/s")

    def block(name: str) -> float:
        images, start = 0, time.perf_counter()
        while True:  # whole epochs until pipeline_seconds
            images += one_pass(datasets[name])
            elapsed = time.perf_counter() - start
            if elapsed >= s.pipeline_seconds:
                return images / elapsed

    rates = alternate({n: functools.partial(block, n) for n in datasets}, s.repeats, log)
    for name, values in rates.items():
        row = rows[name]
        row.update(warm_images_per_s=values, warm_images_per_s_best=max(values),
                   warm_images_per_s_median=statistics.median(values))
        consumption = default_training_rate(train, *row["output_size"])
        if consumption:
            row["small_train_images_per_s"], row["small_train_rate_from"] = consumption
            row["pipeline_over_training"] = max(values) / consumption[0]
    return {"rows": list(rows.values()), "repeats": s.repeats,
            "examples_per_source": s.pipeline_examples}


def pipeline_table(section: dict) -> str:
    rows = []
    for r in section["rows"]:
        if "skipped" in r:
            rows.append([r["source"], "skipped: " + r["skipped"], *["-"] * 6])
            continue
        h, w = r["output_size"]
        rows.append([r["source"], f"{h}x{w}", f"{r['batch_size']}", f"{r['examples']}",
                     fmt(r["cold_images_per_s"], 0), fmt(r["warm_images_per_s_best"], 0),
                     fmt(r.get("small_train_images_per_s"), 1),
                     fmt(r.get("pipeline_over_training"), 1)
                     + (f" ({r['small_train_rate_from']})" if "small_train_rate_from" in r
                        else "")])
    return table(["source", "output px", "batch", "examples", "cold img/s", "warm img/s best",
                  f"{DEFAULT_PRESET} trains img/s", "x train"], rows)


# ---------------------------------------------------------------------------- inference


def prepare_inference(s: Settings) -> list[dict]:
    """Build, save and export the default preset and the baseline at every inference size."""
    from unet_tf import DataConfig, ExportConfig, ParityThresholds, RunInfo, export
    from unet_tf.checkpoint import MODEL_FILE
    from unet_tf.data import PREPROCESSING
    from unet_tf.deploy import tflite_file_name
    from unet_tf.predictors import SAVED_MODEL_DIR

    # the parity check is not the point here (untrained weights): report, never refuse
    loose = ParityThresholds(savedmodel_agreement=0.0, fp32_agreement=0.0,
                             fp16_agreement=0.0, int8_iou_drop=1.0, dynamic_iou_drop=1.0)
    prepared = []
    for size in s.inference_sizes:
        for name in (DEFAULT_PRESET, BASELINE):
            run, out = WORK / f"{name}_{size}", WORK / f"{name}_{size}-export"
            shutil.rmtree(run, ignore_errors=True)
            run.mkdir(parents=True)
            model, config = build_model(name)
            model.save(run / MODEL_FILE)
            extra = {"architecture": "keras-io oxford_pets_image_segmentation (logits head)"}
            RunInfo(model=config, class_names=class_names(), input_size=(size, size),
                    preprocessing=dict(PREPROCESSING),
                    extra=extra if name == BASELINE else {}).save(run)
            entry = {"model": name, "size": size, "params": int(model.count_params()),
                     "forward_flops": forward_flops(model, size, size)["flops"],
                     "paths": {"keras": run / MODEL_FILE}}
            start = time.perf_counter()
            try:
                export(run, out, ExportConfig(
                    formats=EXPORT_FORMATS, parity_images=2,
                    representative_images=s.calibration_images, thresholds=loose,
                    overwrite=True),
                    data=DataConfig(image_size=(size, size), num_examples=s.export_examples))
            except Exception as exc:  # noqa: BLE001 (reported; Keras is still measured)
                entry["export_error"] = f"{type(exc).__name__}: {exc}"
                log(f"export of {name} at {size} px failed: {entry['export_error']}")
            else:
                entry["paths"]["savedmodel"] = out / SAVED_MODEL_DIR
                for variant in ("fp32", "fp16", "int8"):
                    entry["paths"][f"tflite-{variant}"] = out / tflite_file_name(variant)
                log(f"exported {name} at {size} px in {time.perf_counter() - start:.0f} s")
            prepared.append(entry)
    return prepared


def child_latency(spec: dict) -> dict:
    """In a fresh process: load one model file, time batch-1 calls, report memory."""
    import numpy as np

    fmt_, path, size, threads = spec["format"], spec["path"], spec["size"], spec["threads"]
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (1, size, size, 3)).astype(np.uint8)
    if fmt_.startswith("tflite"):
        from ai_edge_litert.interpreter import Interpreter

        base = rss_mib()
        start = time.perf_counter()
        interpreter = Interpreter(model_path=path, num_threads=threads)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]
        x = pixels.astype(inp["dtype"])  # uint8 for int8 files, float 0..255 otherwise

        def step():
            interpreter.set_tensor(inp["index"], x)
            interpreter.invoke()
            return interpreter.get_tensor(out["index"])
    else:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        if fmt_ == "keras":
            import keras

            base = rss_mib()
            start = time.perf_counter()
            model = keras.saving.load_model(path, compile=False)
            network = tf.function(lambda t: model(t, training=False))
            x = tf.constant(pixels.astype(np.float32) / 255.0)

            def step():
                return network(x).numpy()
        else:
            base = rss_mib()
            start = time.perf_counter()
            serve = tf.saved_model.load(path).signatures["serving_default"]
            x = tf.constant(pixels)

            def step():
                return serve(images=x)["mask"].numpy()
    step()
    load_ms = 1000 * (time.perf_counter() - start)
    times = time_calls(step, spec["seconds"])
    return {"ms": times, "median_ms": statistics.median(times), "load_ms": load_ms,
            "rss_before_load_mib": base, "rss_peak_mib": peak_rss_mib()}


def run_child(spec: dict) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-m", "benchmarks", "speed", "--child",
                           json.dumps(spec)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=900, check=False)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]  # the exception
        raise RuntimeError(f"exit {done.returncode}: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_inference(s: Settings) -> dict:
    cells = {}
    for entry in prepare_inference(s):
        for format_ in FORMATS:
            for threads in s.threads:
                key = f"{entry['model']} {format_} {entry['size']}px {threads}t"
                cells[key] = {"model": entry["model"], "format": format_, "size": entry["size"],
                              "threads": threads, "params": entry["params"],
                              "forward_flops": entry["forward_flops"],
                              "path": entry["paths"].get(format_),
                              "errors": [entry["export_error"]] if "export_error" in entry
                              else []}
    runs: dict[str, list[dict]] = {key: [] for key in cells}
    for repeat in range(s.repeats):
        for key in rotated(list(cells), repeat):
            cell = cells[key]
            if cell["path"] is None:  # its export failed
                continue
            try:
                runs[key].append(run_child({
                    "format": cell["format"], "path": str(cell["path"]), "size": cell["size"],
                    "threads": cell["threads"], "seconds": s.latency_seconds}))
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                cell["errors"].append(f"repeat {repeat + 1}: {exc}")
                log(f"  {key}: FAILED {exc}")
                continue
            log(f"  repeat {repeat + 1}/{s.repeats} {key}: {runs[key][-1]['median_ms']:.2f} ms")
    rows = []
    for key, cell in cells.items():
        path, done = cell.pop("path"), runs[key]
        row = {**cell, "file": rel(path) if path else None}
        if not row["errors"]:
            del row["errors"]
        if path is not None and Path(path).exists():
            files = [Path(path)] if Path(path).is_file() else Path(path).rglob("*")
            row["bytes"] = sum(p.stat().st_size for p in files if p.is_file())
        if done:
            best = min(r["median_ms"] for r in done)
            row.update(
                ms_best=best,
                ms_median=statistics.median([t for r in done for t in r["ms"]]),
                ms_repeat_medians=[r["median_ms"] for r in done],
                calls=sum(len(r["ms"]) for r in done),
                gflops_per_s=cell["forward_flops"] / best / 1e6,
                load_ms_best=min(r["load_ms"] for r in done),
                rss_peak_mib=max(r["rss_peak_mib"] for r in done),
                rss_model_mib=max(r["rss_peak_mib"] - r["rss_before_load_mib"] for r in done),
            )
        rows.append(row)
    return {"rows": rows, "repeats": s.repeats, "latency_seconds": s.latency_seconds}


def inference_table(section: dict) -> str:
    rows = []
    order = {f: i for i, f in enumerate(FORMATS)}
    for r in sorted(section["rows"], key=lambda r: (r["model"] != DEFAULT_PRESET, r["size"],
                                                     order[r["format"]], r["threads"])):
        if "ms_best" not in r:
            rows.append([r["model"], r["format"], f"{r['size']}", f"{r['threads']}",
                         "failed: " + "; ".join(r.get("errors", ["?"]))[:160], *["-"] * 6])
            continue
        rows.append([r["model"], r["format"], f"{r['size']}", f"{r['threads']}",
                     fmt(r["ms_best"], 2), fmt(r["ms_median"], 2), fmt(r["gflops_per_s"]),
                     fmt(r["load_ms_best"], 0), fmt(r["rss_peak_mib"], 0),
                     fmt(r["rss_model_mib"], 0), fmt(r.get("bytes"), 2, 1e-6)])
    return table(["model", "format", "px", "threads", "ms best", "ms median", "GFLOP/s",
                  "load ms", "peak RSS MiB", "+model MiB", "file MB"], rows)


# ---------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks speed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny sizes, 1 repeat, few steps (under 2 minutes)")
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)} "
                                       "(default: all; the host is always measured)")
    parser.add_argument("--repeats", type=int,
                        help=f"interleaved repeats, best reported (default: "
                             f"{Settings.repeats}; --quick: {QUICK.repeats})")
    parser.add_argument("--steps", type=int,
                        help=f"timed train steps per contender and repeat, fewer once a block "
                             f"has taken {Settings.block_seconds:.0f} s (default: "
                             f"{Settings.steps}; --quick: {QUICK.steps})")
    parser.add_argument("--models", help=f"comma-separated presets for the training section "
                                         f"(default: {','.join(PRESETS)}; {BASELINE} always "
                                         "runs)")
    parser.add_argument("--data-root", type=Path, default=SHARED_DATA,
                        help=f"folder holding the datasets (default: {rel(SHARED_DATA)})")
    parser.add_argument("--out", type=Path,
                        help=f"also merge the results into this JSON file (--quick: only "
                             f"there; default {rel(WORK / 'speed_quick.json')}). Every full "
                             "run is recorded in benchmarks/results/speed.jsonl")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a latency cell's process
    args = parser.parse_args(argv)
    only = args.only.split(",") if args.only else list(SECTIONS)
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"--only {args.only}: unknown section(s) {unknown}; choose from "
                     f"{','.join(SECTIONS)}")
    args.sections = [name for name in SECTIONS if name in only]
    args.models = tuple(args.models.split(",")) if args.models else None
    bad = sorted(set(args.models or ()) - set(PRESETS))
    if bad:
        parser.error(f"--models {','.join(args.models)}: unknown preset(s) {bad}; choose from "
                     f"{','.join(PRESETS)}")
    for name in ("repeats", "steps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1; got {getattr(args, name)}")
    return args


def write(path: Path, results: dict) -> None:
    """Merge ``results`` into ``path`` (sections measured in another run are kept)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update(results)
    path.write_text(json.dumps(merged, indent=1) + "\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child_latency(json.loads(args.child))))
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
    s = QUICK if args.quick else Settings()
    s = dataclasses.replace(s, repeats=args.repeats or s.repeats, steps=args.steps or s.steps,
                            models=args.models or s.models)
    # --quick is a smoke run: its results go to a scratch file, never into the records
    out = args.out or (WORK / "speed_quick.json" if args.quick else None)
    started = time.time()
    stamp = {"settings": dataclasses.asdict(s), "quick": args.quick,
             "command": " ".join(["python -m benchmarks speed",
                                  *(argv if argv is not None else sys.argv[1:])])}

    results = measure_host(s)
    peak = results["matmul_peak"]["gflops_best"]
    if out:
        write(out, {**results, **stamp, "host": host()})
    previous = json.loads(out.read_text()) if out and out.exists() else {}
    if "train" not in previous and latest("speed").get("train"):
        previous["train"] = latest("speed")["train"]["metrics"]
    train = None
    tables = {}
    for section in args.sections:
        start = time.time()
        if section == "train":
            train = measure_training(s, peak)
            data, tables[section] = train, training_table(train)
        elif section == "pipeline":
            if train is None and previous.get("train"):
                log(f"pipeline: training rates from {rel(out) if out else 'the records'} "
                    f"(written {previous['train'].get('written')})")
            data = measure_pipeline(s, args.data_root, train or previous.get("train"))
            tables[section] = pipeline_table(data)
        else:
            data = measure_inference(s)
            tables[section] = inference_table(data)
        data.update(seconds=round(time.time() - start, 1), repeats=s.repeats,
                    written=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    matmul_peak_gflops=peak)
        if out:
            write(out, {section: data})
        if not args.quick:
            record("speed", section, stamp, {**data, "matmul_peak": results["matmul_peak"]})
        print(f"\n{section} ({time.time() - start:.0f} s)\n{tables[section]}\n", flush=True)

    print(f"Host: {host_label(host())}\nfloat32 matmul peak: {peak:.1f} GFLOP/s")
    for section, text in tables.items():
        print(f"\n## {section}\n{text}")
    where = rel(out) if out else "benchmarks/results/speed.jsonl"
    print(f"\n{time.time() - started:.0f} s in all; results: {where}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
