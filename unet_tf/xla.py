"""XLA (``jit_compile``) for training, where it was measured faster.

Keras compiles ``model.fit``'s steps with XLA on GPUs and leaves it off on CPUs. On this
project's CPUs that is right for some and not for others (records in ``benchmarks/results/``:
``speed_knobs.jsonl`` and ``speed.jsonl`` (``python -m benchmarks speed``), 2-core AMD EPYC
hosts, batch 16, same losses to float rounding; ``xla_quality.jsonl``: best validation IoU
within 0.01 with XLA on and off, two seeds):

- AVX2 without AVX-512, float32: XLA trains the default preset **1.2x** faster at 128 and
  256 px (``f12`` 1.18x): it fuses batch norm, ReLU and the loss into the convolutions'
  neighbours, where TensorFlow's graph runs each as its own pass over memory.
- AVX-512 (with BF16): XLA is **0.81x** in float32 and 0.61x with bfloat16 (``f16``):
  its convolutions do not use oneDNN's kernels, which are faster there.

Compiling costs seconds per input shape (about 10 s for the default preset's train and
validation steps at 128 px; the last, smaller batch of an epoch is another shape), which a
short run never earns back, so ``TrainConfig(jit_compile="auto")`` turns XLA on only on an
AVX2 CPU without AVX-512, with no GPU, outside ``tf.distribute``, for a run of at least
``MIN_XLA_PIXELS`` training pixels; "on" and "off" force it.

Examples:
    >>> resolve_jit_compile("auto", train_pixels=10**9, flags={"avx2", "fma"}, gpus=0)
    True
    >>> resolve_jit_compile("auto", train_pixels=10**9, flags={"avx2", "avx512f"}, gpus=0)
    False
"""

from __future__ import annotations

from unet_tf.config import JIT_COMPILE
from unet_tf.host import cpu_flags

# epochs x images x height x width: 40 epochs of 240 images at 128 px are 157 M. Below this
# (about 6,000 images of 128 px, 5 minutes of the default preset on 2 AVX2 cores) the ~20 s
# of compiling two batch shapes for training and validation outweigh XLA's 1.2x.
MIN_XLA_PIXELS = 100_000_000


def xla_is_faster(flags: set[str] | None = None) -> bool:
    """Whether XLA was measured faster than TensorFlow's oneDNN graph on this kind of CPU:
    x86 with AVX2 and without AVX-512 (``flags``: /proc/cpuinfo's, read when None)."""
    flags = cpu_flags() if flags is None else flags
    return "avx2" in flags and "avx512f" not in flags


def resolve_jit_compile(setting: str, train_pixels: int | None = None,
                        distributed: bool = False, flags: set[str] | None = None,
                        gpus: int | None = None) -> bool | str:
    """What ``model.compile(jit_compile=...)`` gets for ``TrainConfig.jit_compile``.

    Args:
        setting: "on", "off" or "auto".
        train_pixels: pixels the run trains on (epochs x images x height x width); None: a
            run long enough to repay compilation.
        distributed: training under a ``tf.distribute`` strategy other than the default.
        flags: the CPU's feature flags (read from /proc/cpuinfo when None).
        gpus: visible GPUs (counted when None).

    Returns:
        True or False, or "auto" on a GPU host (Keras' choice: XLA where the model allows).
    """
    if setting not in JIT_COMPILE:
        raise ValueError(f"jit_compile must be one of {list(JIT_COMPILE)}; got {setting!r}")
    if setting != "auto":
        return setting == "on"
    if gpus is None:
        import tensorflow as tf

        gpus = len(tf.config.list_physical_devices("GPU"))
    if gpus:
        return "auto"
    if distributed or (train_pixels is not None and train_pixels < MIN_XLA_PIXELS):
        return False
    return xla_is_faster(flags)
