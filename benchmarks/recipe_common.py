"""Shared plumbing of the benchmark recipes: data paths, train + evaluate, result files.

Not part of the package: recipes are scripts people run from the repository root, e.g.
``python benchmarks/recipe_pets.py``. Each writes its run directories under
``saved_models/recipes/`` and a small summary to ``benchmarks/results/<recipe>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
RUNS = ROOT / "saved_models" / "recipes"


def parse_args(description: str, epochs: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-root", type=Path, default=SHARED_DATA,
                        help=f"folder holding the datasets (default: {SHARED_DATA})")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"(default: {epochs})")
    parser.add_argument("--only", help="run only this variant (comma-separated names)")
    parser.add_argument("--runs", type=Path, default=RUNS, help=f"(default: {RUNS})")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="do not train: evaluate the run directories already there")
    args = parser.parse_args()
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
    logging.getLogger("unet_tf").setLevel(logging.INFO)
    return args


def machine() -> str:
    return f"{os.cpu_count()}-core CPU ({platform.machine()}), no GPU"


def cpu() -> dict:
    """The CPU model and its vector extensions (``lscpu``)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"model": "unknown", "flags": []}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    return {
        "model": fields.get("Model name", "unknown").strip(),
        "flags": sorted(f for f in flags if f == "avx2" or f.startswith("avx512")),
    }


def evaluate_run(run: Path, name: str, **kwargs) -> dict:
    """Evaluate a run (report folder run/eval_<name>) and keep the headline numbers."""
    from unet_tf.evaluation import evaluate, format_report

    report = evaluate(run, out_dir=run / f"eval_{name}", **kwargs)
    print(f"--- {run.name} / {name}\n{format_report(report)}", flush=True)
    keep = ("data", "examples", "scored_at", "tta", "pixel_accuracy", "mean_iou", "mean_dice",
            "per_class_iou", "per_class_dice", "fit_metrics")
    return {k: report[k] for k in keep if k in report}


def run_summary(run: Path) -> dict:
    info = json.loads((run / "config.json").read_text())
    return {
        "run": str(run.relative_to(ROOT)) if run.is_relative_to(ROOT) else str(run),
        "train_seconds": info.get("train_seconds"),
        # the median epoch's training images/s (validation left out), where recorded
        "train_images_per_second": info.get("train_images_per_second"),
        "epochs": len(json.loads((run / "history.json").read_text()).get("loss", [])),
        "saved_epoch": info.get("saved_epoch"),
        "precision": info.get("precision", "float32"),  # what TrainConfig's resolved to
        "jit_compile": info.get("jit_compile", False),  # XLA, as "auto" resolved
        "num_parameters": info.get("num_parameters"),
        "train": info.get("train"),
        "augment": (info.get("data") or {}).get("augment"),
        "image_size": info.get("input_size"),
    }


def relative_paths(text: str) -> str:
    """Paths of this machine in ``text`` written relative to the repository root."""
    return text.replace(f"{ROOT}/", "").replace(f"{ROOT.parent}/", "../")


def write_results(name: str, results: dict) -> Path:
    """Merge ``results`` into benchmarks/results/<name>.json (variants run separately)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update(results)
    merged["machine"] = machine()
    merged["written"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    path.write_text(relative_paths(json.dumps(merged, indent=1)) + "\n")
    print(f"results: {path}", flush=True)
    return path
