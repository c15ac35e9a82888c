"""Benchmark: fine-tuning from a shipped model against training from scratch (issue 26).

Target: CamVid street scenes (11 classes, void ignored; ``../shared/data/camvid``), a task the
shipped ``pets`` model never saw (3 classes: pet, background, border). For each number of
labelled target images (the first 5, 20 and all 367 of CamVid's train split) two runs train
for the same number of optimizer steps at the same settings:

- ``scratch``: a fresh U-Net of the same architecture as ``pets`` (its config.json's);
- ``pets``: ``TrainConfig(init="pets", freeze_encoder_epochs=...)``: the pets model's weights,
  a new 11-class head, the encoder frozen for the first 10% of the steps.

Both are scored on CamVid's val split (101 images, never trained on; the last epoch is kept)
with :func:`unet_tf.evaluate`, the same path ``unet-tf evaluate`` runs. Results are recorded
in ``benchmarks/results/finetune_bench.jsonl`` and plotted in ``docs/finetune.png``.

Usage (from the repository root): ``python -m benchmarks finetune_bench [--counts 5,20,all]
[--steps 200] [--init pets]``; ~3-5 min per run on a 2-core AVX2 CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil

from benchmarks.harness import flat, latest
from benchmarks.recipe_common import ROOT, RUNS, SHARED_DATA, run_summary, write_results
from unet_tf import AugmentConfig, DataConfig, TrainConfig, evaluate, load_model, train

NAME = "finetune_bench"
SIDECAR = ROOT / "benchmarks" / "data" / "camvid.json"
BATCH = 8
VAL_DURING_TRAINING = 4  # val images logged per epoch (curves only; the score uses all 101;
# the 5-image runs have an epoch per step, so more would cost more than the training)


def target_data(count: int | None) -> tuple[DataConfig, DataConfig, DataConfig]:
    """(training, per-epoch validation, scoring) data: CamVid at the recipe's 192 x 256."""
    meta = json.loads(SIDECAR.read_text())
    data = DataConfig(
        spec=f"folder:{SHARED_DATA / 'camvid'}", split="train", image_size=(192, 256),
        batch_size=BATCH, seed=0, num_examples=count,
        class_names=tuple(meta["class_names"]), mask_values=tuple(meta["mask_values"]),
        ignore_values=tuple(meta["ignore_values"]),
        augment=AugmentConfig(flip=True, scale=(1.0, 1.5), brightness=0.15, contrast=0.15,
                              saturation=0.15),
    )
    score = dataclasses.replace(data, split="val", augment=AugmentConfig.none(),
                                num_examples=None)
    return data, dataclasses.replace(score, num_examples=VAL_DURING_TRAINING), score


def plot(results: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for start, style in (("scratch", "o--"), ("init", "s-")):
        rows = sorted((r["images"], r["mean_iou"]) for r in results.values()
                      if isinstance(r, dict) and r.get("start") == start)
        if rows:
            ax.plot(*zip(*rows, strict=True), style, label=start)
    ax.set_xscale("log")
    ax.set_xlabel("labelled CamVid training images")
    ax.set_ylabel("mean IoU, CamVid val (101)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks {NAME}",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="5,20,all", help="(default: %(default)s)")
    parser.add_argument("--steps", type=int, default=200, help="(default: %(default)s)")
    parser.add_argument("--init", default="pets", help="(default: %(default)s)")
    parser.add_argument("--rerun", action="store_true",
                        help="train cases recorded at these --steps again (default: skip them, "
                        "so an interrupted benchmark resumes)")
    args = parser.parse_args(argv)
    _, info = load_model(args.init)
    results = {}
    for text in args.counts.split(","):
        count = None if text == "all" else int(text)
        data, val, score = target_data(count)
        for start in ("scratch", "init"):
            images = count or 367
            epochs = math.ceil(args.steps / math.ceil(images / BATCH))
            config = TrainConfig(
                epochs=epochs, checkpoint="last", verbose=2, dice_weight=1.0,
                class_weights="sqrt_balanced", init=args.init if start == "init" else None,
                freeze_encoder_epochs=max(1, epochs // 10) if start == "init" else 0)
            run = RUNS / f"finetune_{start}_{text}"
            key = f"{start}_{text}"
            if not args.rerun and flat(latest(NAME).get(key, {})).get("steps") == args.steps:
                print(f"--- {key}: recorded already (--rerun trains it again)", flush=True)
                continue
            if args.rerun and run.exists():
                shutil.rmtree(run)
            train(info.model, data, config, run, val_config=val)
            report = evaluate(run, score)
            results[key] = {**run_summary(run), "start": start, "init": config.init,
                            "images": images, "steps": args.steps,
                            "mean_iou": report["mean_iou"],
                            "per_class_iou": report["per_class_iou"]}
            write_results(NAME, {key: results[key]})
            print(f"--- {key}: mean IoU {report['mean_iou']:.4f}", flush=True)
    plot({case: flat(entry) for case, entry in latest(NAME).items()},
         ROOT / "docs" / "finetune.png")


if __name__ == "__main__":
    main()
