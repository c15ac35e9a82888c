"""Size, latency and accuracy of every export format, on the Oxford pets sample.

Trains a U-Net on ``../shared/data/oxford_pets_sample`` (or takes ``--model``), exports it to
a SavedModel and to fp32 / fp16 / int8 / dynamic-range TFLite files, and prints a table:

- file size;
- latency per image, batch 1, at the training size, with 1 and 2 CPU threads: the network
  alone (Keras: the model in a ``tf.function``; SavedModel: its serving signature, which
  also resizes; TFLite: ``interpreter.invoke()`` with the LiteRT interpreter). Each thread
  count runs in its own process, since TensorFlow fixes its thread pools at start-up;
- ``predict()`` of a whole 500x375 photo (resize, network, logits resized back), 2 threads;
- mean IoU against the ground truth on the validation images at their own size, and pixel
  agreement with the Keras model (the export's parity check).

Usage (from the repository root; about 15 minutes on 2 cores)::

    nice -n 10 python -m benchmarks export_bench > benchmarks/results/export_bench.log 2>&1
    python -m benchmarks export_bench --model saved_models/pets  # an existing run

Prints the table and records it in ``benchmarks/results/export_bench.jsonl``
(``python -m benchmarks tables`` writes it into docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import ROOT, host, host_label, record

DATA = ROOT.parent / "shared" / "data" / "oxford_pets_sample"


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else (
        path.stat().st_size)


def measure_latency(path: str, threads: int, runs: int) -> dict:
    """Runs in a fresh process: median milliseconds of the network and of predict()."""
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from unet_tf import Predictor

    predictor = Predictor.from_path(path, num_threads=threads)
    h, w = predictor.input_size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if predictor.format == "keras":
        model = predictor.model
        x = tf.constant(image[None].astype("float32") / 255.0)
        network = tf.function(lambda t: model(t, training=False))
        step = lambda: network(x).numpy()  # noqa: E731
    elif predictor.format == "savedmodel":
        images = tf.constant(image[None])
        step = lambda: predictor._serve(images=images)["mask"].numpy()  # noqa: E731
    else:
        pixels = predictor.pixels(image)
        step = lambda: predictor.logits(pixels)  # noqa: E731

    def median_ms(fn, n):
        for _ in range(3):
            fn()
        times = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            times.append(1000 * (time.perf_counter() - start))
        return statistics.median(times)

    photo = rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)
    return {"network_ms": median_ms(step, runs),
            "predict_ms": median_ms(lambda: predictor.predict(photo), max(5, runs // 5))}


def latency(path: Path, threads: int, runs: int) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "export_bench", "--latency", str(Path(path).resolve()),
         "--threads", str(threads), "--runs", str(runs)],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode:
        raise RuntimeError(f"latency run for {path} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks export_bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="existing run directory (default: train one)")
    parser.add_argument("--out", default=str(ROOT / "saved_models" / "export_bench"),
                        help="where the run and the export go (default: saved_models/...)")
    parser.add_argument("--preset", default="f16", help="model preset (default: f16)")
    parser.add_argument("--image-size", type=int, default=128, help="(default: 128)")
    parser.add_argument("--epochs", type=int, default=30, help="(default: 30)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs (default: 50)")
    parser.add_argument("--variants", default="fp32,fp16,int8,dynamic",
                        help="TFLite variants (default: fp32,fp16,int8,dynamic)")
    parser.add_argument("--parity-images", type=int, default=60,
                        help="validation images for IoU and agreement (default: 60, all)")
    parser.add_argument("--latency", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.latency:  # child process: one format, one thread count
        print(json.dumps(measure_latency(args.latency, args.threads, args.runs)))
        return 0

    import logging

    import unet_tf
    from unet_tf import DataConfig, ExportConfig, ParityThresholds, TrainConfig, model_preset
    from unet_tf.deploy import format_parity, tflite_file_name

    logging.basicConfig(format="%(message)s", level=logging.INFO)
    out = Path(args.out)
    run = Path(args.model) if args.model else out / "run"
    if not args.model:
        if not DATA.is_dir():
            print(f"{DATA} is absent; pass --model RUN_DIR", file=sys.stderr)
            return 2
        start = time.time()
        unet_tf.train(
            model_preset(args.preset),
            DataConfig(spec=f"oxford-pets:{DATA}", image_size=(args.image_size,) * 2,
                       batch_size=16),
            TrainConfig(epochs=args.epochs, verbose=2), run)
        print(f"trained in {time.time() - start:.0f} s")
    export_dir = out / "export"
    # Loose thresholds here: the benchmark reports the numbers whatever they are; the
    # tests assert the strict defaults.
    loose = ParityThresholds(0.0, 0.0, 0.0, 1.0, 1.0)
    variants = args.variants.split(",")
    config = ExportConfig(formats=("savedmodel", *(f"tflite-{v}" for v in variants)),
                          parity_images=args.parity_images, thresholds=loose, overwrite=True)
    report = unet_tf.export(run, export_dir, config)
    parity = report["parity"]
    print(format_parity(parity))
    strict = ParityThresholds()
    rows = [("Keras (.keras)", run / "model.keras", "keras", None),
            ("SavedModel", export_dir / "saved_model", "savedmodel", "savedmodel")]
    for q in variants:
        label = {"dynamic": "dynamic range"}.get(q, q)
        rows.append((f"TFLite {label}", export_dir / tflite_file_name(q), q, f"tflite-{q}"))

    results = []
    for label, path, _, key in rows:
        lat = {t: latency(path, t, args.runs) for t in (1, 2)}
        entry = parity["formats"][key] if key else None
        ok = None
        if key:  # the strict defaults, which the benchmark itself did not enforce
            metric, limit = strict.check(key)
            drop = abs(entry["mean_iou_vs_truth"] - parity["keras"]["mean_iou_vs_truth"])
            ok = entry["agreement"] >= limit if metric == "agreement" else drop <= limit
        results.append({
            "format": label,
            "file": str(path.relative_to(out.parent) if path.is_relative_to(out.parent)
                        else path),
            "mb": dir_size(path) / 1e6,
            "ms_1_thread": lat[1]["network_ms"],
            "ms_2_threads": lat[2]["network_ms"],
            "predict_ms_2_threads": lat[2]["predict_ms"],
            "mean_iou": (entry or {}).get("mean_iou_vs_truth",
                                          parity["keras"]["mean_iou_vs_truth"]),
            "agreement": entry["agreement"] if entry else 1.0,
            "passes_strict_parity": ok,
        })
        print(results[-1], flush=True)

    config = json.loads((run / "config.json").read_text())
    machine = host_label(host())
    size = config["input_size"]
    lines = [
        f"Model: {config['model']['depth']}-level U-Net, {config['model']['base_filters']} "
        f"base filters ({config.get('num_parameters', '?')} parameters), trained at "
        f"{size[0]}x{size[1]} on the Oxford pets sample; validation mean IoU and agreement "
        f"on {parity['images']} validation images at their own size. Machine: {machine}.",
        "",
        "| format | size (MB) | ms/image, 1 thread | ms/image, 2 threads | predict() 500x375, "
        "2 threads (ms) | mean IoU | agreement with Keras | strict parity |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        check = "-" if r["passes_strict_parity"] is None else (
            "pass" if r["passes_strict_parity"] else "FAIL")
        lines.append(
            f"| {r['format']} | {r['mb']:.2f} | {r['ms_1_thread']:.1f} | {r['ms_2_threads']:.1f} "
            f"| {r['predict_ms_2_threads']:.1f} | {100 * r['mean_iou']:.2f} "
            f"| {100 * r['agreement']:.2f}% | {check} |")
    table = "\n".join(lines)
    print(table)
    settings = {"model": config["model"], "num_parameters": config.get("num_parameters"),
                "input_size": size, "variants": variants, "runs": args.runs,
                "command": " ".join(["python -m benchmarks export_bench",
                                     *(argv if argv is not None else sys.argv[1:])])}
    record("export_bench", "export_bench", settings, {"results": results, "parity": parity})
    return 0


if __name__ == "__main__":
    sys.exit(main())
