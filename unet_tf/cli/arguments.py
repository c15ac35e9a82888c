"""Argument types and the data flags shared by the ``unet-tf`` commands.

Every default comes from the settings dataclasses in :mod:`unet_tf.config`, so the command
line and the Python API cannot drift apart. Standard library only: ``unet-tf --help`` does
not import TensorFlow.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from unet_tf.config import AugmentConfig, DataConfig, TrainConfig

DATA = DataConfig()
AUGMENT = AugmentConfig()
TRAIN = TrainConfig()

DATA_HELP = """data specs (--data, --val-data):
  synthetic             embedded offline scenes of discs, squares, triangles (4 classes)
  tfds:NAME             tensorflow-datasets, e.g. tfds:oxford_iiit_pet (needs a download once)
  oxford-pets:DIR       the Oxford-IIIT Pet archives: DIR/images, DIR/annotations/trimaps,
                        splits from DIR/annotations/trainval.txt and test.txt
  folder:DIR            DIR/images + DIR/masks (or labels), matched by file stem, or
                        DIR/<split>/images + masks; classes from --classes/--mask-values or
                        DIR/dataset.json
  instances:DIR         DIR/images + DIR/instances (16-bit label images, 0 = background):
                        background / interior / boundary targets for instance segmentation

examples:
  unet-tf train                                    # synthetic data, fast preset
  unet-tf train --data oxford-pets:../shared/data/oxford_pets_sample --epochs 40
  unet-tf train --data folder:../shared/data/isbi2012_em \\
      --classes membrane,interior --mask-values 0,255 --vflip --rot90
  unet-tf evaluate --model saved_models/oxford_pets_sample --out report/
"""


def whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number; got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}; got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (batch sizes, epochs, image counts)."""
    return whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """An integer >= 0 (tile overlaps)."""
    return whole_number(text, 0)


def port(text: str) -> int:
    """A TCP port, 0..65535 (0: any free one)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number; got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"a TCP port is 0..65535 (0: any free one); got {value}; try 8000")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0; got {text}")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than 0; got 0")
    return value


def fraction(text: str) -> float:
    value = non_negative_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive); got {text}")
    return value


def image_size(text: str) -> tuple[int, int]:
    """'128' -> (128, 128); '192x256' -> (192, 256) (height x width)."""
    match = re.fullmatch(r"(\d+)(?:x(\d+))?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"image size must look like 128 or 192x256; got {text}")
    h = int(match.group(1))
    w = int(match.group(2) or h)
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"image size must be positive; got {text}")
    return h, w


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
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"expected 0 < LOW <= HIGH; got {text}")
    return low, high


def name_list(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def class_weights(text: str):
    if text in ("balanced", "sqrt_balanced"):
        return text
    try:
        return tuple(non_negative_float(v) for v in text.split(","))
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(
            "class weights are 'balanced', 'sqrt_balanced' or comma-separated numbers >= 0; "
            f"got {text}") from exc


def add_data_arguments(parser: argparse.ArgumentParser, default_spec: str | None) -> None:
    g = parser.add_argument_group("data")
    g.add_argument(
        "--data", default=default_spec, metavar="SPEC",
        help="synthetic (embedded, offline), tfds:NAME, oxford-pets:DIR, folder:DIR or "
        "instances:DIR" + (f" (default: {default_spec})" if default_spec else ""),
    )
    g.add_argument("--split", help="the source's split (default: its training split; "
                   "oxford-pets: trainval or test; folder: train/val subfolders or all)")
    g.add_argument("--subset", choices=["training", "validation"],
                   help="a seeded part of the split (see --validation-fraction)")
    g.add_argument("--validation-fraction", type=fraction, default=DATA.validation_fraction,
                   help=f"fraction held out for validation (default: {DATA.validation_fraction})")
    g.add_argument("--classes", type=name_list, help="class names in order, comma-separated")
    g.add_argument("--mask-values", type=int_list,
                   help="raw mask value of each class, comma-separated (default: 0..N-1)")
    g.add_argument("--ignore-values", type=int_list, default=DATA.ignore_values,
                   help="raw mask values with no label, e.g. 11 for CamVid void")
    g.add_argument("--num-examples", type=positive_int, help="use only the first N examples")
    g.add_argument("--skip-bad", action="store_true",
                   help="warn about and skip unreadable or inconsistent files")
    g.add_argument("--seed", type=int, default=DATA.seed,
                   help=f"seed for splits, shuffling, init (default: {DATA.seed})")
    g.add_argument("--resolution", choices=["resize", "native"], default=DATA.resolution,
                   help="resize every image to --image-size, or keep the pixel size and "
                   "train on --image-size crops (mixed sizes, small objects; default: "
                   "%(default)s)")
    g.add_argument("--boundary-width", type=positive_int, default=DATA.boundary_width,
                   metavar="PIXELS", help="instances: data: pixels of boundary rim inside every "
                   "object (default: %(default)s)")
    g.add_argument("--no-download", action="store_true",
                   help="tfds: fail at once when the dataset is not prepared (offline)")


def add_tile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tile", type=positive_int, metavar="PIXELS",
                        help="segment in tiles of this size at the image's own pixel size "
                        "(large images at full resolution; a multiple of 2**depth)")
    parser.add_argument("--overlap", type=non_negative_int, default=32, metavar="PIXELS",
                        help="pixels shared by neighbouring tiles (default: 32)")


def add_model_io_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, the image files, --out, --threads and the tile flags of predict-like commands."""
    parser.add_argument("--model", required=True, help="shipped model name (unet-tf models), "
                        "run directory, .keras file, SavedModel or export directory, .tflite "
                        "or .onnx file")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--threads", type=positive_int, help="TFLite interpreter threads")
    parser.add_argument("--trust-model", action="store_true",
                        help="run a SavedModel even if its graph reads or writes files, prints "
                        "or calls Python (refused otherwise; unet-tf exports never do)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs of an earlier run in --out (refused otherwise)")
    add_tile_arguments(parser)


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
        resolution=args.resolution,
        boundary_width=args.boundary_width,
        **changes,
    )


def default_run_dir(spec: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(spec.split(":", 1)[-1]).name or spec)
    return Path("saved_models") / (name or "model")
