"""The U-Net under mixed precision on a GPU, and its training speed against the keras-io model.

Runs the model code (``unet_tf.model`` / ``unet_tf.config``, keras + stdlib only) under any
Keras 3 backend; it was written for ``KERAS_BACKEND=jax`` on a GPU machine whose image has
JAX but no TensorFlow, so it checks the architecture, not the project's tf.data/TF training
path. Two parts:

* Precision parity: the ``lean`` preset (3 classes; the default when this ran) built from
  the same seed under the float32, mixed_float16 and mixed_bfloat16 dtype policies, trained
  ``--parity-steps`` steps (Adam 1e-3, ``train_on_batch``) on one fixed random batch whose
  masks are the argmax of the image's channels; the loss curves are compared with float32's
  and the logits' dtype is checked (float32 under every policy). On JAX a float32 run at
  ``highest`` matmul precision is added, since JAX's default float32 on a GPU may use TF32.
* Training speed: lean float32 / mixed_float16 / mixed_bfloat16 against the keras-io pets
  model (``benchmarks/keras_io_baseline.py``, RMSprop) in float32 / mixed_float16, at each
  ``--sizes`` x ``--batches``, with ``model.fit`` on an in-memory batch repeated by a
  generator (the data stays on the device). Each (size, batch) group compiles every
  contender once, then times ``--repeats`` rounds of every contender, interleaved, each
  round starting from a different one; the best round is reported as images/s, and
  lean / keras-io at the same precision. Timings end on the last loss read back as a float
  (JAX dispatches asynchronously).

Results go to ``$OUT/gpu_check.json`` (``benchmarks/results/gpu_check.json`` when OUT is
unset), rewritten after every group; markdown tables are printed. A group is skipped if the
``--budget-s`` wall-clock budget would be overrun.

Usage (from the repository root)::

    KERAS_BACKEND=jax python benchmarks/gpu_check.py
    # a seconds-long smoke test on a CPU:
    python benchmarks/gpu_check.py --sizes 32 --batches 2 --steps 2 --repeats 1 \\
        --parity-size 32 --parity-batch 2 --parity-steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
UNET = "lean"  # the unet_tf preset measured (--unet)


def contenders(unet: str) -> tuple[tuple[str, str], ...]:
    """(model, dtype policy) pairs, in the order of the tables."""
    return ((unet, "float32"), (unet, "mixed_float16"), (unet, "mixed_bfloat16"),
            ("keras_io", "float32"), ("keras_io", "mixed_float16"))


CONTENDERS = contenders(UNET)
SHORT = {"float32": "f32", "mixed_float16": "f16", "mixed_bfloat16": "bf16"}
NUM_CLASSES = 3


def host_info() -> dict:
    """Backend, versions and device name."""
    import keras

    info = {"backend": keras.backend.backend(), "keras": keras.__version__,
            "python": sys.version.split()[0]}
    if info["backend"] == "jax":
        import jax

        device = jax.devices()[0]
        info.update(jax=jax.__version__, device=f"{device.platform}: {device.device_kind}",
                    default_matmul_precision=str(
                        getattr(jax.config, "jax_default_matmul_precision", "?")))
    elif info["backend"] == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        info.update(tensorflow=tf.__version__, device=f"GPU x{len(gpus)}" if gpus else "CPU")
    else:
        info["device"] = "?"
    return info


def host_line(info: dict) -> str:
    framework = " ".join(f"{k} {info[k]}" for k in ("jax", "tensorflow") if k in info)
    return (f"device {info['device']}; keras {info['keras']} ({info['backend']} backend); "
            f"{framework}; python {info['python']}")


def batch(size: int, batch_size: int, seed: int = 0):
    """A random image batch in [0, 1] and masks = the argmax of its channels, as tensors."""
    import keras
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.random((batch_size, size, size, 3), dtype=np.float32)
    masks = images.argmax(-1).astype("int32")
    return keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(masks)


def build(name: str, policy: str, seed: int = 0):
    """A compiled model of ``name`` built under the dtype policy ``policy`` from ``seed``."""
    import keras
    from keras_io_baseline import build_keras_io_model  # keras + stdlib at import

    from unet_tf.config import model_preset
    from unet_tf.model import build_unet

    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        if name != "keras_io":
            model = build_unet(model_preset(name, num_classes=NUM_CLASSES))
            optimizer = keras.optimizers.Adam(1e-3)
        else:
            model = build_keras_io_model(NUM_CLASSES)
            optimizer = keras.optimizers.RMSprop()
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def parity(args) -> tuple[dict, dict]:
    """Loss curves of the seeded lean model under each policy; the trained models."""
    import keras

    x, y = batch(args.parity_size, args.parity_batch, seed=1)
    runs = [(policy, policy, None) for policy in POLICIES]
    if keras.backend.backend() == "jax" and not args.no_highest:
        runs.append(("float32_highest", "float32", "highest"))
    results, models = {}, {}
    for label, policy, precision in runs:
        start = time.perf_counter()
        model = build(UNET, policy)
        try:
            if precision:
                import jax

                with jax.default_matmul_precision(precision):
                    losses = [float(model.train_on_batch(x, y))
                              for _ in range(args.parity_steps)]
            else:
                losses = [float(model.train_on_batch(x, y)) for _ in range(args.parity_steps)]
                models[policy] = model
        except Exception as error:  # keep the other runs (and the speed part)
            if label == "float32":
                raise
            results[label] = {"policy": policy, "error": f"{type(error).__name__}: {error}"[:500]}
            print(f"parity {label} failed: {error!r}"[:500], flush=True)
            continue
        optimizer = model.optimizer
        results[label] = {
            "policy": policy,
            "matmul_precision": precision or "default",
            "losses": [round(v, 6) for v in losses],
            "final_loss": round(losses[-1], 6),
            "logits_dtype": str(model.outputs[0].dtype),
            "compute_dtype": model.layers[1].dtype_policy.compute_dtype,
            "optimizer": type(optimizer).__name__,
            "seconds": round(time.perf_counter() - start, 1),
        }
        if hasattr(optimizer, "dynamic_scale"):
            results[label]["final_loss_scale"] = float(
                keras.ops.convert_to_numpy(optimizer.dynamic_scale))
    reference = results["float32"]["losses"]
    for result in results.values():
        if "error" in result:
            continue
        diffs = [abs(a - b) for a, b in zip(result["losses"], reference, strict=True)]
        result["max_abs_diff_vs_float32"] = round(max(diffs), 6)
        result["final_abs_diff_vs_float32"] = round(diffs[-1], 6)
    return results, models


def run_fit(model, data, steps: int) -> float:
    """Train ``steps`` steps on ``data`` repeated; seconds, after the results are back."""
    import keras

    def repeat():
        while True:
            yield data

    start = time.perf_counter()
    history = model.fit(repeat(), steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    float(history.history["loss"][-1])  # waits for the last step (JAX is asynchronous)
    keras.ops.convert_to_numpy(model.trainable_weights[-1])
    return time.perf_counter() - start


def speed_group(models: dict, size: int, batch_size: int, args) -> list[dict]:
    """Compile, then time every contender ``args.repeats`` times, interleaved."""
    data = batch(size, batch_size, seed=2)
    steps = args.steps or max(5, args.images // batch_size)
    rows = {}
    for key in CONTENDERS:
        start = time.perf_counter()
        run_fit(models[key], data, args.warmup)
        rows[key] = {"model": key[0], "policy": key[1], "size": size, "batch": batch_size,
                     "steps": steps, "compile_s": round(time.perf_counter() - start, 2),
                     "seconds": []}
    for r in range(args.repeats):
        order = CONTENDERS[r % len(CONTENDERS):] + CONTENDERS[:r % len(CONTENDERS)]
        for key in order:
            rows[key]["seconds"].append(round(run_fit(models[key], data, steps), 4))
    for row in rows.values():
        best = min(row["seconds"])
        row["images_per_s"] = round(steps * batch_size / best, 1)
        row["step_ms"] = round(1000 * best / steps, 2)
    return list(rows.values())


def ratios(speed: list[dict]) -> list[dict]:
    """lean / keras-io images/s at the same precision, size and batch."""
    index = {(r["model"], r["policy"], r["size"], r["batch"]): r["images_per_s"] for r in speed}
    out = []
    for (model, policy, size, batch_size), lean in index.items():
        other = index.get(("keras_io", policy, size, batch_size))
        if model == UNET and other:
            out.append({"size": size, "batch": batch_size, "policy": policy,
                        UNET: lean, "keras_io": other, "ratio": round(lean / other, 2)})
    return out


def tables(report: dict) -> str:
    lines = ["| policy | logits dtype | final loss | max abs diff vs float32 | final abs diff |",
             "| --- | --- | ---: | ---: | ---: |"] if report["parity"] else []
    for label, p in report["parity"].items():
        if "error" in p:
            lines.append(f"| {label} | failed: {p['error'][:80]} | | | |")
            continue
        lines.append(f"| {label} | {p['logits_dtype']} | {p['final_loss']:.4f} | "
                     f"{p['max_abs_diff_vs_float32']:.4f} | {p['final_abs_diff_vs_float32']:.4f} |")
    lines += ["", "| size | batch | " + " | ".join(f"{m} {SHORT[p]}" for m, p in CONTENDERS)
              + f" | {UNET}/keras-io f32 | {UNET}/keras-io f16 |",
              "| --- | ---: |" + " ---: |" * (len(CONTENDERS) + 2)]
    groups = sorted({(r["size"], r["batch"]) for r in report["speed"]},
                    key=lambda g: (g[1], g[0]))
    for size, batch_size in groups:
        cells = {(r["model"], r["policy"]): r["images_per_s"] for r in report["speed"]
                 if (r["size"], r["batch"]) == (size, batch_size)}
        ratio = {r["policy"]: r["ratio"] for r in report["ratios"]
                 if (r["size"], r["batch"]) == (size, batch_size)}
        lines.append(f"| {size} | {batch_size} | "
                     + " | ".join(f"{cells.get(k, float('nan')):.0f}" for k in CONTENDERS)
                     + f" | {ratio.get('float32', float('nan')):.2f}x"
                     + f" | {ratio.get('mixed_float16', float('nan')):.2f}x |")
    return "\n".join(lines)


def main() -> None:
    global UNET, CONTENDERS  # one preset per run, read by the helpers above
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--images", type=int, default=960, help="images per timed round")
    parser.add_argument("--steps", type=int, default=0, help="steps per round (overrides)")
    parser.add_argument("--warmup", type=int, default=2, help="steps of the compiling call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parity-size", type=int, default=128)
    parser.add_argument("--parity-batch", type=int, default=16)
    parser.add_argument("--parity-steps", type=int, default=20, help="0 skips the parity part")
    parser.add_argument("--no-highest", action="store_true",
                        help="skip the float32 run at 'highest' matmul precision (JAX)")
    parser.add_argument("--budget-s", type=float, default=250.0,
                        help="skip a group that would end past this many seconds")
    parser.add_argument("--unet", default=UNET, help="the unet_tf preset (default: lean)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    UNET, CONTENDERS = args.unet, contenders(args.unet)
    began = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    out = args.out or (Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT")
                       else ROOT / "benchmarks" / "results" / "gpu_check.json")

    import keras

    info = host_info()
    print(host_line(info), flush=True)
    report = {"host": info, "args": {k: str(v) if isinstance(v, Path) else v
                                     for k, v in vars(args).items()},
              "params": {}, "parity": {}, "speed": [], "ratios": [], "skipped": []}
    report["args"]["out"] = out.name  # no machine paths in committed results

    def save() -> None:
        report["elapsed_s"] = round(time.perf_counter() - began, 1)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")

    report["parity"], models = parity(args) if args.parity_steps > 0 else ({}, {})
    for label, p in report["parity"].items():
        if "error" in p:
            continue
        print(f"parity {label}: final loss {p['final_loss']:.4f}, max |diff| vs float32 "
              f"{p['max_abs_diff_vs_float32']:.4f}, logits {p['logits_dtype']}, "
              f"{p['seconds']} s", flush=True)
    save()
    models = {(UNET, policy): model for policy, model in models.items()}
    for key in CONTENDERS:
        if key not in models:
            models[key] = build(*key)
    report["params"] = {UNET: models[UNET, "float32"].count_params(),
                        "keras_io": models["keras_io", "float32"].count_params()}
    report["output_dtypes"] = {f"{m} {p}": str(models[m, p].outputs[0].dtype)
                               for m, p in CONTENDERS}
    print(f"parameters: {report['params']}; logits dtypes: {report['output_dtypes']}",
          flush=True)

    last = 0.0
    for batch_size in args.batches:
        for size in args.sizes:
            elapsed = time.perf_counter() - began
            if last and elapsed + 1.5 * last > args.budget_s:
                report["skipped"].append({"size": size, "batch": batch_size,
                                          "why": f"budget ({elapsed:.0f} s elapsed)"})
                print(f"skipped {size} px batch {batch_size}: budget", flush=True)
                continue
            start = time.perf_counter()
            try:
                rows = speed_group(models, size, batch_size, args)
            except Exception as error:  # e.g. out of memory: keep the other groups
                report["skipped"].append({"size": size, "batch": batch_size,
                                          "why": f"{type(error).__name__}: {error}"[:500]})
                print(f"failed {size} px batch {batch_size}: {error!r}"[:500], flush=True)
                continue
            last = time.perf_counter() - start
            report["speed"] += rows
            report["ratios"] = ratios(report["speed"])
            save()
            print(f"{size} px batch {batch_size} ({last:.0f} s): " + ", ".join(
                f"{r['model']} {SHORT[r['policy']]} {r['images_per_s']:.0f} img/s "
                f"(compile {r['compile_s']:.0f} s)" for r in rows), flush=True)
    keras.mixed_precision.set_dtype_policy("float32")
    save()
    print()
    print(host_line(info))
    print(tables(report))
    print(f"\nwrote {out} ({report['elapsed_s']} s)")


if __name__ == "__main__":
    main()
