"""Shared plumbing of the benchmark recipes: data paths, train + evaluate, recording results.

Not part of the package: recipes are suites people run from the repository root, e.g.
``python -m benchmarks recipe_pets``. Each writes its run directories under
``saved_models/recipes/`` and one record per variant to ``benchmarks/results/<recipe>.jsonl``
(:mod:`benchmarks.harness`).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from benchmarks.harness import RESULTS, ROOT, host, record, split

__all__ = ["RESULTS", "ROOT", "RUNS", "SETTING_KEYS", "SHARED_DATA", "cpu", "evaluate_run",
           "parse_args", "relative_paths", "run_summary", "write_results"]

SHARED_DATA = ROOT.parent / "shared" / "data"
RUNS = ROOT / "saved_models" / "recipes"
# keys of a variant's result that say what was run; the rest are its metrics
SETTING_KEYS = frozenset({
    "run", "preset", "epochs", "saved_epoch", "precision", "jit_compile", "num_parameters",
    "train", "augment", "image_size", "note", "start", "init", "images", "steps", "recipe",
    "command", "dev"})


def parse_args(description: str, epochs: int, argv=None, prog: str | None = None
               ) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--data-root", type=Path, default=SHARED_DATA,
                        help=f"folder holding the datasets (default: {SHARED_DATA})")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"(default: {epochs})")
    parser.add_argument("--only", help="run only this variant (comma-separated names)")
    parser.add_argument("--runs", type=Path, default=RUNS, help=f"(default: {RUNS})")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="do not train: evaluate the run directories already there")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
    logging.getLogger("unet_tf").setLevel(logging.INFO)
    return args


def cpu() -> dict:
    """The CPU model and its vector extensions, from :func:`benchmarks.harness.host`."""
    found = host()
    return {"model": found["cpu"],
            "flags": [f for f in found["flags"] if f == "avx2" or f.startswith("avx512")]}


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


def write_results(name: str, results: dict) -> None:
    """Record every variant of ``results`` (``{variant: result}``) as a record of suite
    ``name``: the keys of :data:`SETTING_KEYS` as its settings, the rest as its metrics."""
    for case, result in results.items():
        settings, metrics = split(result, SETTING_KEYS)
        record(name, case, settings, metrics)
