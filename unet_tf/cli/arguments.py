"""Argument types of the ``unet-tf`` flags: each parses one string and says what would work.

Standard library only: ``unet-tf --help`` does not import TensorFlow.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from unet_tf.config import MODEL_PRESETS, RENAMED_PRESETS

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
  unet-tf train                                    # synthetic data, default preset
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


def preset_name(text: str) -> str:
    """A name of ``MODEL_PRESETS``; an earlier name is refused with the one it became."""
    if text in RENAMED_PRESETS:
        raise argparse.ArgumentTypeError(
            f"the preset {text!r} was renamed to {RENAMED_PRESETS[text]!r}")
    if text not in MODEL_PRESETS:
        raise argparse.ArgumentTypeError(
            f"unknown preset {text!r}; choose one of {', '.join(sorted(MODEL_PRESETS))}")
    return text


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


def default_run_dir(spec: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(spec.split(":", 1)[-1]).name or spec)
    return Path("saved_models") / (name or "model")
