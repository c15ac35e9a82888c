"""The flags that set a field of a settings dataclass, one table per group of flags.

A row names the flag, the dataclass and field it sets, and its help; the default is the
dataclass's own, so a default is written once (in :mod:`unet_tf.config`) and a help text once
(here). :func:`add_flags` puts rows on a parser; :func:`config_values` reads them back as the
dataclass's keyword arguments. ``docs/cli.md`` shows the resulting ``--help`` pages
(``python -m unet_tf.cli.docs`` writes them). Standard library only.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

from unet_tf.cli.arguments import (
    class_weights,
    float_pair,
    fraction,
    image_size,
    int_list,
    name_list,
    non_negative_float,
    positive_float,
    positive_int,
)
from unet_tf.config import (
    JIT_COMPILE,
    OUTPUT_FORMATS,
    PRECISIONS,
    RESOLUTIONS,
    STRATEGIES,
    AugmentConfig,
    DataConfig,
    ExportConfig,
    ModelConfig,
    ParityThresholds,
    TrainConfig,
)


@dataclasses.dataclass(frozen=True)
class Flag:
    """One command-line flag that sets ``config.field``.

    ``negate``: a ``--no-X`` switch that sets a True field to False. ``override``: unset means
    "keep the preset's value" (the model flags), so the flag has no default of its own.
    ``show`` writes the default as one would type it (tuples comma-separated).
    """

    flag: str
    config: type
    field: str
    help: str
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: Sequence[str] | None = None
    negate: bool = False
    override: bool = False
    show: Callable[[Any], str] | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def default(self) -> Any:
        return getattr(_defaults(self.config), self.field)


@functools.cache
def _defaults(config: type) -> Any:
    return config()


def _shown(row: Flag, value: Any) -> str | None:
    """The default as the help prints it, or None when it goes unsaid (off, unset, empty)."""
    if row.override or value is None or isinstance(value, bool) or value == ():
        return None
    if row.show:
        return row.show(value)
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
              rows: Sequence[Flag], **defaults: Any) -> None:
    """Add ``rows`` to ``parser``; ``defaults`` replaces a field's default for this command
    (e.g. ``spec=None``: no --data means "the run's own data")."""
    for row in rows:
        default = defaults.get(row.field, row.default)
        shown = _shown(row, default)
        text = row.help + (f" (default: {shown})" if shown else "")
        kwargs: dict[str, Any] = {"dest": row.dest, "help": text}
        if isinstance(row.default, bool):
            kwargs["action"] = "store_true"
        else:
            kwargs.update(type=row.type, metavar=row.metavar, choices=row.choices,
                          default=None if row.override else default)
        parser.add_argument(row.flag, **kwargs)


def config_values(args: argparse.Namespace, rows: Sequence[Flag]) -> dict[str, Any]:
    """The fields that ``rows`` set, from parsed ``args`` (override rows only when given)."""
    values = {}
    for row in rows:
        value = getattr(args, row.dest)
        if isinstance(row.default, bool):
            if row.override and not value:
                continue
            value = value != row.negate
        elif row.override and value is None:
            continue
        values[row.field] = value
    return values


def _size(value: tuple[int, int]) -> str:
    return "x".join(map(str, value))


DATA_FLAGS = (  # every command that reads a dataset
    Flag("--data", DataConfig, "spec", "synthetic (embedded, offline), tfds:NAME, "
         "oxford-pets:DIR, folder:DIR or instances:DIR", metavar="SPEC"),
    Flag("--split", DataConfig, "split", "the source's split (default: its training split; "
         "oxford-pets: trainval or test; folder: train/val subfolders or all)"),
    Flag("--validation-fraction", DataConfig, "validation_fraction",
         "fraction held out for validation", type=fraction),
    Flag("--classes", DataConfig, "class_names", "class names in order, comma-separated",
         type=name_list),
    Flag("--mask-values", DataConfig, "mask_values",
         "raw mask value of each class, comma-separated (default: 0..N-1)", type=int_list),
    Flag("--ignore-values", DataConfig, "ignore_values",
         "raw mask values with no label, e.g. 11 for CamVid void", type=int_list),
    Flag("--num-examples", DataConfig, "num_examples", "use only the first N examples",
         type=positive_int),
    Flag("--skip-bad", DataConfig, "skip_bad",
         "warn about and skip unreadable or inconsistent files"),
    Flag("--seed", DataConfig, "seed", "seed for splits, shuffling, init", type=int),
    Flag("--resolution", DataConfig, "resolution", "resize every image to --image-size, or "
         "keep the pixel size and train on --image-size crops (mixed sizes, small objects)",
         choices=RESOLUTIONS),
    Flag("--boundary-width", DataConfig, "boundary_width", "instances: data: pixels of "
         "boundary rim inside every object", type=positive_int, metavar="PIXELS"),
    Flag("--no-download", DataConfig, "download",
         "tfds: fail at once when the dataset is not prepared (offline)", negate=True),
)

TRAIN_DATA_FLAGS = (  # train: the batches
    Flag("--image-size", DataConfig, "image_size", "training size, N or HxW",
         type=image_size, show=_size),
    Flag("--batch-size", DataConfig, "batch_size", "images per training step",
         type=positive_int),
)

MODEL_FLAGS = (  # train: changes to the preset
    Flag("--base-filters", ModelConfig, "base_filters", "override the preset's base filters",
         type=positive_int, override=True),
    Flag("--depth", ModelConfig, "depth", "override the preset's depth", type=positive_int,
         override=True),
    Flag("--residual", ModelConfig, "residual", "residual conv blocks", override=True),
    Flag("--output-stride", ModelConfig, "output_stride", "override the preset's output "
         "stride: 1 = full-resolution first and last blocks (the paper), 2 = a stride-2 stem "
         "and logits upsampled x2", type=int, choices=(1, 2), override=True),
    Flag("--no-batch-norm", ModelConfig, "batch_norm", "convolutions with biases and no "
         "batch norm, as in the U-Net paper: faster steps, slower learning (docs/speed.md)",
         negate=True, override=True),
)

AUGMENT_FLAGS = (  # train: augmentation of image and mask together
    Flag("--vflip", AugmentConfig, "vertical_flip", "also flip vertically"),
    Flag("--rot90", AugmentConfig, "rotate90", "also rotate by multiples of 90"),
    Flag("--scale", AugmentConfig, "scale", "random zoom-in factor range, then crop back",
         type=float_pair, metavar="LOW,HIGH"),
    Flag("--crop", AugmentConfig, "crop",
         "train on random crops of this size (validation: whole images)", type=image_size,
         metavar="N|HxW"),
    Flag("--elastic", AugmentConfig, "elastic", "elastic deformation as in the U-Net paper: "
         "displacement std in pixels on a 3x3 grid (paper: 10 at 572 px), 0 = off",
         type=non_negative_float),
    Flag("--rotate", AugmentConfig, "rotate",
         "random rotation by up to this many degrees, 0 = off", type=non_negative_float),
)

TRAIN_FLAGS = (  # train: the optimisation, the loss, what is kept, where it runs
    Flag("--init", TrainConfig, "init", "fine-tune: start from this model's weights and "
         "architecture (a shipped name such as nuclei, or a run directory / .keras file); its "
         "head is replaced when --data has other classes (the preset flags are ignored)",
         metavar="MODEL"),
    Flag("--freeze-encoder-epochs", TrainConfig, "freeze_encoder_epochs",
         "with --init: keep the encoder frozen for the first N epochs", type=int, metavar="N"),
    Flag("--epochs", TrainConfig, "epochs", "passes over the training data", type=positive_int),
    Flag("--learning-rate", TrainConfig, "learning_rate", "AdamW's, cosine-decayed to 1%%",
         type=positive_float),
    Flag("--class-weights", TrainConfig, "class_weights", "'balanced' (median frequency), "
         "'sqrt_balanced' (its square root) or one weight per class", type=class_weights),
    Flag("--dice-weight", TrainConfig, "dice_weight", "add this times the soft Dice loss",
         type=non_negative_float),
    Flag("--focal-weight", TrainConfig, "focal_weight", "add this times the focal loss",
         type=non_negative_float),
    Flag("--weight-map", TrainConfig, "weight_map",
         "the U-Net paper's border weight map as per-pixel loss weights"),
    Flag("--weight-map-classes", TrainConfig, "weight_map_classes", "classes whose connected "
         "components are the objects, comma-separated (default: every class but 0)",
         type=int_list),
    Flag("--weight-map-w0", TrainConfig, "weight_map_w0", "the paper's w0",
         type=non_negative_float),
    Flag("--weight-map-sigma", TrainConfig, "weight_map_sigma", "the paper's sigma, pixels",
         type=positive_float),
    Flag("--patience", TrainConfig, "early_stopping_patience",
         "early stopping patience in epochs, 0 = off", type=int),
    Flag("--checkpoint", TrainConfig, "checkpoint", "keep the best epoch by validation mean "
         "IoU, or the last one (honest when the validation data is the test data)",
         choices=("best", "last")),
    Flag("--strategy", TrainConfig, "strategy", "tf.distribute: one device, mirrored (the GPUs "
         "of this host), multi-worker (the hosts in TF_CONFIG; run the same command on each), "
         "or auto: multi-worker with a TF_CONFIG cluster, mirrored with several GPUs, else one",
         choices=STRATEGIES),
    Flag("--cluster-timeout", TrainConfig, "cluster_timeout", "multi-worker: fail, naming "
         "them, when TF_CONFIG's workers do not all answer within this time",
         type=positive_float, metavar="SECONDS"),
    Flag("--precision", TrainConfig, "precision", "bfloat16: mixed precision while training "
         "(float32 weights, loss and saved model), faster on CPUs with AVX-512 BF16 or AMX, "
         "slower elsewhere; auto: bfloat16 on such CPUs and on GPUs from Ampere on, else "
         "float32", choices=PRECISIONS),
    Flag("--jit-compile", TrainConfig, "jit_compile", "XLA for the train and validation steps "
         "(same losses); auto: on for CPUs with AVX2 but no AVX-512 when the run is long "
         "enough to repay compiling, Keras' choice on GPUs", choices=JIT_COMPILE),
)

EXPORT_FLAGS = (
    Flag("--formats", ExportConfig, "formats", f"comma-separated, of {', '.join(OUTPUT_FORMATS)}",
         type=name_list),
    Flag("--parity-images", ExportConfig, "parity_images",
         "validation images for the parity check", type=positive_int),
    Flag("--representative-images", ExportConfig, "representative_images",
         "training images that calibrate int8", type=positive_int),
    Flag("--overwrite", ExportConfig, "overwrite", "replace an existing --out"),
    Flag("--license", ExportConfig, "license", "licence of a bioimage.io package, an SPDX id "
         "such as CC-BY-4.0 (default: a shipped model's own, else CC-BY-4.0)", metavar="SPDX"),
)

THRESHOLD_FLAGS = tuple(  # --min-agreement-fp32, --max-iou-drop-int8, ...
    Flag(f"--min-agreement-{f.name.removesuffix('_agreement')}", ParityThresholds, f.name,
         "pixel agreement with Keras", type=fraction)
    if f.name.endswith("_agreement") else
    Flag(f"--max-iou-drop-{f.name.removesuffix('_iou_drop')}", ParityThresholds, f.name,
         "mean IoU vs truth within this of Keras'", type=fraction)
    for f in dataclasses.fields(ParityThresholds)
)
