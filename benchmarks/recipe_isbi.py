"""Recipe: ISBI 2012 EM membranes, with and without the U-Net paper's weight map + elastic.

Train on slices 0-16 of ``isbi2012_em`` and evaluate on slices 17-21 (never used for
training or checkpoint selection: the last epoch is kept), at the native 512 x 512. Both
variants train on random 256 px crops with flips and 90-degree rotations; ``paper`` adds the
paper's border weight map (w0 = 10, sigma = 5 px, w_c = median-frequency class weights) as
per-pixel loss weights and its elastic deformation (3 x 3 grid, 10 px) plus small rotations.
``elastic`` is the ablation: the paper's augmentation without the weight map. The headline is
the pixel error (1 - pixel accuracy) and the membrane IoU.

The split is made of symbolic links under ``saved_models/recipes/isbi_split`` (the data stays
in ``../shared/data``).

Training runs at the default ``precision="auto"`` (bfloat16 where the CPU computes it).

Usage (from the repository root): ``python -m benchmarks recipe_isbi [--only plain,paper,elastic]``
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from benchmarks.recipe_common import evaluate_run, parse_args, run_summary, write_results
from unet_tf import AugmentConfig, DataConfig, TrainConfig, model_preset, train

NAME = "recipe_isbi"
TRAIN_SLICES = range(0, 17)
TEST_SLICES = range(17, 22)


def make_split(source: Path, target: Path) -> Path:
    """train/ and val/ folders of symlinks to the slices (images/ and masks/)."""
    for split, slices in (("train", TRAIN_SLICES), ("val", TEST_SLICES)):
        for kind in ("images", "masks"):
            folder = target / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in slices:
                link = folder / f"{i:02d}.png"
                if not link.exists():
                    link.symlink_to((source / kind / f"{i:02d}.png").resolve())
    return target


def main(argv=None) -> None:
    args = parse_args(__doc__.splitlines()[0], epochs=300, argv=argv,
                      prog=f"python -m benchmarks {NAME}")
    only = set(args.only.split(",")) if args.only else {"plain", "paper", "elastic"}
    root = make_split(args.data_root / "isbi2012_em", args.runs / "isbi_split")
    base = AugmentConfig(
        flip=True, vertical_flip=True, rotate90=True, scale=(1.0, 1.0), brightness=0.1,
        contrast=0.1, crop=(256, 256),
    )
    data = DataConfig(
        spec=f"folder:{root}", split="train", image_size=(512, 512), batch_size=4,
        class_names=("membrane", "interior"), mask_values=(0, 255), seed=0, augment=base,
    )
    val = dataclasses.replace(data, split="val", augment=AugmentConfig.none())
    variants = {
        "plain": (data, TrainConfig(epochs=args.epochs, checkpoint="last", verbose=2)),
        "paper": (
            dataclasses.replace(data, augment=dataclasses.replace(base, elastic=10.0,
                                                                  rotate=15.0)),
            TrainConfig(epochs=args.epochs, checkpoint="last", verbose=2, weight_map=True,
                        weight_map_classes=(1,), class_weights="balanced"),
        ),
        # ablation: the paper's augmentation without the weight map
        "elastic": (
            dataclasses.replace(data, augment=dataclasses.replace(base, elastic=10.0,
                                                                  rotate=15.0)),
            TrainConfig(epochs=args.epochs, checkpoint="last", verbose=2),
        ),
    }
    for name, (train_data, train_config) in variants.items():
        if name not in only:
            continue
        run = args.runs / f"isbi_{name}"
        if not args.evaluate_only:
            train(model_preset("f16"), train_data, train_config, run, val_config=val)
        test = evaluate_run(run, "test")
        write_results(NAME, {name: {
            **run_summary(run),
            "test": test,
            "pixel_error": 1.0 - test["pixel_accuracy"],
            "membrane_iou": test["per_class_iou"]["membrane"],
            "test_tta": evaluate_run(run, "test_tta", tta=True),
        }})


if __name__ == "__main__":
    main()
