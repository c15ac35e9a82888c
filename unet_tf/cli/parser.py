"""The ``unet-tf`` argument parser: one function per subcommand, flags grouped by meaning.

Standard library only (``unet-tf --help`` does not import TensorFlow); each subcommand's
``func`` is its handler in :mod:`unet_tf.cli.commands`.
"""

from __future__ import annotations

import argparse
import dataclasses

from unet_tf import __version__
from unet_tf.cli.arguments import (
    AUGMENT,
    DATA,
    DATA_HELP,
    TRAIN,
    add_data_arguments,
    add_model_io_arguments,
    add_tile_arguments,
    class_weights,
    float_pair,
    fraction,
    image_size,
    int_list,
    name_list,
    non_negative_float,
    port,
    positive_float,
    positive_int,
)
from unet_tf.cli.commands import (
    cmd_blur,
    cmd_evaluate,
    cmd_export,
    cmd_instances,
    cmd_models,
    cmd_predict,
    cmd_serve_web,
    cmd_train,
    cmd_tune,
)
from unet_tf.config import (
    DEFAULT_PRESET,
    JIT_COMPILE,
    MODEL_PRESETS,
    OUTPUT_FORMATS,
    PRECISIONS,
    STRATEGIES,
    ExportConfig,
    ParityThresholds,
)

EXPORT = ExportConfig()


def build_parser() -> argparse.ArgumentParser:
    """The ``unet-tf`` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="unet-tf", description="Train, evaluate, export and run U-Net segmentation models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also show TensorFlow's own start-up log lines")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_command in (add_train, add_evaluate, add_export, add_predict, add_blur,
                        add_instances, add_tune, add_models, add_serve_web):
        add_command(sub)
    return parser


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a U-Net with model.fit, then evaluate it",
                       epilog=DATA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a U-Net with model.fit and write a run directory "
                       "(model.keras, config.json, history, curves.png, eval/).")
    add_data_arguments(p, default_spec="synthetic")
    p.add_argument("--val-data", metavar="SPEC",
                   help="separate validation data (default: a held-out part of --data)")
    p.add_argument("--val-split", help="split of the validation data, e.g. val or test")
    add_model_flags(p)
    add_input_flags(p)
    add_run_flags(p)
    add_number_flags(p)
    p.add_argument("--no-evaluate", action="store_true", help="skip the final evaluation")
    p.add_argument("--out", help="run directory (default: saved_models/<data name>)")
    p.set_defaults(func=cmd_train)


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """train: the architecture (a preset and its overrides) or the model to fine-tune."""
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(MODEL_PRESETS),
                   help="model size (default: %(default)s)")
    p.add_argument("--init", metavar="MODEL",
                   help="fine-tune: start from this model's weights and architecture (a "
                   "shipped name such as nuclei, or a run directory / .keras file); its head "
                   "is replaced when --data has other classes (the preset flags are ignored)")
    p.add_argument("--freeze-encoder-epochs", type=int, default=0, metavar="N",
                   help="with --init: keep the encoder frozen for the first N epochs "
                   "(default: %(default)s)")
    p.add_argument("--base-filters", type=positive_int, help="override the preset's base filters")
    p.add_argument("--depth", type=positive_int, help="override the preset's depth")
    p.add_argument("--residual", action="store_true", help="residual conv blocks")
    p.add_argument("--output-stride", type=int, choices=(1, 2),
                   help="override the preset's output stride: 1 = full-resolution first and "
                   "last blocks (the paper), 2 = a stride-2 stem and logits upsampled x2")
    p.add_argument("--no-batch-norm", action="store_true",
                   help="convolutions with biases and no batch norm, as in the U-Net paper: "
                   "1.35x the images/s on an AVX2-only CPU, but it learns more slowly "
                   "(pets sample, 40 epochs: mean IoU 0.54 against 0.62; see docs/speed.md)")


def add_input_flags(p: argparse.ArgumentParser) -> None:
    """train: the training images' size, augmentation and per-pixel loss weights."""
    p.add_argument("--image-size", type=image_size, default=DATA.image_size,
                   help="training size, N or HxW (default: %(default)s)")
    p.add_argument("--class-weights", type=class_weights,
                   help="'balanced' (median frequency), 'sqrt_balanced' (its square root) "
                   "or one weight per class")
    p.add_argument("--no-augment", action="store_true", help="no augmentation")
    p.add_argument("--vflip", action="store_true", help="also flip vertically")
    p.add_argument("--rot90", action="store_true", help="also rotate by multiples of 90")
    p.add_argument("--scale", type=float_pair, default=AUGMENT.scale, metavar="LOW,HIGH",
                   help="random zoom-in factor range, then crop back (default: %(default)s)")
    p.add_argument("--crop", type=image_size, metavar="N|HxW",
                   help="train on random crops of this size (validation: whole images)")
    p.add_argument("--weight-map", action="store_true",
                   help="the U-Net paper's border weight map as per-pixel loss weights")
    p.add_argument("--weight-map-classes", type=int_list,
                   help="classes whose connected components are the objects, comma-separated "
                   "(default: every class but 0)")


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """train: which epoch is kept, and the devices, precision and compiler it runs with."""
    p.add_argument("--checkpoint", choices=["best", "last"], default=TRAIN.checkpoint,
                   help="keep the best epoch by validation mean IoU, or the last one "
                   "(honest when the validation data is the test data; default: %(default)s)")
    p.add_argument("--strategy", choices=STRATEGIES, default=TRAIN.strategy,
                   help="tf.distribute: one device, mirrored (the GPUs of this host), "
                   "multi-worker (the hosts in TF_CONFIG; run the same command on each), or "
                   "auto: multi-worker with a TF_CONFIG cluster, mirrored with several GPUs, "
                   "else one (default: %(default)s)")
    p.add_argument("--cluster-timeout", type=positive_float, default=TRAIN.cluster_timeout,
                   metavar="SECONDS", help="multi-worker: fail, naming them, when TF_CONFIG's "
                   "workers do not all answer within this time (default: %(default)s)")
    p.add_argument("--precision", choices=PRECISIONS, default=TRAIN.precision,
                   help="bfloat16: mixed precision while training (float32 weights, loss and "
                   "saved model); 1.3x faster on CPUs with AVX-512 BF16 or AMX, slower "
                   "elsewhere; auto: bfloat16 on such CPUs and on GPUs from Ampere on, else "
                   "float32 (default: %(default)s)")
    p.add_argument("--jit-compile", choices=JIT_COMPILE, default=TRAIN.jit_compile,
                   help="XLA for the train and validation steps (same losses); auto: on for "
                   "CPUs with AVX2 but no AVX-512 (1.2x there, 0.8x with AVX-512) when the "
                   "run is long enough to repay compiling, Keras' choice on GPUs "
                   "(default: %(default)s)")


def add_number_flags(p: argparse.ArgumentParser) -> None:
    """train: epochs, batch size, learning rate and the numeric loss and augmentation knobs."""
    numbers = [  # flag, type, default, what it means
        ("--epochs", positive_int, TRAIN.epochs, ""),
        ("--batch-size", positive_int, DATA.batch_size, ""),
        ("--learning-rate", positive_float, TRAIN.learning_rate, ""),
        ("--dice-weight", non_negative_float, TRAIN.dice_weight,
         "add this times the soft Dice loss"),
        ("--focal-weight", non_negative_float, TRAIN.focal_weight,
         "add this times the focal loss"),
        ("--patience", int, TRAIN.early_stopping_patience,
         "early stopping patience in epochs, 0 = off"),
        ("--elastic", non_negative_float, AUGMENT.elastic,
         "elastic deformation as in the U-Net paper: displacement std in pixels on a 3x3 "
         "grid (paper: 10 at 572 px), 0 = off"),
        ("--rotate", non_negative_float, AUGMENT.rotate,
         "random rotation by up to this many degrees, 0 = off"),
        ("--weight-map-w0", non_negative_float, TRAIN.weight_map_w0, "the paper's w0"),
        ("--weight-map-sigma", positive_float, TRAIN.weight_map_sigma,
         "the paper's sigma, pixels"),
    ]
    for flag, kind, default, text in numbers:
        p.add_argument(flag, type=kind, default=default,
                       help=f"{text} (default: %(default)s)".strip())


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a model: IoU, Dice, pixel accuracy",
                       epilog=DATA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Score a trained model (mean / per-class IoU and Dice, "
                       "pixel accuracy); with --out, also write report.json, confusion.png "
                       "and predictions.png. Without --data, use the run's validation data.")
    p.add_argument("--model", required=True,
                   help="shipped model name (unet-tf models), run directory or .keras file")
    add_data_arguments(p, default_spec=None)
    p.add_argument("--tta", nargs="?", const="all", choices=["all", "flips", "none"],
                   help="average over flips and 90-degree rotations ('all', the default "
                   "when given) or over flips only ('flips': photos with an up); 'none' "
                   "turns off what the model stores (default: the model's stored choice)")
    add_tile_arguments(p)
    p.add_argument("--out", help="report folder")
    p.set_defaults(func=cmd_evaluate)


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export to SavedModel and TFLite, with a parity check",
        epilog=DATA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write a SavedModel (uint8 images of any size -> mask, probabilities)\n"
        "and TFLite files (builtin ops only) with config.json, labels.txt and parity.json.\n"
        "Every format is compared with the Keras model on validation images; an export\n"
        "under the thresholds fails, prints the numbers and writes nothing.\n"
        "Without --data, int8 calibration and parity use the run's own training and\n"
        "validation data.")
    p.add_argument("--model", required=True,
                   help="shipped model name (unet-tf models), run directory or .keras file")
    p.add_argument("--out", required=True, help="export directory, e.g. saved_models/NAME-export")
    p.add_argument("--formats", type=name_list, default=EXPORT.formats,
                   help=f"comma-separated, of {', '.join(OUTPUT_FORMATS)} (default: "
                   f"{','.join(EXPORT.formats)})")
    p.add_argument("--parity-images", type=positive_int, default=EXPORT.parity_images,
                   help="validation images for the parity check (default: %(default)s)")
    p.add_argument("--representative-images", type=positive_int,
                   default=EXPORT.representative_images,
                   help="training images that calibrate int8 (default: %(default)s)")
    for field in dataclasses.fields(ParityThresholds):
        flag = field.name.replace("_agreement", "").replace("_iou_drop", "")
        kind = "min-agreement" if field.name.endswith("agreement") else "max-iou-drop"
        p.add_argument(f"--{kind}-{flag}", type=fraction, dest=field.name,
                       default=getattr(EXPORT.thresholds, field.name),
                       help=("pixel agreement with Keras" if kind == "min-agreement" else
                             "mean IoU vs truth within this of Keras'") + " (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--license", metavar="SPDX",
                   help="licence of a bioimage.io package, an SPDX id such as CC-BY-4.0 "
                   "(default: a shipped model's own, else CC-BY-4.0)")
    p.add_argument("--web-runtime", metavar="PATH",
                   help="LiteRT.js for the web format, for a machine without network: a folder "
                   "holding the npm tarballs core-2.5.3.tgz and wasm-utils-2.5.3.tgz of "
                   "@litertjs, or a node_modules folder (default: downloaded once from npm "
                   "into the user cache)")
    add_data_arguments(p, default_spec=None)
    p.set_defaults(func=cmd_export)


def add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="segment images with a .keras, SavedModel or .tflite model",
        description="Segment images at their own size; write NAME_mask.png (class indices) "
        "and NAME_overlay.png (classes in colour with a legend) for each.")
    p.set_defaults(func=cmd_predict)
    add_model_io_arguments(p)


def add_blur(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "blur", help="blur the background of photos, keeping some classes sharp",
        description="Blur everything but the --keep classes, at the photo's own size and "
        "orientation; write NAME_blur.jpg/png and a side-by-side NAME_blur_figure.png.")
    p.add_argument("--keep", required=True, type=name_list,
                   help="class names to keep sharp, comma-separated, e.g. pet")
    add_model_io_arguments(p)
    p.add_argument("--strength", type=non_negative_float, default=0.02,
                   help="blur sigma as a fraction of the shorter side (default: 0.02)")
    p.add_argument("--feather", type=non_negative_float, default=0.01,
                   help="mask edge softness, fraction of the shorter side (default: 0.01)")
    p.set_defaults(func=cmd_blur)


def add_instances(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "instances", help="separate objects (nuclei, cells, ...) in images",
        description="Segment images with a model trained on instances:DIR data and separate "
        "the objects (seeded watershed); write NAME_instances.png (16-bit labels), "
        "NAME_overlay.png and NAME_objects.csv (area, centroid, mean probability).")
    p.add_argument("--min-size", type=positive_int,
                   help="drop objects of fewer pixels (default: the model's stored value "
                   "from unet-tf tune, else the library's)")
    for name, what in (("interior", "interior probability of an object's seed pixels"),
                       ("foreground", "probability of object pixels")):
        p.add_argument(f"--{name}-threshold", type=fraction, metavar="P",
                       help=f"{what} (default: the model's stored value, else the library's)")
    add_model_io_arguments(p)
    p.set_defaults(func=cmd_instances)


def add_tune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune", help="choose an instance model's thresholds and store them with it",
        epilog=DATA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Grid-search the object post-processing (interior and foreground "
        "thresholds, minimum size) of an instance model by AP@[.5:.95] on images it is not "
        "scored on, and write the best, with the TTA choice, into its config.json, where "
        "instances, evaluate and export use it. Without --data: the run's held-out "
        "validation images (--subset training: its training images, for when the held-out "
        "ones are your test set); with --data: those images (--subset to pick a part).")
    p.add_argument("model", metavar="RUN", help="run directory or shipped model name")
    p.add_argument("--images", type=positive_int, default=30,
                   help="a seeded sample of this many images (default: %(default)s)")
    p.add_argument("--tta", choices=["all", "flips", "none"], default="none",
                   help="test-time augmentation to tune with and store (default: none)")
    p.add_argument("--dry-run", action="store_true", help="print the choice, store nothing")
    add_data_arguments(p, default_spec=None)
    p.set_defaults(func=cmd_tune)


def add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models", help="list the shipped models (use them by name: --model NAME)",
        description="The pretrained models in saved_models/ (or $UNET_TF_MODELS): task, "
        "classes, input, dev score and licence; each works as --model NAME.")
    p.set_defaults(func=cmd_models)


def add_serve_web(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve-web", help="serve an export's browser page (unet-tf export --formats ...,web)",
        description="Host EXPORT_DIR/web with Python's http.server, cross-origin isolated so "
        "LiteRT.js can use several threads; any static file server works too.")
    p.add_argument("export", metavar="EXPORT_DIR", help="export directory or its web/ folder, "
                   "or a shipped model's name (its page is written into the user cache)")
    p.add_argument("--port", type=port, default=8000,
                   help="TCP port, 0 = any free one (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="(default: %(default)s)")
    p.add_argument("--no-isolation", action="store_true",
                   help="no COOP/COEP headers (the page then runs on one thread)")
    p.set_defaults(func=cmd_serve_web)
