"""Where a training step of the default preset spends its time: each convolution, batch norm.

Issue 12 asks for 60% of a float32 matmul's FLOP/s while training the default preset; on an
AVX2-only host it reaches about a third. This benchmark says why, in two parts, in one run:

- **Per convolution**: every ``Conv2D`` / ``Conv2DTranspose`` of the default preset
  (``unet-tf train``'s model) timed alone at ``--size`` px, batch 16, forward and backward
  (kernel and input gradients; the first layer's input needs none), each in a
  ``tf.function`` under the default ``precision="auto"``, best of ``--repeats`` calls.
  Printed: its resolution and channels, milliseconds, GFLOP/s (3x forward FLOPs, 2x for the
  first layer) as a fraction of the same run's float32 matmul, and its share of the summed
  convolution time. Their sum is set against one whole ``model.fit`` step: the rest is
  batch norm, ReLU, pooling, concatenation, loss, metrics and the optimizer.
- **Batch norm**: whole ``model.fit`` steps (blocks of ``--steps`` with ``fit``'s set-up, one
  in-memory batch, contenders interleaved, best of ``--repeats``) of the default preset with
  Keras' ``BatchNormalization`` (Keras 3 computes it unfused: moments, then normalise), with
  TensorFlow's fused kernel (``FusedBatchNormV3``, which oneDNN implements; a subclass
  defined here, checked to give the same training-mode outputs), and without batch norm,
  beside the keras-io baseline.

Usage (from the repository root; about 5 minutes on 2 idle cores)::

    python benchmarks/speed_layers.py [--size 128] [--repeats 3] [--steps 5]
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

from recipe_common import ROOT
from speed import BASELINE, class_names, compiled_model
from speed_common import alternate, cpu_info, forward_flops, host_line, matmul_peak, versions
from speed_knobs import batches

BATCH = 16


def fused_batch_norm_class():
    """A ``keras.layers.BatchNormalization`` whose training-mode call is FusedBatchNormV3."""
    import keras
    import tensorflow as tf

    class FusedBatchNormalization(keras.layers.BatchNormalization):
        def call(self, inputs, training=None, mask=None):
            if not training:
                return super().call(inputs, training=training)
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, tf.cast(self.gamma, "float32"), tf.cast(self.beta, "float32"),
                epsilon=self.epsilon, is_training=True)
            # the kernel returns the Bessel-corrected variance; Keras keeps the biased one
            n = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], "float32")
            variance = variance * (n - 1.0) / n
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
            return y

    return FusedBatchNormalization


def variant(name: str):
    """A compiled contender: the default preset with Keras / fused / no batch norm, or the
    keras-io baseline."""
    import keras

    from unet_tf import DEFAULT_PRESET, TrainConfig, build_unet, compile_model, model_preset
    from unet_tf.precision import dtype_policy

    if name == BASELINE:
        return compiled_model(BASELINE)
    if name == "keras batch norm":
        return compiled_model(DEFAULT_PRESET)
    config = model_preset(DEFAULT_PRESET, num_classes=len(class_names()),
                          batch_norm=name != "no batch norm")
    with dtype_policy(TrainConfig().precision):
        model = build_unet(config)
        if name == "fused batch norm":
            fused = fused_batch_norm_class()
            model = keras.models.clone_model(model, clone_function=lambda layer: (
                fused.from_config(layer.get_config())
                if isinstance(layer, keras.layers.BatchNormalization)
                else layer.__class__.from_config(layer.get_config())))
    compile_model(model, class_names(), TrainConfig(), steps_per_epoch=100)
    return model


def fused_matches(size: int) -> float:
    """Largest difference between the Keras and the fused layer's training-mode outputs."""
    import keras
    import numpy as np

    x = np.random.default_rng(0).normal(2.0, 3.0, (BATCH, size, size, 12)).astype("float32")
    plain, fused = keras.layers.BatchNormalization(), fused_batch_norm_class()()
    return float(np.max(np.abs(plain(x, training=True) - fused(x, training=True))))


def conv_layers(model, size: int) -> list[tuple]:
    """(layer, input shape at ``size`` px, batch 16, is-first) of every convolution."""
    import keras
    import numpy as np

    convs = [layer for layer in model.layers
             if isinstance(layer, keras.layers.Conv2D | keras.layers.Conv2DTranspose)]
    probe = keras.Model(model.input, [layer.input for layer in convs])
    shapes = probe(np.zeros((1, size, size, model.input.shape[-1]), "float32"))
    return [(layer, (BATCH, *shape.shape[1:]), layer.input is model.input)
            for layer, shape in zip(convs, shapes, strict=True)]


def time_conv(layer, shape, first: bool, repeats: int) -> dict:
    """Best forward + backward time of a fresh copy of ``layer`` on a batch of ``shape``."""
    import keras
    import tensorflow as tf

    copy = layer.__class__.from_config(layer.get_config())
    x = tf.Variable(tf.random.normal(shape, seed=0))
    copy.build(shape)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            y = copy(tf.cast(x, copy.compute_dtype))
            loss = tf.reduce_sum(tf.cast(y, "float32"))
        wrt = copy.trainable_weights if first else [x, *copy.trainable_weights]
        return tape.gradient(loss, wrt)

    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    kh, kw = copy.kernel_size
    cin, cout = shape[-1], copy.filters
    if isinstance(copy, keras.layers.Conv2DTranspose):  # k*k*cout MACs per input pixel
        h, w = shape[1:3]
    else:  # k*k*cin MACs per output pixel
        h, w = shape[1] // copy.strides[0], shape[2] // copy.strides[1]
    forward = 2 * BATCH * h * w * kh * kw * cin * cout
    return {"name": layer.name, "input": list(shape), "filters": cout,
            "kernel": [kh, kw], "seconds_best": min(times),
            "flops": forward * (2 if first else 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/speed_layers.json")
    args = parser.parse_args()
    import keras
    import tensorflow as tf

    from unet_tf import DEFAULT_PRESET, TrainConfig
    from unet_tf.precision import dtype_policy, resolve_precision

    cpu, libs = cpu_info(), versions()
    print(host_line(cpu, libs), flush=True)
    peak = matmul_peak(2048, 8, 5)["gflops_best"]
    precision = resolve_precision(TrainConfig().precision)
    print(f"float32 matmul: {peak:.1f} GFLOP/s; {DEFAULT_PRESET} trains in {precision} here",
          flush=True)

    keras.utils.set_random_seed(0)
    data = tf.data.Dataset.from_tensors(batches(args.size, BATCH)).repeat()  # in memory
    names = ["keras batch norm", "fused batch norm", "no batch norm", BASELINE]
    models = {name: variant(name) for name in names}
    for model in models.values():
        model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # trace, compile

    def block(model) -> float:
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
        return (time.perf_counter() - start) / args.steps

    step_seconds = alternate({n: functools.partial(block, models[n]) for n in names},
                             args.repeats, lambda m: print(m, flush=True))
    best = {n: min(t) for n, t in step_seconds.items()}
    flops = {n: forward_flops(models[n], args.size, args.size)["flops"] for n in names}
    difference = fused_matches(args.size)

    with dtype_policy(TrainConfig().precision):
        layers = [time_conv(layer, shape, first, args.repeats)
                  for layer, shape, first in conv_layers(models["keras batch norm"], args.size)]
    conv_total = sum(r["seconds_best"] for r in layers)
    step = best["keras batch norm"]
    print(f"\nPer convolution, {args.size} px, batch {BATCH}, forward + backward, "
          f"{precision}\n| layer | px | channels in -> out | ms | GFLOP/s | % fp32 matmul "
          "| share of conv time |\n|---|---:|---|---:|---:|---:|---:|")
    for r in layers:
        rate = r["flops"] / r["seconds_best"] / 1e9
        r.update(gflops_per_s=rate, fraction_of_matmul_peak=rate / peak,
                 share_of_conv_time=r["seconds_best"] / conv_total)
        print(f"| {r['name']} | {r['input'][1]} | {r['input'][-1]} -> {r['filters']} | "
              f"{1000 * r['seconds_best']:.1f} | {rate:.1f} | "
              f"{100 * rate / peak:.0f}% | {100 * r['share_of_conv_time']:.0f}% |")
    conv_flops = sum(r["flops"] for r in layers)
    print(f"| all convolutions | | | {1000 * conv_total:.0f} | "
          f"{conv_flops / conv_total / 1e9:.1f} | {100 * conv_flops / conv_total / 1e9 / peak:.0f}%"
          f" | 100% |\n| whole model.fit step | | | {1000 * step:.0f} | "
          f"{3 * flops['keras batch norm'] * BATCH / step / 1e9:.1f} | "
          f"{100 * 3 * flops['keras batch norm'] * BATCH / step / 1e9 / peak:.0f}% | |")

    base = BATCH / best[BASELINE]
    print(f"\nBatch norm, whole model.fit steps, {args.size} px, batch {BATCH} "
          f"(fused vs Keras training-mode outputs: max difference {difference:.2g})\n"
          "| variant | ms/step (best) | images/s | x keras-io | % fp32 matmul |\n"
          "|---|---:|---:|---:|---:|")
    rows = []
    for n in names:
        rate = BATCH / best[n]
        row = {"variant": n, "seconds_per_step": step_seconds[n], "images_per_s_best": rate,
               "x_baseline": rate / base, "forward_gflops": flops[n] / 1e9,
               "fraction_of_matmul_peak": 3 * flops[n] * rate / 1e9 / peak}
        rows.append(row)
        print(f"| {n} | {1000 * best[n]:.0f} | {rate:.1f} | {row['x_baseline']:.2f} | "
              f"{100 * row['fraction_of_matmul_peak']:.0f}% |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "host": {"cpu": cpu, "versions": libs, "line": host_line(cpu, libs)},
        "matmul_gflops": round(peak, 1), "precision": precision, "preset": DEFAULT_PRESET,
        "size": args.size, "batch": BATCH, "repeats": args.repeats, "steps": args.steps,
        "convolutions": layers, "convolution_seconds": conv_total,
        "fit_step_seconds": step, "batch_norm": rows,
        "fused_max_difference": difference,
        "command": "python benchmarks/speed_layers.py"}, indent=1) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
