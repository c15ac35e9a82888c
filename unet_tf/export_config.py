"""Export settings: the output formats, what :func:`unet_tf.export` writes and the parity bar.

Standard library only, like :mod:`unet_tf.config`, which re-exports every name here.

Examples:
    >>> from unet_tf.export_config import ExportConfig
    >>> ExportConfig(formats=("savedmodel", "tflite-int8")).tflite_variants
    ('int8',)
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The exported formats, one name each: in --formats, file names, parity reports and
# Predictor.format. TFLite variants differ by quantization: fp32 (none), fp16 (float16
# weights), int8 (full integer: uint8 pixels in, uint8 logits out), dynamic (int8 weights,
# float activations). onnx: the SavedModel's serving function for onnxruntime (float32;
# needs the "onnx" extra, so it is opt-in).
TFLITE_VARIANTS = ("fp32", "fp16", "int8", "dynamic")
EXPORT_FORMATS = ("savedmodel", *(f"tflite-{v}" for v in TFLITE_VARIANTS), "onnx")
# the browser page (unet_tf.web): LiteRT.js running the int8 (else fp16 or fp32) file;
# bioimageio: a bioimage.io model package (spec 0.5) beside a .zip of it (opt-in, its extra)
OUTPUT_FORMATS = (*EXPORT_FORMATS, "web", "bioimageio")


@dataclass(frozen=True)
class ParityThresholds:
    """What an export must reach against the Keras model to be written (strict defaults).

    Agreement is the fraction of pixels whose class equals the Keras model's, over all
    pixels of the parity images at their own size. IoU drops are in mean-IoU units against
    the ground truth (0.01 = 1 point) and are checked both ways (``abs``).
    """

    savedmodel_agreement: float = 0.999  # same graph and weights: only float round-off differs
    fp32_agreement: float = 0.999  # TFLite kernels
    fp16_agreement: float = 0.995  # float16 weights
    int8_iou_drop: float = 0.01  # full integer: pixels near class boundaries may flip
    dynamic_iou_drop: float = 0.01  # dynamic-range quantized weights
    onnx_agreement: float = 0.999  # the SavedModel's float32 graph in onnxruntime's kernels

    def check(self, name: str) -> tuple[str, float]:
        """(metric, threshold) that the format called ``name`` must pass.

        Examples:
            >>> ParityThresholds().check("tflite-int8")
            ('iou_drop', 0.01)
        """
        if name not in EXPORT_FORMATS:
            raise ValueError(f"unknown export format {name!r}; known: {list(EXPORT_FORMATS)}")
        key = name.removeprefix("tflite-")
        if key in ("int8", "dynamic"):
            return "iou_drop", getattr(self, f"{key}_iou_drop")
        return "agreement", getattr(self, f"{key}_agreement")


@dataclass(frozen=True)
class ExportConfig:
    """What :func:`unet_tf.export` writes and how strictly it checks it.

    Examples:
        >>> ExportConfig(formats=("savedmodel", "tflite-int8")).tflite_variants
        ('int8',)
    """

    # dynamic range is opt-in: its speed depends on the CPU and runtime, and integer-only
    # accelerators cannot run it
    formats: tuple[str, ...] = ("savedmodel", "tflite-fp32", "tflite-fp16", "tflite-int8")
    parity_images: int = 50  # validation images compared at their own size
    representative_images: int = 100  # training images that calibrate int8 activations
    thresholds: ParityThresholds = field(default_factory=ParityThresholds)
    overwrite: bool = False  # replace an existing export folder (only once the new one passed)
    # SPDX id of a bioimage.io package's licence; None: a shipped model's own, else CC-BY-4.0
    license: str | None = None

    def __post_init__(self) -> None:
        bad = [f for f in self.formats if f not in OUTPUT_FORMATS]
        if bad or not self.formats:
            raise ValueError(
                f"formats must be a non-empty subset of {list(OUTPUT_FORMATS)}; got "
                f"{list(self.formats)}"
            )
        if "web" in self.formats and not {"int8", "fp16", "fp32"} & set(self.tflite_variants):
            raise ValueError("the web page runs a .tflite file: add tflite-int8 (or "
                             "tflite-fp16) to formats beside web")
        for name in ("parity_images", "representative_images"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")

    @property
    def tflite_variants(self) -> tuple[str, ...]:
        return tuple(f.removeprefix("tflite-") for f in self.formats if f.startswith("tflite-"))
