"""Settings for models, data, training and export, as frozen dataclasses with named presets.

Standard library only, so that anything (the CLI, a notebook, a SavedModel's ``config.json``)
can read a configuration without importing TensorFlow. The export settings (formats,
:class:`ExportConfig`, :class:`ParityThresholds`) live in :mod:`unet_tf.export_config` and
are importable from here too.

Examples:
    >>> from unet_tf.config import model_preset
    >>> cfg = model_preset("tiny", num_classes=3)
    >>> cfg.depth, cfg.base_filters
    (2, 4)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from unet_tf.export_config import (
    EXPORT_FORMATS,
    OUTPUT_FORMATS,
    TFLITE_VARIANTS,
    ExportConfig,
    ParityThresholds,
)

__all__ = [  # the export settings have their own module; one import reaches them all
    "BOUNDARY_WIDTH",
    "DEFAULT_PRESET",
    "EXPORT_FORMATS",
    "IGNORE_LABEL",
    "JIT_COMPILE",
    "MODEL_PRESETS",
    "OUTPUT_FORMATS",
    "PRECISIONS",
    "RENAMED_PRESETS",
    "RESOLUTIONS",
    "STRATEGIES",
    "TFLITE_VARIANTS",
    "AugmentConfig",
    "DataConfig",
    "ExportConfig",
    "ModelConfig",
    "ParityThresholds",
    "Settings",
    "TrainConfig",
    "dump_json",
    "model_preset",
]

IGNORE_LABEL = 255  # mask value that losses and metrics skip (void, unlabelled, borders)


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples the frozen dataclasses hold (nested ones too)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


class Settings:
    """``to_dict`` / ``from_dict`` (a JSON round trip) shared by the settings dataclasses.

    ``from_dict`` refuses unknown keys (naming the known ones) and turns JSON lists back into
    tuples; nested settings (``DataConfig.augment``) are rebuilt from their dicts.
    """

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(values) - set(fields)
        if unknown:
            raise ValueError(f"Unknown {cls.__name__} keys {sorted(unknown)}; known: "
                             f"{sorted(fields)}")
        return cls(**{k: _field_value(fields[k], v) for k, v in values.items()})


def _field_value(field_: dataclasses.Field, value: Any) -> Any:
    """A JSON value as the field holds it: nested settings rebuilt, lists as tuples."""
    default = (field_.default_factory() if field_.default_factory is not dataclasses.MISSING
               else field_.default)
    if isinstance(default, Settings) and isinstance(value, dict):
        return type(default).from_dict(value)
    return _tuples(value)


@dataclass(frozen=True)
class ModelConfig(Settings):
    """Architecture of a U-Net (see :func:`unet_tf.build_unet`)."""

    num_classes: int = 3
    input_channels: int = 3
    depth: int = 4  # number of 2x2 poolings; inputs must be divisible by 2**depth
    # filters of the first block, doubled at every level; 12 trains faster than 16 at the
    # same pets IoU (benchmarks/results/speed_presets.jsonl)
    base_filters: int = 12
    batch_norm: bool = True
    # Keras' default 0.99 lets the moving statistics lag far behind on small datasets, so
    # inference-mode predictions collapse to one class; 0.9 catches up within an epoch.
    batch_norm_momentum: float = 0.9
    dropout: float = 0.0  # spatial dropout in the bottleneck (the paper used 0.5)
    residual: bool = False  # 1x1-projected shortcut around each double conv block
    kernel_initializer: str = "he_normal"  # the paper's Gaussian with std sqrt(2/N)
    # 1: the paper's full-resolution first and last blocks. 2: a stride-2 3x3 convolution
    # replaces the first block, the decoder stops at half resolution and the logits are
    # upsampled x2 bilinearly (as DeepLab's output stride); the thin full-resolution blocks
    # are half of a CPU training step (benchmarks/results/speed_layers.jsonl)
    output_stride: int = 2

    def __post_init__(self) -> None:
        checks = [
            (self.num_classes >= 2, "num_classes must be >= 2"),
            (self.input_channels >= 1, "input_channels must be >= 1"),
            (1 <= self.depth <= 6, "depth must be between 1 and 6"),
            (self.base_filters >= 1, "base_filters must be >= 1"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (self.output_stride in (1, 2), "output_stride must be 1 or 2"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message}; received {self}")

    @property
    def size_multiple(self) -> int:
        """Height and width of inputs must be multiples of this."""
        return 2**self.depth


DEFAULT_PRESET = "f12-os2"  # what `unet-tf train` builds; equal to ModelConfig()

# Named for what they are: f<base filters>, -os2 for output stride 2. Measurements of each are
# in benchmarks/results (speed.jsonl, recipe_*.jsonl) and docs/benchmarks.md.
MODEL_PRESETS: dict[str, ModelConfig] = {
    # A few thousand parameters: for tests and examples, trains in seconds.
    "tiny": ModelConfig(depth=2, base_filters=4, output_stride=1),
    # The default: no full-resolution blocks, logits upsampled x2; the fastest to train.
    "f12-os2": ModelConfig(depth=4, base_filters=12, output_stride=2),
    # f12-os2 with the paper's full-resolution first and last blocks: thin structures.
    "f12": ModelConfig(depth=4, base_filters=12, output_stride=1),
    # Wider, full resolution: the model of the ISBI, pets and DSB recipes.
    "f16": ModelConfig(depth=4, base_filters=16, output_stride=1),
    # Ronneberger et al. 2015: 64 to 1024 filters, dropout 0.5, no batch norm; ~31 M params.
    "classic": ModelConfig(depth=4, base_filters=64, batch_norm=False, dropout=0.5,
                           output_stride=1),
}
# Earlier names, refused with a pointer to the new one (users have typed `--preset fast`).
RENAMED_PRESETS = {"fast": "f12-os2", "lean": "f12", "small": "f16"}


def model_preset(name: str, **overrides: Any) -> ModelConfig:
    """Return the named model preset with some fields replaced.

    Args:
        name: one of ``MODEL_PRESETS``: "tiny", "f12-os2" (``DEFAULT_PRESET``), "f12", "f16",
            "classic".
        **overrides: ModelConfig fields to change, e.g. ``num_classes=2``.

    Raises:
        ValueError: an unknown name, or an earlier one ("fast", "lean", "small"), naming the
            preset to use instead.

    Examples:
        >>> model_preset("classic", num_classes=2, input_channels=1).base_filters
        64
    """
    if name in RENAMED_PRESETS:
        raise ValueError(f"The preset {name!r} was renamed to {RENAMED_PRESETS[name]!r}; "
                         f"choose one of {sorted(MODEL_PRESETS)}")
    if name not in MODEL_PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(MODEL_PRESETS)}")
    return dataclasses.replace(MODEL_PRESETS[name], **overrides)


@dataclass(frozen=True)
class AugmentConfig(Settings):
    """Augmentations applied to image and mask together (training data only)."""

    flip: bool = True  # horizontal flips
    vertical_flip: bool = False  # fine for microscopy, wrong for street scenes
    rotate90: bool = False  # random multiples of 90 degrees (microscopy)
    scale: tuple[float, float] = (1.0, 1.25)  # zoom in by a random factor, then crop back
    brightness: float = 0.1  # max delta, images in [0, 1]
    contrast: float = 0.1  # contrast factor drawn from [1 - c, 1 + c]
    # Elastic deformation as in the U-Net paper: random displacements with this standard
    # deviation in pixels (the paper used 10) on a coarse elastic_grid x elastic_grid grid,
    # bicubically interpolated to every pixel; 0 disables it.
    elastic: float = 0.0
    elastic_grid: int = 3  # grid points per side (3 x 3 in the paper)
    rotate: float = 0.0  # max degrees of a random rotation by any angle (reflect-padded)
    saturation: float = 0.0  # saturation factor drawn from [1 - s, 1 + s] (RGB only)
    hue: float = 0.0  # max hue shift (RGB only), as a fraction of the colour circle
    # (height, width) random crop taken after the other transforms, e.g. 256 px tiles of
    # 512 px images (training only; validation sees whole images); None keeps the size
    crop: tuple[int, int] | None = None

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls(flip=False, scale=(1.0, 1.0), brightness=0.0, contrast=0.0)


RESOLUTIONS = ("resize", "native")  # DataConfig.resolution
# instances:DIR targets: pixels of boundary rim inside every object (unet_tf.instances.targets).
# A 1-pixel rim on DSB 2018 nuclei was barely learned (boundary IoU 0.08 after 9 epochs);
# 2 pixels (4 between touching nuclei) is still thin next to their 10-40 px diameters.
BOUNDARY_WIDTH = 2
STRATEGIES = ("auto", "one", "mirrored", "multi-worker")  # TrainConfig.strategy
PRECISIONS = ("float32", "bfloat16", "auto")  # TrainConfig.precision; auto: bf16 if native
JIT_COMPILE = ("auto", "on", "off")  # TrainConfig.jit_compile (unet_tf.xla)


@dataclass(frozen=True)
class DataConfig(Settings):
    """Which data to read and how to turn it into batches.

    ``spec`` names the source: ``synthetic``, ``tfds:NAME``, ``oxford-pets:DIR``,
    ``folder:DIR``, or ``instances:DIR`` / ``instances-foreground:DIR`` for instance label
    images (see :func:`unet_tf.data.make_dataset`).
    """

    spec: str = "synthetic"
    split: str | None = None  # the source's split; None picks the source's training split
    image_size: tuple[int, int] = (128, 128)  # (height, width) that the model sees
    batch_size: int = 16
    validation_fraction: float = 0.2  # held out (seeded) when no validation split is named
    seed: int = 0
    cache: bool = True
    shuffle_buffer: int = 512
    skip_bad: bool = False  # warn and skip unreadable files instead of failing
    class_names: tuple[str, ...] | None = None  # folder datasets: names in class order
    mask_values: tuple[int, ...] | None = None  # folder datasets: raw mask value of class i
    ignore_values: tuple[int, ...] = ()  # folder datasets: raw values mapped to IGNORE_LABEL
    num_examples: int | None = None  # synthetic: dataset size; others: truncate (tests)
    # tfds: download and prepare the dataset when it is missing. Offline, tfds retries for
    # minutes before it gives up; False fails at once when the dataset is not prepared.
    download: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # "resize": every image is resized to image_size (one pixel size per run is lost when
    # sizes vary). "native": pixels keep their size; training takes random image_size crops
    # (reflect-padded when an image is smaller), validation a centre crop, and whole images
    # are segmented at their own size at inference (mixed-size data such as DSB 2018 nuclei).
    resolution: str = "resize"
    boundary_width: int = BOUNDARY_WIDTH  # instances:DIR: boundary rim, pixels per object

    def __post_init__(self) -> None:
        if self.boundary_width < 1:
            raise ValueError(f"DataConfig.boundary_width is at least 1; got {self.boundary_width}")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(
                f"DataConfig.resolution must be one of {list(RESOLUTIONS)}; got "
                f"{self.resolution!r}"
            )
        size = tuple(self.image_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"DataConfig.image_size is (height, width) >= 1; got {size}")
        if self.batch_size < 1 or (self.num_examples is not None and self.num_examples < 1):
            raise ValueError("DataConfig.batch_size and num_examples must be at least 1; got "
                             f"{self.batch_size} and {self.num_examples}")


@dataclass(frozen=True)
class TrainConfig(Settings):
    """Optimisation settings for :func:`unet_tf.train`."""

    epochs: int = 20
    learning_rate: float = 1e-3  # Adam; cosine-decayed to 1% over the run
    weight_decay: float = 1e-4  # AdamW
    dice_weight: float = 0.0  # loss = cross-entropy + dice_weight * soft Dice
    # per class, "balanced" (median frequency) or "sqrt_balanced" (its square root)
    class_weights: tuple[float, ...] | str | None = None
    early_stopping_patience: int = 0  # epochs without val mean IoU gain; 0 disables it
    focal_weight: float = 0.0  # add focal_weight * focal loss (gamma 2)
    # The U-Net paper's border weight map as per-pixel sample weights (w_c = class_weights,
    # or 1): w0 * exp(-(d1 + d2)^2 / (2 sigma^2)) on pixels between objects.
    weight_map: bool = False
    weight_map_w0: float = 10.0  # the paper's w0
    weight_map_sigma: float = 5.0  # pixels; the paper's "approximately 5 pixels"
    weight_map_classes: tuple[int, ...] | None = None  # object classes; None: all but 0
    # "best" keeps the epoch with the best validation mean IoU; "last" keeps the final
    # epoch, the honest choice when the validation data is also the test data.
    checkpoint: str = "best"
    seed: int = 0
    verbose: int | str = "auto"  # Keras fit verbosity: progress bar on a terminal
    # tf.distribute (STRATEGIES): "one" device, "mirrored" (the GPUs of one host),
    # "multi-worker" (the hosts in TF_CONFIG) or "auto"; see unet_tf.distributed
    strategy: str = "auto"
    # multi-worker: seconds to wait for every TF_CONFIG worker to answer before failing with
    # their names (TensorFlow itself would wait an hour, deaf to SIGTERM)
    cluster_timeout: float = 120.0
    # "bfloat16": Keras' mixed_bfloat16 policy while training (bf16 compute, float32
    # weights, loss and saved model): 1.32x on an AVX-512 BF16 CPU, slower without BF16;
    # "auto" (default): bfloat16 where the hardware computes it, else float32
    # (unet_tf.precision.resolve_precision); "float32" everywhere
    precision: str = "auto"
    # XLA for model.fit's train and validation steps (the same losses, to float rounding).
    # "auto" (default): on where it was measured faster, a CPU with AVX2 but no AVX-512
    # (1.2x), for runs long enough to repay its compilation; off on AVX-512 CPUs (0.8x) and
    # under tf.distribute; Keras' own choice on GPUs (unet_tf.xla.resolve_jit_compile)
    jit_compile: str = "auto"
    # fine-tuning: start from this model's weights (a shipped model's name or a run / .keras
    # path) and architecture; a new head when the data's classes differ (unet_tf.finetune)
    init: str | None = None
    freeze_encoder_epochs: int = 0  # with init: the enc* layers frozen for these first epochs

    def __post_init__(self) -> None:
        if self.freeze_encoder_epochs and not self.init:
            raise ValueError("TrainConfig.freeze_encoder_epochs needs init (the model whose "
                             "encoder to keep); got init=None")
        if not 0 <= self.freeze_encoder_epochs <= self.epochs:
            raise ValueError("TrainConfig.freeze_encoder_epochs must be 0..epochs "
                             f"({self.epochs}); got {self.freeze_encoder_epochs}")
        if self.jit_compile not in JIT_COMPILE:
            raise ValueError(f"TrainConfig.jit_compile must be one of {list(JIT_COMPILE)}; got "
                             f"{self.jit_compile!r}")
        if self.epochs < 1 or not 0 < self.learning_rate < float("inf"):
            raise ValueError("TrainConfig needs epochs >= 1 and a finite learning_rate > 0; "
                             f"got epochs={self.epochs}, learning_rate={self.learning_rate}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainConfig.precision must be one of {list(PRECISIONS)}; got "
                             f"{self.precision!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"TrainConfig.strategy must be one of {list(STRATEGIES)}; got "
                             f"{self.strategy!r}")
        if not 0 < self.cluster_timeout < float("inf"):
            raise ValueError("TrainConfig.cluster_timeout is a number of seconds > 0, e.g. "
                             f"120; got {self.cluster_timeout!r}")


def dump_json(obj: Any, path: Any) -> None:
    """Write ``obj`` (dataclasses become dicts) as indented JSON."""

    def default(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return dataclasses.asdict(value)
        raise TypeError(f"Not JSON serialisable: {value!r}")

    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, default=default)
        f.write("\n")
