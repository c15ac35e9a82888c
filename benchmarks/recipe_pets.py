"""Recipe: Oxford pets sample, 3-class trimap at 128 px, with the keras-io baseline beside it.

Train on a seeded 80% of ``oxford_pets_sample`` trainval (240 images), evaluate on the other
20% (60 images) that neither training nor checkpoint selection sees (the last epoch is kept).
The U-Net gets what the plain 0.49 run of issue #4 lacked: residual blocks and a fifth level
(a 4 x 4 bottleneck: telling pet from background needs the whole picture), cross-entropy +
soft Dice (Dice averages over classes, so the thin border class counts), heavier scale
augmentation plus rotations and colour, cosine decay over 100 epochs, and flip TTA scored
against the original masks. The keras-io baseline then trains on the same split for at least
the same wall time.

Variants (``--only NAME[,NAME]``): ``unet`` (the recipe), ``unet_balanced`` (the same plus
median-frequency class weights: border x2.36), ``unet_wm`` (class weights plus the U-Net
weight map on the border band), ``default`` (the recipe's data and loss on the default
preset, the one ``unet-tf train`` builds: quality per compute against the baseline, issue 12),
``default_lean`` (the same on ``f12``, with full-resolution blocks) and ``keras_io``. Every
U-Net trains at the default ``precision="auto"`` (bfloat16 on CPUs with AVX-512 BF16 or AMX,
float32 elsewhere).

Usage (from the repository root): ``python -m benchmarks recipe_pets [--only unet,keras_io]``
"""

from __future__ import annotations

import time

from benchmarks.recipe_common import evaluate_run, parse_args, run_summary, write_results
from unet_tf import DEFAULT_PRESET, AugmentConfig, DataConfig, TrainConfig, model_preset, train

NAME = "recipe_pets"
# the variants that do not train the recipe's own model (f16, residual, depth 5)
PRESETS = {"default": DEFAULT_PRESET, "default_lean": "f12"}
UNET_VARIANTS = {  # TrainConfig settings beside the recipe's
    "unet": {},
    "default": {},
    "default_lean": {},
    "unet_balanced": {"class_weights": "balanced"},
    # objects: connected components of pet (0) and background (1); the border class (2)
    # between them gets w0 * exp(-(d1 + d2)^2 / (2 sigma^2)) on top of w_c
    "unet_wm": {"class_weights": "balanced", "weight_map": True, "weight_map_classes": (0, 1),
                "weight_map_w0": 5.0},
}


def main(argv=None) -> None:
    args = parse_args(__doc__.splitlines()[0], epochs=100, argv=argv,
                      prog=f"python -m benchmarks {NAME}")
    only = set(args.only.split(",")) if args.only else {"unet", "keras_io"}
    unknown = only - set(UNET_VARIANTS) - {"keras_io"}
    if unknown:
        raise SystemExit(f"unknown variant(s) {sorted(unknown)}; "
                         f"choose from {sorted(UNET_VARIANTS) + ['keras_io']}")
    data = DataConfig(
        spec=f"oxford-pets:{args.data_root / 'oxford_pets_sample'}",
        image_size=(128, 128),
        batch_size=16,
        validation_fraction=0.2,  # the seeded 20% held out for evaluation
        seed=0,
        augment=AugmentConfig(
            flip=True, scale=(1.0, 1.5), rotate=15.0, brightness=0.15, contrast=0.15,
            saturation=0.2, hue=0.02,
        ),
    )
    train_seconds = None
    for name, extra in UNET_VARIANTS.items():
        if name not in only:
            continue
        run = args.runs / f"pets_{name}"
        if not args.evaluate_only:
            train(
                model_preset(PRESETS[name]) if name in PRESETS
                else model_preset("f16", residual=True, depth=5),
                data,
                TrainConfig(epochs=args.epochs, learning_rate=1e-3, dice_weight=1.0,
                            checkpoint="last", verbose=2, **extra),
                run,
            )
        summary = run_summary(run)
        train_seconds = max(train_seconds or 0.0, summary["train_seconds"])
        write_results(NAME, {name: {
            **summary, "preset": PRESETS.get(name, "f16, residual, depth 5"),
            # every score is against the original trimaps at their own size, on the path a
            # served model runs (logits resized back)
            "heldout": evaluate_run(run, "heldout"),
            # the headline: photos have an up, so flips only
            "heldout_flips": evaluate_run(run, "heldout_flips", tta="flips"),
            "train_subset": evaluate_run(run, "train", data_config=data, subset="training"),
        }})
    if "keras_io" in only:
        from benchmarks.keras_io_baseline import train_keras_io

        if train_seconds is None and (args.runs / "pets_unet" / "config.json").exists():
            train_seconds = run_summary(args.runs / "pets_unet")["train_seconds"]
        budget = train_seconds or 15 * 60  # as long as the U-Net recipe trained
        run = args.runs / "pets_keras_io"
        if not args.evaluate_only:
            start = time.time()
            train_keras_io(data, run, budget)
            print(f"keras-io baseline trained {time.time() - start:.0f} s", flush=True)
        write_results(NAME, {"keras_io": {
            **run_summary(run),
            "heldout": evaluate_run(run, "heldout"),
            "heldout_tta": evaluate_run(run, "heldout_tta", tta=True),
            "train_subset": evaluate_run(run, "train", data_config=data, subset="training"),
        }})


if __name__ == "__main__":
    main()
