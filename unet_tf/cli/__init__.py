"""The ``unet-tf`` command line: it parses arguments and calls the library, nothing more."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from unet_tf import __version__
from unet_tf.config import MODEL_PRESETS, AugmentConfig, DataConfig, TrainConfig

logger = logging.getLogger("unet_tf")

DATA_HELP = """data specs (--data, --val-data):
  synthetic             embedded offline scenes of discs, squares, triangles (4 classes)
  tfds:NAME             tensorflow-datasets, e.g. tfds:oxford_iiit_pet (needs a download once)
  oxford-pets:DIR       the Oxford-IIIT Pet archives: DIR/images, DIR/annotations/trimaps,
                        splits from DIR/annotations/trainval.txt and test.txt
  folder:DIR            DIR/images + DIR/masks (or labels), matched by file stem, or
                        DIR/<split>/images + masks; classes from --classes/--mask-values or
                        DIR/dataset.json

examples:
  unet-tf train                                    # synthetic data, small preset
  unet-tf train --data oxford-pets:../shared/data/oxford_pets_sample --epochs 40
  unet-tf train --data folder:../shared/data/isbi2012_em \\
      --classes membrane,interior --mask-values 0,255 --vflip --rot90
  unet-tf evaluate --model saved_models/oxford_pets_sample --out report/
"""


def image_size(text: str) -> tuple[int, int]:
    """'128' -> (128, 128); '192x256' -> (192, 256) (height x width)."""
    match = re.fullmatch(r"(\d+)(?:x(\d+))?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"image size must look like 128 or 192x256; got {text}")
    h = int(match.group(1))
    return h, int(match.group(2) or h)


def int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers; got {text}") from exc


def float_pair(text: str) -> tuple[float, float]:
    """'1,1.5' -> (1.0, 1.5)."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected two numbers like 1,1.5; got {text}") from exc
    return low, high


def name_list(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def class_weights(text: str):
    if text in ("balanced", "sqrt_balanced"):
        return text
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            "class weights are 'balanced', 'sqrt_balanced' or comma-separated numbers; "
            f"got {text}") from exc


def add_data_arguments(parser: argparse.ArgumentParser, default_spec: str | None) -> None:
    g = parser.add_argument_group("data")
    g.add_argument(
        "--data", default=default_spec, metavar="SPEC",
        help="synthetic (embedded, offline), tfds:NAME, oxford-pets:DIR or folder:DIR"
        + (f" (default: {default_spec})" if default_spec else ""),
    )
    g.add_argument("--split", help="the source's split (default: its training split; "
                   "oxford-pets: trainval or test; folder: train/val subfolders or all)")
    g.add_argument("--subset", choices=["training", "validation"],
                   help="a seeded part of the split (see --validation-fraction)")
    g.add_argument("--validation-fraction", type=float, default=0.2,
                   help="fraction held out for validation (default: 0.2)")
    g.add_argument("--classes", type=name_list, help="class names in order, comma-separated")
    g.add_argument("--mask-values", type=int_list,
                   help="raw mask value of each class, comma-separated (default: 0..N-1)")
    g.add_argument("--ignore-values", type=int_list, default=(),
                   help="raw mask values with no label, e.g. 11 for CamVid void")
    g.add_argument("--num-examples", type=int, help="use only the first N examples")
    g.add_argument("--skip-bad", action="store_true",
                   help="warn about and skip unreadable or inconsistent files")
    g.add_argument("--seed", type=int, default=0, help="seed for splits, shuffling, init")
    g.add_argument("--no-download", action="store_true",
                   help="tfds: fail at once when the dataset is not prepared (offline)")


def data_config(args, **changes) -> DataConfig:
    return DataConfig(
        spec=args.data,
        split=args.split,
        validation_fraction=args.validation_fraction,
        class_names=args.classes,
        mask_values=args.mask_values,
        ignore_values=args.ignore_values,
        num_examples=args.num_examples,
        skip_bad=args.skip_bad,
        seed=args.seed,
        download=not args.no_download,
        **changes,
    )


def default_run_dir(spec: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(spec.split(":", 1)[-1]).name or spec)
    return Path("saved_models") / (name or "model")


def cmd_train(args) -> int:
    from unet_tf.config import model_preset
    from unet_tf.evaluate import evaluate, format_report
    from unet_tf.train import train

    augment = AugmentConfig(
        vertical_flip=args.vflip, rotate90=args.rot90, elastic=args.elastic,
        rotate=args.rotate, scale=args.scale, crop=args.crop,
    ) if not args.no_augment else AugmentConfig.none()
    data = data_config(args, image_size=args.image_size, batch_size=args.batch_size,
                       augment=augment)
    val = None
    if args.val_data or args.val_split:
        val = dataclasses.replace(
            data, spec=args.val_data or args.data, split=args.val_split,
            augment=AugmentConfig.none(), num_examples=None,
        )
    overrides = {}
    if args.base_filters:
        overrides["base_filters"] = args.base_filters
    if args.depth:
        overrides["depth"] = args.depth
    if args.residual:
        overrides["residual"] = True
    model = model_preset(args.preset, **overrides)
    training = TrainConfig(
        epochs=args.epochs, learning_rate=args.learning_rate, dice_weight=args.dice_weight,
        class_weights=args.class_weights, early_stopping_patience=args.patience,
        focal_weight=args.focal_weight, weight_map=args.weight_map,
        weight_map_w0=args.weight_map_w0, weight_map_sigma=args.weight_map_sigma,
        weight_map_classes=args.weight_map_classes, checkpoint=args.checkpoint,
        seed=args.seed, verbose=1 if sys.stdout.isatty() else 2,
    )
    out = Path(args.out) if args.out else default_run_dir(args.data)
    run = train(model, data, training, out, val_config=val)
    if not args.no_evaluate:
        report = evaluate(run, out_dir=run / "eval")
        print(format_report(report))
        print(f"report: {run / 'eval' / 'report.json'}")
    print(f"model: {run / 'model.keras'}")
    return 0


def cmd_evaluate(args) -> int:
    from unet_tf.evaluate import evaluate, format_report

    data = data_config(args) if args.data else None
    subset = args.subset if args.data else None
    report = evaluate(args.model, data, subset=subset, out_dir=args.out, tta=args.tta or False,
                      resolution=args.resolution)
    print(format_report(report))
    if args.out:
        print(f"report: {Path(args.out) / 'report.json'}")
    return 0


def cmd_export(args) -> int:
    from unet_tf.export import ParityThresholds, export, format_parity

    thresholds = ParityThresholds(
        savedmodel_agreement=args.min_agreement_savedmodel,
        fp32_agreement=args.min_agreement_fp32,
        fp16_agreement=args.min_agreement_fp16,
        int8_iou_drop=args.max_iou_drop_int8,
        dynamic_iou_drop=args.max_iou_drop_dynamic,
    )
    report = export(
        args.model, args.out, formats=args.formats, quantize=args.quantize,
        data=data_config(args) if args.data else None, parity_images=args.parity_images,
        representative_images=args.representative_images, thresholds=thresholds,
        overwrite=args.overwrite,
    )
    print(format_parity(report["parity"]))
    out = Path(report["out"])
    for path in sorted(out.iterdir()):
        size = sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir() else (
            path.stat().st_size)
        print(f"{path}  ({size / 1e6:.2f} MB)")
    return 0


def cmd_predict(args) -> int:
    from unet_tf.predict import Predictor, predict_files

    predictor = Predictor.from_path(args.model, num_threads=args.threads)
    for result in predict_files(predictor, args.images, args.out):
        shares = ", ".join(f"{n} {100 * v:.1f}%" for n, v in result["fractions"].items())
        print(f"{result['image']}: {shares} -> {result['mask']}, {result['overlay']}")
    return 0


def cmd_blur(args) -> int:
    from unet_tf.apps.blur import blur_files
    from unet_tf.predict import Predictor

    predictor = Predictor.from_path(args.model, num_threads=args.threads)
    for result in blur_files(predictor, args.images, args.out, keep=args.keep,
                             strength=args.strength, feather=args.feather):
        print(f"{result['image']} -> {result['result']}, {result['figure']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unet-tf", description="Train, evaluate, export and run U-Net segmentation models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a U-Net with model.fit, then evaluate it",
                       epilog=DATA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a U-Net with model.fit and write a run directory "
                       "(model.keras, config.json, history, curves.png, eval/).")
    add_data_arguments(p, default_spec="synthetic")
    p.add_argument("--val-data", metavar="SPEC",
                   help="separate validation data (default: a held-out part of --data)")
    p.add_argument("--val-split", help="split of the validation data, e.g. val or test")
    p.add_argument("--preset", default="small", choices=sorted(MODEL_PRESETS),
                   help="model size (default: small)")
    p.add_argument("--base-filters", type=int, help="override the preset's base filters")
    p.add_argument("--depth", type=int, help="override the preset's depth")
    p.add_argument("--residual", action="store_true", help="residual conv blocks")
    p.add_argument("--image-size", type=image_size, default=(128, 128),
                   help="training size, N or HxW (default: 128)")
    p.add_argument("--epochs", type=int, default=20, help="(default: 20)")
    p.add_argument("--batch-size", type=int, default=16, help="(default: 16)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="(default: 1e-3)")
    p.add_argument("--dice-weight", type=float, default=0.0,
                   help="add this times the soft Dice loss (default: 0)")
    p.add_argument("--class-weights", type=class_weights,
                   help="'balanced' (median frequency), 'sqrt_balanced' (its square root) "
                   "or one weight per class")
    p.add_argument("--patience", type=int, default=0,
                   help="early stopping patience in epochs (default: 0, off)")
    p.add_argument("--no-augment", action="store_true", help="no augmentation")
    p.add_argument("--vflip", action="store_true", help="also flip vertically")
    p.add_argument("--rot90", action="store_true", help="also rotate by multiples of 90")
    p.add_argument("--elastic", type=float, default=0.0, metavar="PIXELS",
                   help="elastic deformation as in the U-Net paper: displacement std in "
                   "pixels on a 3x3 grid (paper: 10 at 572 px; default: 0, off)")
    p.add_argument("--rotate", type=float, default=0.0, metavar="DEGREES",
                   help="random rotation by up to this angle (default: 0, off)")
    p.add_argument("--scale", type=float_pair, default=(1.0, 1.25), metavar="LOW,HIGH",
                   help="random zoom-in factor range, then crop back (default: 1,1.25)")
    p.add_argument("--crop", type=image_size, metavar="N|HxW",
                   help="train on random crops of this size (validation: whole images)")
    p.add_argument("--focal-weight", type=float, default=0.0,
                   help="add this times the focal loss (default: 0)")
    p.add_argument("--weight-map", action="store_true",
                   help="the U-Net paper's border weight map as per-pixel loss weights")
    p.add_argument("--weight-map-w0", type=float, default=10.0, help="(default: 10)")
    p.add_argument("--weight-map-sigma", type=float, default=5.0,
                   help="pixels (default: 5)")
    p.add_argument("--weight-map-classes", type=int_list,
                   help="classes whose connected components are the objects, comma-separated "
                   "(default: every class but 0)")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best",
                   help="keep the best epoch by validation mean IoU, or the last one "
                   "(honest when the validation data is the test data; default: best)")
    p.add_argument("--no-evaluate", action="store_true", help="skip the final evaluation")
    p.add_argument("--out", help="run directory (default: saved_models/<data name>)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a model: IoU, Dice, pixel accuracy",
                       epilog=DATA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Score a trained model (mean / per-class IoU and Dice, "
                       "pixel accuracy); with --out, also write report.json, confusion.png "
                       "and predictions.png. Without --data, use the run's validation data.")
    p.add_argument("--model", required=True, help="run directory or .keras file")
    add_data_arguments(p, default_spec=None)
    p.add_argument("--tta", nargs="?", const="all", choices=["all", "flips"],
                   help="average over flips and 90-degree rotations ('all', the default "
                   "when given) or over flips only ('flips': photos with an up)")
    p.add_argument("--resolution", choices=["input", "native"], default="input",
                   help="score at the model's input size, or against the original masks at "
                   "their own size (logits resized back; default: input)")
    p.add_argument("--out", help="report folder")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser(
        "export", help="export to SavedModel and TFLite, with a parity check",
        epilog=DATA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write a SavedModel (uint8 images of any size -> mask, probabilities)\n"
        "and TFLite files (builtin ops only) with config.json, labels.txt and parity.json.\n"
        "Every format is compared with the Keras model on validation images; an export\n"
        "under the thresholds fails, prints the numbers and writes nothing.\n"
        "Without --data, int8 calibration and parity use the run's own training and\n"
        "validation data.")
    p.add_argument("--model", required=True, help="run directory or .keras file")
    p.add_argument("--out", required=True, help="export directory, e.g. saved_models/NAME-export")
    p.add_argument("--formats", default="savedmodel,tflite",
                   help="savedmodel and/or tflite (default: savedmodel,tflite)")
    p.add_argument("--quantize", default="none,fp16,int8",
                   help="TFLite variants: none (fp32), fp16, int8 (full integer), dynamic "
                   "(dynamic range, float activations) (default: none,fp16,int8)")
    p.add_argument("--parity-images", type=int, default=50,
                   help="validation images for the parity check (default: 50)")
    p.add_argument("--representative-images", type=int, default=100,
                   help="training images that calibrate int8 (default: 100)")
    p.add_argument("--min-agreement-savedmodel", type=float, default=0.999,
                   help="pixel agreement with Keras (default: 0.999)")
    p.add_argument("--min-agreement-fp32", type=float, default=0.999, help="(default: 0.999)")
    p.add_argument("--min-agreement-fp16", type=float, default=0.995, help="(default: 0.995)")
    p.add_argument("--max-iou-drop-int8", type=float, default=0.01,
                   help="mean IoU vs ground truth within this of Keras' (default: 0.01)")
    p.add_argument("--max-iou-drop-dynamic", type=float, default=0.01, help="(default: 0.01)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    add_data_arguments(p, default_spec=None)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "predict", help="segment images with a .keras, SavedModel or .tflite model",
        description="Segment images at their own size; write NAME_mask.png (class indices) "
        "and NAME_overlay.png (classes in colour with a legend) for each.")
    p.add_argument("--model", required=True,
                   help="run directory, .keras file, SavedModel or export directory, .tflite")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--threads", type=int, help="TFLite interpreter threads")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "blur", help="blur the background of photos, keeping some classes sharp",
        description="Blur everything but the --keep classes, at the photo's own size and "
        "orientation; write NAME_blur.jpg/png and a side-by-side NAME_blur_figure.png.")
    p.add_argument("--model", required=True,
                   help="run directory, .keras file, SavedModel or export directory, .tflite")
    p.add_argument("--keep", required=True, type=name_list,
                   help="classes to keep sharp, comma-separated, e.g. pet")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photos")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--strength", type=float, default=0.02,
                   help="blur sigma as a fraction of the shorter side (default: 0.02)")
    p.add_argument("--feather", type=float, default=0.01,
                   help="mask edge softness, fraction of the shorter side (default: 0.01)")
    p.add_argument("--threads", type=int, help="TFLite interpreter threads")
    p.set_defaults(func=cmd_blur)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (callable in-process for tests)."""
    args = build_parser().parse_args(argv)
    # TensorFlow's C++ start-up chatter buries the output; users can still set it themselves
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(format="%(message)s")
    logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"unet-tf {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
