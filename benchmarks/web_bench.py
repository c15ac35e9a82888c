"""The exported model in a browser tab: mask agreement and latency, page against Python.

Trains a U-Net (the "f16" preset, 128 px) on ``../shared/data/oxford_pets_sample`` when it
is there, else on the built-in synthetic shapes (or takes ``--export DIR``), exports fp16 and
int8 TFLite files, writes the browser page (:func:`unet_tf.web.write_web`) and opens it in
headless Chromium with LiteRT.js. For each file it measures

- agreement of the page's class mask with the Python LiteRT predictor's, on three photos at
  their own size (PNG copies, so that both sides decode the same pixels);
- latency in the page: median of ``--runs`` runs of the model (set input, run, read output)
  with LiteRT.js WASM, 1 and 2 threads (cross-origin isolated page, threaded build), and 1
  thread without isolation (the single-threaded build a plain static host gets);
- the same with the Python LiteRT interpreter (``ai_edge_litert``), 1 and 2 threads;
- the page's whole pipeline for one photo (resize in, model, logits out, argmax).

It also saves a screenshot of the page (background blur of the first photo) for the README.
This is the one place the page's latency is measured; tests/test_web.py checks its masks and
thread counts only.

Usage (from the repository root; about 5 minutes on 2 cores; needs Chromium and the test
extra's playwright; LiteRT.js comes from :func:`unet_tf.web.runtime_dir`, downloaded once
into the user cache)::

    nice -n 10 python -m benchmarks web_bench > benchmarks/results/web_bench.log 2>&1
    python -m benchmarks web_bench --export saved_models/pets-export  # an existing export

Records the results in ``benchmarks/results/web_bench.jsonl`` (case ``web_latency``) and
writes ``docs/web_page.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.harness import ROOT, host, host_label, record

PETS = ROOT.parent / "shared" / "data" / "oxford_pets_sample"


def train_and_export(work: Path, epochs: int) -> tuple[Path, str]:
    import unet_tf

    if (PETS / "images").is_dir():
        data, source = unet_tf.DataConfig(spec=f"oxford-pets:{PETS}", image_size=(128, 128),
                                          batch_size=16), "Oxford pets sample"
    else:
        data, source = unet_tf.DataConfig(spec="synthetic", num_examples=256,
                                          image_size=(128, 128)), "synthetic shapes"
    run = unet_tf.train(unet_tf.model_preset("f16"), data,
                        unet_tf.TrainConfig(epochs=epochs, verbose=0), work / "run")
    unet_tf.export(run, work / "export", unet_tf.ExportConfig(
        formats=("tflite-fp16", "tflite-int8"), parity_images=20, representative_images=60))
    return work / "export", source


def photos(work: Path, class_names: list[str]) -> list[Path]:
    """Three photos as PNG: the last pets images by name, or synthetic scenes."""
    folder = work / "photos"
    folder.mkdir(exist_ok=True)
    out = []
    if (PETS / "images").is_dir() and "pet" in class_names:
        for path in sorted((PETS / "images").glob("*.jpg"))[-3:]:
            out.append(folder / f"{path.stem}.png")
            Image.open(path).convert("RGB").save(out[-1])
        return out
    from unet_tf.data.synthetic import make_scene

    for seed, (h, w) in ((11, (300, 240)), (12, (375, 500)), (13, (131, 97))):
        image, _ = make_scene(seed, size=max(h, w))
        out.append(folder / f"scene_{seed}.png")
        Image.fromarray(image[:h, :w]).save(out[-1])
    return out


def chromium_version(binary: str) -> str:
    try:
        return subprocess.run([binary, "--version"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def measure(web: Path, export: Path, name: str, images: list[Path], runs: int) -> dict:
    from benchmarks.browser import PageSession, litert_latency
    from unet_tf import Predictor

    predictor = Predictor.from_path(export / name)
    result: dict = {"agreement": {}}
    with PageSession(web, isolate=True) as session:
        session.open(name)
        for photo in images:
            mask = session.segment(photo)
            reference = predictor.predict(np.asarray(Image.open(photo).convert("RGB")))
            result["agreement"][photo.name] = round(float(np.mean(mask == reference)), 6)
        first = session.segment(images[0])  # warm now; its step timings below
        result["page_pipeline_ms"] = {k: round(v, 2) for k, v in session.timings().items()}
        result["page_pipeline_ms"]["photo_size"] = list(first.shape)
        bench = session.benchmark(runs=runs, threads=(1, 2))
        result["page_wasm_ms"] = {str(e["threads"]): round(e["median_ms"], 3) for e in bench}
        assert not session.errors, session.errors
    with PageSession(web, isolate=False) as session:
        session.open(name)
        session.segment(images[0])
        bench = session.benchmark(runs=runs, threads=(1,))
        result["page_wasm_not_isolated_ms"] = {"1": round(bench[0]["median_ms"], 3)}
    python = litert_latency(export / name, threads=(1, 2), runs=runs)
    result["python_litert_ms"] = {str(k): round(v, 3) for k, v in python.items()}
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks web_bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--export", type=Path, help="an export directory with .tflite files")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--screenshot", type=Path, default=ROOT / "docs" / "web_page.png")
    parser.add_argument("--out", type=Path,
                        help="also write the report to this JSON file (it is recorded in "
                             "benchmarks/results/web_bench.jsonl either way)")
    args = parser.parse_args(argv)

    from benchmarks.browser import PageSession, find_chromium
    from unet_tf.web import runtime_dir, write_web

    start = time.time()
    work = Path(tempfile.mkdtemp(prefix="web_bench_"))
    export = args.export
    if export is None:
        export, source = train_and_export(work, args.epochs)
    config = json.loads((export / "config.json").read_text())
    if args.export is not None:  # its data spec, without this machine's paths
        kind, _, where = config.get("data", {}).get("spec", "unknown").partition(":")
        source = f"{kind}:{Path(where).name}" if where else kind
    names = [n for n in ("model_fp16.tflite", "model_int8.tflite")
             if n in config.get("export", {}).get("tflite", {})]
    web = write_web(export, model=names, out=work / "web")
    images = photos(work, config["class_names"])

    results = {}
    for name in names:
        results[name] = measure(web, export, name, images, args.runs)
        print(name, json.dumps(results[name], indent=1), flush=True)

    with PageSession(web) as session:  # the README's picture: the first photo, blurred
        session.open(names[-1])
        session.segment(images[0])
        keep = next((n for n in config["class_names"] if n.lower() != "background"), None)
        session.show("blur", keep=keep)
        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        session.screenshot(args.screenshot)

    chromium = find_chromium()
    report = {
        "browser": chromium_version(chromium),
        "litertjs": json.loads((runtime_dir() / "core" / "package.json").read_text())["version"],
        "load_average": [round(v, 1) for v in os.getloadavg()],  # other jobs on the machine
        "model": {"config": config["model"], "input_size": config["input_size"],
                  "parameters": config.get("num_parameters"), "trained_on": source,
                  "val_mean_iou": config.get("best_metrics", {}).get("val_mean_iou")},
        "runs": args.runs,
        "note": "median ms of one model run (set input, run, read output) at the training "
                "size; page: LiteRT.js WASM in headless Chromium; python: ai_edge_litert",
        "results": results,
        "seconds": round(time.time() - start, 1),
    }
    settings = {k: report.pop(k) for k in ("browser", "litertjs", "model", "runs", "note")}
    record("web_bench", "web_latency", settings, report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**settings, **report}, indent=2) + "\n")
    print(f"\n{host_label(host())}, {settings['browser']}, LiteRT.js {settings['litertjs']}")
    print("| file | agreement (min of 3) | page 1 thread | page 2 threads | page, not isolated "
          "| Python 1 thread | Python 2 threads |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {min(r['agreement'].values()):.2%} | {r['page_wasm_ms']['1']:.2f} ms "
              f"| {r['page_wasm_ms']['2']:.2f} ms | {r['page_wasm_not_isolated_ms']['1']:.2f} ms "
              f"| {r['python_litert_ms']['1']:.2f} ms | {r['python_litert_ms']['2']:.2f} ms |")
    if args.export is None:
        print(f"the trained run and its export are in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.screenshot.relative_to(ROOT)} "
          f"in {report['seconds']:.0f} s")


if __name__ == "__main__":
    main()
