"""Recipe: CamVid (SegNet 11 classes, void ignored), with and without class balancing.

Train on CamVid's train split (367 images) and evaluate on its val split (101 images, never
used for checkpoint selection: the last epoch is kept), at 192 x 256 (height x width; the
data is 360 x 480) against the full 360 x 480 masks, on the path a served model runs. The
classes and the void label come from ``benchmarks/data/camvid.json``. ``plain`` trains with
cross-entropy; ``balanced`` weighs each pixel by the square root of the median-frequency
class weights (Eigen & Fergus 2015, as SegNet does; the full weights let the rare classes
swamp building and car) and adds the soft Dice loss, which averages over classes, so that
the rare classes (pole, sign, fence, pedestrian, bicyclist) count.

Training runs at the default ``precision="auto"`` (bfloat16 where the CPU computes it).

Usage (from the repository root): ``python -m benchmarks recipe_camvid [--only
balanced,balanced_lean,plain]`` (default: balanced and plain)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from benchmarks.recipe_common import evaluate_run, parse_args, run_summary, write_results
from unet_tf import DEFAULT_PRESET, AugmentConfig, DataConfig, TrainConfig, model_preset, train

NAME = "recipe_camvid"
# variant -> (preset, class balancing). "balanced" is the recipe on the default preset (what
# `unet-tf train` builds); "balanced_lean" is the same on "f12" (full-resolution blocks),
# kept for comparison; "plain" drops the class weights and the Dice loss.
VARIANTS = {
    "balanced": (DEFAULT_PRESET, True),
    "balanced_lean": ("f12", True),
    "plain": (DEFAULT_PRESET, False),
}
SIDECAR = Path(__file__).resolve().parent / "data" / "camvid.json"


def main(argv=None) -> None:
    args = parse_args(__doc__.splitlines()[0], epochs=40, argv=argv,
                      prog=f"python -m benchmarks {NAME}")
    only = set(args.only.split(",")) if args.only else {"balanced", "plain"}
    unknown = sorted(only - set(VARIANTS))
    if unknown:
        raise SystemExit(f"--only {args.only}: unknown variant(s) {unknown}; "
                         f"choose from {','.join(VARIANTS)}")
    meta = json.loads(SIDECAR.read_text())
    data = DataConfig(
        spec=f"folder:{args.data_root / 'camvid'}", split="train", image_size=(192, 256),
        batch_size=8, seed=0,
        class_names=tuple(meta["class_names"]), mask_values=tuple(meta["mask_values"]),
        ignore_values=tuple(meta["ignore_values"]),
        augment=AugmentConfig(flip=True, scale=(1.0, 1.5), brightness=0.15, contrast=0.15,
                              saturation=0.15),
    )
    val = dataclasses.replace(data, split="val", augment=AugmentConfig.none())
    for name, (preset, balanced) in VARIANTS.items():
        if name not in only:
            continue
        balance = {"class_weights": "sqrt_balanced", "dice_weight": 1.0}
        run = args.runs / f"camvid_{name}"
        if not args.evaluate_only:
            train(
                model_preset(preset, residual=True), data,
                TrainConfig(epochs=args.epochs, checkpoint="last", verbose=2,
                            **(balance if balanced else {})),
                run, val_config=val,
            )
        val_report = evaluate_run(run, "val")  # the served path: native 360 x 480 masks
        write_results(NAME, {name: {
            **run_summary(run), "preset": preset,
            "val": val_report,
            "rare_class_iou": {c: val_report["per_class_iou"][c] for c in meta["rare_classes"]},
        }})


if __name__ == "__main__":
    main()
