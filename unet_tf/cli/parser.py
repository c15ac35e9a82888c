"""The ``unet-tf`` argument parser: one function per subcommand, flags grouped by meaning.

Flags that set a settings field come from the tables in :mod:`unet_tf.cli.flags` (default and
help written once); the others are added here. Standard library only (``unet-tf --help``
does not import TensorFlow); each subcommand's ``func`` is its handler in
:mod:`unet_tf.cli.commands`.
"""

from __future__ import annotations

import argparse

from unet_tf import __version__
from unet_tf.cli.arguments import (
    DATA_HELP,
    fraction,
    name_list,
    non_negative_float,
    non_negative_int,
    port,
    positive_int,
    preset_name,
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
from unet_tf.cli.flags import (
    AUGMENT_FLAGS,
    DATA_FLAGS,
    EXPORT_FLAGS,
    MODEL_FLAGS,
    THRESHOLD_FLAGS,
    TRAIN_DATA_FLAGS,
    TRAIN_FLAGS,
    add_flags,
)
from unet_tf.config import DEFAULT_PRESET, MODEL_PRESETS


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


def add_data_arguments(parser: argparse.ArgumentParser, default_spec: str | None) -> None:
    """The data flags of every command that reads a dataset (DATA_HELP lists the specs)."""
    g = parser.add_argument_group("data")
    add_flags(g, DATA_FLAGS[:2], spec=default_spec)
    g.add_argument("--subset", choices=["training", "validation"],
                   help="a seeded part of the split (see --validation-fraction)")
    add_flags(g, DATA_FLAGS[2:])


def add_tile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tile", type=positive_int, metavar="PIXELS",
                        help="segment in tiles of this size at the image's own pixel size "
                        "(large images at full resolution; a multiple of 2**depth)")
    parser.add_argument("--overlap", type=non_negative_int, default=32, metavar="PIXELS",
                        help="pixels shared by neighbouring tiles (default: %(default)s)")


def add_whole_slide_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of images larger than memory: the whole-slide path (unet_tf.wsi)."""
    g = parser.add_argument_group(
        "whole-slide images", "with --out NAME.ome.zarr (or a .zarr input): one TIFF / OME-TIFF "
        "/ Zarr / OME-Zarr / image file, read lazily and segmented block by block into OME-Zarr "
        "(an unfinished job there resumes); --tile defaults to 512")
    g.add_argument("--level", type=non_negative_int, help="pyramid level to segment "
                   "(default: 0, full resolution)")
    g.add_argument("--block", type=positive_int, default=2048, metavar="PIXELS",
                   help="block side, one Zarr chunk (memory grows with its square; "
                   "default: %(default)s)")
    g.add_argument("--halo", type=non_negative_int, default=64, metavar="PIXELS",
                   help="context around each block for separating objects, wider than the "
                   "largest object (default: %(default)s)")
    g.add_argument("--probabilities", action="store_true",
                   help="also write class probabilities (uint8) as the OME-Zarr image")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, metavar="N",
                       help="run the blocks on a local Dask cluster of N processes")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run the blocks on a running Dask cluster, e.g. tcp://host:8786")


def add_model_io_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, the image files, --out, --threads and the tile flags of predict-like commands."""
    parser.add_argument("--model", required=True, help="shipped model name (unet-tf models), "
                        "run directory, .keras file, SavedModel or export directory, .tflite "
                        "or .onnx file")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument("--out", required=True, help="output folder (or NAME.ome.zarr for a "
                        "whole-slide image, see below)")
    parser.add_argument("--threads", type=positive_int, help="TFLite interpreter threads")
    parser.add_argument("--trust-model", action="store_true",
                        help="run a SavedModel even if its graph reads or writes files, prints "
                        "or calls Python (refused otherwise; unet-tf exports never do)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs of an earlier run in --out (refused otherwise)")
    add_tile_arguments(parser)


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a U-Net with model.fit, then evaluate it",
                       epilog=DATA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a U-Net with model.fit and write a run directory "
                       "(model.keras, config.json, history, curves.png, eval/).")
    add_data_arguments(p, default_spec="synthetic")
    g = p.add_argument_group("validation data")
    g.add_argument("--val-data", metavar="SPEC",
                   help="separate validation data (default: a held-out part of --data)")
    g.add_argument("--val-split", help="split of the validation data, e.g. val or test")
    g = p.add_argument_group("model")
    g.add_argument("--preset", default=DEFAULT_PRESET, type=preset_name,
                   metavar="{" + ",".join(MODEL_PRESETS) + "}",
                   help="architecture: f<base filters>, -os2 = output stride 2; tiny for tests, "
                   "classic = the paper's (default: %(default)s)")
    add_flags(g, MODEL_FLAGS)
    g = p.add_argument_group("images and augmentation")
    add_flags(g, TRAIN_DATA_FLAGS)
    g.add_argument("--no-augment", action="store_true", help="no augmentation")
    add_flags(g, AUGMENT_FLAGS)
    g = p.add_argument_group("training")
    add_flags(g, TRAIN_FLAGS)
    g.add_argument("--no-evaluate", action="store_true", help="skip the final evaluation")
    g.add_argument("--out", help="run directory (default: saved_models/<data name>)")
    p.set_defaults(func=cmd_train)


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
    add_flags(p, EXPORT_FLAGS[:3])
    add_flags(p.add_argument_group("parity thresholds"), THRESHOLD_FLAGS)
    add_flags(p, EXPORT_FLAGS[3:])
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
    add_whole_slide_arguments(p)


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
    add_whole_slide_arguments(p)
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
        "classes, input, dev score, licence and size; each works as --model NAME.")
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="one model in full: task, class names, licence terms, folder")
    p.add_argument("--long", action="store_true",
                   help="every model in full instead of the short table")
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
