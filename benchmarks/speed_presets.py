"""Which default model trains fastest against the keras-io baseline: widths, depth, precision.

Candidates for the preset that ``unet-tf train`` uses, each trained with
``unet_tf.training.compile_model`` on one in-memory batch of 16 at 128 and 256 px, beside the
keras-io "U-Net-like" baseline compiled as its trainer does (float32, RMSprop), in one
process, interleaved (each repeat times every contender once, starting from a different one),
best of ``--repeats``. Printed per size: images/s, the ratio to the baseline, forward GFLOP
per image and the achieved training FLOP/s (3 x forward) as a fraction of a float32 matmul
measured in the same run. bfloat16 candidates are only meaningful on CPUs with AVX-512 BF16
or AMX (elsewhere they are emulated and slow); the host line says which this one is.

Usage (from the repository root)::

    python benchmarks/speed_presets.py [--repeats 3] [--steps 5] [--sizes 128,256]
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import time
from pathlib import Path

from recipe_common import ROOT
from speed import BASELINE, class_names, compiled_model
from speed_common import alternate, cpu_info, forward_flops, host_line, matmul_peak, versions

# name: (model_preset("small", **overrides), TrainConfig.precision)
CANDIDATES = {
    "small": ({}, "float32"),
    "small bf16": ({}, "bfloat16"),
    "b12": ({"base_filters": 12}, "float32"),
    "b12 bf16": ({"base_filters": 12}, "bfloat16"),
    "d3": ({"depth": 3}, "float32"),
    "d3 bf16": ({"depth": 3}, "bfloat16"),
}


def candidate(name: str):
    from unet_tf import TrainConfig, build_unet, compile_model, model_preset
    from unet_tf.precision import dtype_policy

    if name == BASELINE:
        return compiled_model(BASELINE)
    overrides, precision = CANDIDATES[name]
    with dtype_policy(precision):
        model = build_unet(model_preset("small", num_classes=len(class_names()), **overrides))
    compile_model(model, class_names(), TrainConfig(precision=precision), steps_per_epoch=100)
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--only", help="comma-separated candidates (the baseline always runs)")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks/results/speed_presets.json")
    args = parser.parse_args()
    import keras
    import numpy as np
    import tensorflow as tf

    cpu, libs = cpu_info(), versions()
    print(host_line(cpu, libs), flush=True)
    peak = matmul_peak(2048, 8, 5)["gflops_best"]
    print(f"float32 matmul: {peak:.1f} GFLOP/s", flush=True)
    names = [n for n in CANDIDATES if not args.only or n in args.only.split(",")] + [BASELINE]
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        keras.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        x = rng.random((16, size, size, 3), dtype=np.float32)
        y = rng.integers(0, len(class_names()), (16, size, size, 1), dtype=np.int32)
        data = tf.data.Dataset.from_tensors((x, y)).repeat()
        models, flops = {}, {}
        for name in names:
            models[name] = candidate(name)
            flops[name] = forward_flops(models[name], size, size)["flops"]
            models[name].fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # trace, compile

        def block(model, data) -> float:
            start = time.perf_counter()
            model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
            return 16 * args.steps / (time.perf_counter() - start)

        rates = alternate({n: functools.partial(block, models[n], data) for n in names},
                          args.repeats, lambda m: None)
        base = max(rates[BASELINE])
        print(f"\n{size} px, batch 16\n| candidate | params | GFLOP/img fwd | images/s (best) "
              "| x keras-io | % fp32 matmul |\n|---|---|---|---|---|---|")
        for name in names:
            best = max(rates[name])
            row = {"candidate": name, "size": size, "params": int(models[name].count_params()),
                   "forward_gflops": flops[name] / 1e9, "images_per_s": rates[name],
                   "images_per_s_best": best, "x_baseline": best / base,
                   "fraction_of_matmul_peak": best * 3 * flops[name] / 1e9 / peak}
            results.append(row)
            print(f"| {name} | {row['params'] / 1e6:.2f} M | {row['forward_gflops']:.2f} | "
                  f"{best:.1f} | {row['x_baseline']:.2f} | "
                  f"{100 * row['fraction_of_matmul_peak']:.0f} |", flush=True)
        del models
        keras.backend.clear_session()
        gc.collect()
    args.out.write_text(json.dumps({
        "host": {"cpu": cpu, "versions": libs, "line": host_line(cpu, libs)},
        "matmul_gflops": round(peak, 1), "candidates": {
            n: {"overrides": o, "precision": p} for n, (o, p) in CANDIDATES.items()},
        "rows": results, "command": "python benchmarks/speed_presets.py",
        "repeats": args.repeats, "steps": args.steps}, indent=1) + "\n")
    print(f"written {args.out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
