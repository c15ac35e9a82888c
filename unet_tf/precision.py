"""Mixed precision for training: layers built under a dtype policy, models saved in float32.

``TrainConfig(precision="bfloat16")`` trains with Keras' ``mixed_bfloat16`` policy: the
convolutions compute in bfloat16 while the weights, the optimizer state and the loss (which
casts the logits) stay float32. The released ``model.keras`` is rebuilt with float32 layers,
so what is served, exported and scored runs in float32, as from a float32 run.

Measured (``benchmarks/results/speed_knobs.jsonl``): 1.32x the float32 training speed of the
``f16`` preset on an AVX-512 BF16 CPU (AMD EPYC); CPUs without BF16 or AMX emulate it and
are slower.
``precision="auto"``, the default, therefore picks bfloat16 only where the hardware computes
it: a CPU with ``avx512_bf16`` or ``amx_bf16``, or GPUs of compute capability 8.0 (Ampere) and
later; ``precision="float32"`` trains in float32 everywhere. ``UNET_TF_CPU_KIND`` makes
"auto" choose as on another kind of CPU (:mod:`unet_tf.host`).

Examples:
    >>> import keras
    >>> with dtype_policy("bfloat16"):
    ...     layer = keras.layers.Dense(2)
    >>> layer.dtype_policy.name, keras.config.dtype_policy().name
    ('mixed_bfloat16', 'float32')
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import keras

from unet_tf.host import cpu_flags

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # TrainConfig.precision
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bfloat16 math
# ONEDNN_MAX_CPU_ISA values that leave oneDNN its bfloat16 instructions; a lower cap (e.g.
# AVX2, to reproduce an older host) makes it emulate bfloat16, so "auto" picks float32
BF16_ONEDNN_ISAS = ("ALL", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX",
                    "AVX512_CORE_AMX_FP16", "AVX10_1_512", "AVX10_1_512_AMX",
                    "AVX10_1_512_AMX_FP16")


def native_bfloat16() -> bool:
    """Whether this host computes bfloat16 in hardware: every visible GPU of compute
    capability >= 8.0, or (no GPU) a CPU with AVX-512 BF16 or AMX that oneDNN may use
    (``ONEDNN_MAX_CPU_ISA`` unset or not below ``AVX512_CORE_BF16``)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return all(
            tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability")
                  or (0, 0)) >= (8, 0)
            for gpu in gpus
        )
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    return bool(cpu_flags() & set(BF16_CPU_FLAGS)) and (not isa or isa in BF16_ONEDNN_ISAS)


def resolve_precision(precision: str) -> str:
    """``precision`` with "auto" replaced by what this host runs fastest at the same results:
    "bfloat16" where :func:`native_bfloat16`, else "float32"."""
    if precision == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    if precision not in POLICIES:
        raise ValueError(
            f"precision must be one of {[*POLICIES, 'auto']}; got {precision!r}"
        )
    return precision


@contextmanager
def dtype_policy(precision: str):
    """Build layers under the Keras dtype policy of ``precision`` ("float32", "bfloat16",
    or "auto": see :func:`resolve_precision`)."""
    precision = resolve_precision(precision)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES[precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def as_float32(model: keras.Model) -> keras.Model:
    """``model`` with float32 layers (the same weights); ``model`` itself if it has them."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    float32 = model.__class__.from_config(_float32_policies(model.get_config()))
    float32.set_weights(model.get_weights())
    return float32


def _float32_policies(config):
    """A model config with every layer's dtype policy set to float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            return {**config, "config": {**config.get("config", {}), "name": "float32"}}
        return {k: _float32_policies(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_float32_policies(v) for v in config]
    return config
