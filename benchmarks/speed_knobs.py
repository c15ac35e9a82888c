"""Which speed knobs help training on this CPU: XLA, bfloat16 mixed precision, both.

Trains a preset (``--preset``, default: the default preset, ``unet_tf.DEFAULT_PRESET``; the
run in ``speed_knobs.json`` used ``small``, the default then) with
``unet_tf.training.compile_model`` on in-memory batches of 16 at 128 px, in one process, the
contenders interleaved (each repeat times every contender once, starting from a different
one) and the best of ``--repeats`` reported, beside a float32 and a bfloat16 matmul's FLOP/s
measured in the same run. Then it checks that a fast path does not change results: the same
seeded tiny model trained a few steps with and without it, the losses compared.

Usage (from the repository root)::

    python benchmarks/speed_knobs.py [--preset NAME] [--repeats 5] [--steps 6] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from recipe_common import ROOT
from speed_common import cpu_info, host_line, matmul_peak, versions

CONTENDERS = {  # name: (jit_compile, dtype policy)
    "float32": (False, "float32"),
    "xla": (True, "float32"),
    "bf16": (False, "mixed_bfloat16"),
    "bf16+xla": (True, "mixed_bfloat16"),
}
CLASSES = ("background", "disc", "square", "triangle")


def build(name: str, preset: str):
    import keras

    from unet_tf import TrainConfig, build_unet, compile_model, model_preset

    jit, policy = CONTENDERS[name]
    keras.config.set_dtype_policy(policy)
    try:
        model = build_unet(model_preset(preset, num_classes=len(CLASSES)))
    finally:
        keras.config.set_dtype_policy("float32")
    compile_model(model, CLASSES, TrainConfig(), steps_per_epoch=100, jit_compile=jit)
    return model


def batches(size: int, batch: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.random((batch, size, size, 3), np.float32)
    y = rng.integers(0, len(CLASSES), (batch, size, size, 1)).astype(np.int32)
    return x, y


def bf16_matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    import tensorflow as tf

    a = tf.random.normal((n, n), dtype=tf.bfloat16)
    b = tf.random.normal((n, n), dtype=tf.bfloat16)
    f = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
    f()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(4):
            f().numpy()
        best = min(best, (time.perf_counter() - start) / 4)
    return 2 * n**3 / best / 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from unet_tf import DEFAULT_PRESET

    parser.add_argument("--preset", default=DEFAULT_PRESET)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/speed_knobs.json")
    args = parser.parse_args()

    cpu, libs = cpu_info(), versions()
    print(host_line(cpu, libs), flush=True)
    peak = matmul_peak(2048, 4, 5)
    bf16_peak = bf16_matmul_gflops()
    print(f"matmul 2048: float32 {peak['gflops_best']:.1f} GFLOP/s, bfloat16 {bf16_peak:.1f}",
          flush=True)
    import tensorflow as tf

    data = tf.data.Dataset.from_tensors(batches(128, 16)).repeat()  # one in-memory batch
    models = {}
    for name in CONTENDERS:
        models[name] = build(name, args.preset)
        models[name].fit(data, epochs=1, steps_per_epoch=2, verbose=0)  # trace, compile
    times = {name: [] for name in CONTENDERS}
    names = list(CONTENDERS)
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            models[name].fit(data, epochs=1, steps_per_epoch=args.steps, verbose=0)
            times[name].append((time.perf_counter() - start) / args.steps)
    rates = {n: 16 / min(t) for n, t in times.items()}
    print("| knob | images/s (best) | x float32 |\n|---|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.1f} | {rate / rates['float32']:.2f} |", flush=True)

    # the fast paths must not change results: a tiny model, same seed, a few steps
    import keras
    import numpy as np

    losses = {}
    tiny = tf.data.Dataset.from_tensors(batches(32, 8, seed=1))
    for name in CONTENDERS:
        keras.utils.set_random_seed(0)
        model = build(name, preset="tiny")
        hist = model.fit(tiny, epochs=5, verbose=0)
        losses[name] = [round(v, 5) for v in hist.history["loss"]]
    print("tiny model, 5 epochs of one batch: losses", json.dumps(losses), flush=True)
    drift = {n: float(np.max(np.abs(np.array(v) - np.array(losses["float32"])) /
                             np.array(losses["float32"]))) for n, v in losses.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "host": {"cpu": cpu, "versions": libs}, "matmul_gflops": {
            "float32": round(peak["gflops_best"], 1), "bfloat16": round(bf16_peak, 1)},
        "images_per_second": {n: round(r, 2) for n, r in rates.items()},
        "seconds_per_step": {n: [round(v, 4) for v in t] for n, t in times.items()},
        "tiny_losses": losses, "max_relative_loss_drift": drift,
        "command": " ".join(["python", "benchmarks/speed_knobs.py", *sys.argv[1:]]),
        "preset": args.preset, "repeats": args.repeats,
        "steps": args.steps}, indent=1) + "\n")
    print(f"written {args.out.resolve().relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
