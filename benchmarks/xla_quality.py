"""Does XLA cost quality? The quick start (`unet-tf train`) with and without it, per seed.

XLA computes the same training steps up to float rounding (``tests/test_train.py`` compares
the losses), but 480 steps of AdamW can drift apart from there. One pair of runs (seed 0)
scored 0.545 with XLA and 0.594 without; this script repeats the pair for other seeds, so a
difference can be told from seed-to-seed noise. ``--seed`` changes the synthetic scenes, the
split, the shuffling and the initial weights; each pair shares all of them.

Runs ``unet-tf train --seed S --jit-compile on|off`` (the quick start otherwise unchanged:
the default preset, 20 epochs, 480 scenes at 128 px, the best epoch kept) one after the
other, writes the runs under ``saved_models/xla_quality/`` and a summary to
``benchmarks/results/xla_quality.json`` (merged across invocations; a finished run is
summarised again, not retrained).

Usage (from the repository root): ``python benchmarks/xla_quality.py [--seeds 1,2]``
(about 6 to 8 minutes a run on an AVX2-only 2-core host).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from recipe_common import RESULTS, ROOT, relative_paths, run_summary
from speed_common import cpu_info, host_line, versions

RUNS = ROOT / "saved_models" / "xla_quality"
SETTINGS = ("on", "off")


def summary(run) -> dict:
    history = json.loads((run / "history.json").read_text())
    val = history["val_mean_iou"]
    recorded = run_summary(run)
    return {
        "best_val_mean_iou": round(max(val), 4),
        "best_epoch": val.index(max(val)) + 1,
        "last_val_mean_iou": round(val[-1], 4),
        "last_train_loss": round(history["loss"][-1], 4),
        **{key: recorded[key] for key in ("train_images_per_second", "train_seconds",
                                          "jit_compile", "precision")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2", help="comma-separated (default: %(default)s)")
    parser.add_argument("--out", default=str(RESULTS / "xla_quality.json"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    cpu, libs = cpu_info(), versions()
    print(host_line(cpu, libs), flush=True)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    runs = results.setdefault("runs", {})
    for seed in seeds:
        for setting in SETTINGS:
            run = RUNS / f"seed{seed}_xla_{setting}"
            start = time.time()
            print(f"seed {seed}, --jit-compile {setting}: {run}", flush=True)
            if (run / "config.json").exists() and (run / "model.keras").exists():
                print("  finished before: summarised again (delete it to train anew)")
                runs.setdefault(f"seed{seed}_{setting}", {"seed": seed, "setting": setting})
                runs[f"seed{seed}_{setting}"].update(summary(run))
                continue
            subprocess.run(
                [sys.executable, "-c", "import sys; from unet_tf.cli import main; "
                 "sys.exit(main())", "train", "--seed", str(seed),
                 "--jit-compile", setting, "--out", str(run), "--no-evaluate"],
                cwd=ROOT, check=True)
            runs[f"seed{seed}_{setting}"] = {"seed": seed, "setting": setting,
                                             **summary(run),
                                             "wall_seconds": round(time.time() - start, 1)}
            print(json.dumps(runs[f"seed{seed}_{setting}"]), flush=True)
    pairs = sorted({r["seed"] for r in runs.values()})
    diffs = [runs[f"seed{s}_on"]["best_val_mean_iou"] - runs[f"seed{s}_off"]["best_val_mean_iou"]
             for s in pairs if f"seed{s}_on" in runs and f"seed{s}_off" in runs]
    results.update({
        "host": host_line(cpu, libs), "cpu": cpu, "versions": libs,
        "command": "unet-tf train --seed S --jit-compile on|off --no-evaluate",
        "xla_minus_plain_best_val_mean_iou": [round(d, 4) for d in diffs],
        "mean_difference": round(statistics.mean(diffs), 4) if diffs else None,
        "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    })
    out.write_text(relative_paths(json.dumps(results, indent=1)) + "\n")
    print(f"XLA minus plain, best validation mean IoU per seed: {diffs}")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
