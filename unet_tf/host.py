"""What kind of CPU this is, as the automatic settings see it; forced by one variable.

``precision="auto"`` (:mod:`unet_tf.precision`) and ``jit_compile="auto"``
(:mod:`unet_tf.xla`) depend on the CPU's features, and this project runs on three kinds of
x86 host: AVX2 only, AVX-512 without BF16, and AVX-512 with BF16. Setting
``UNET_TF_CPU_KIND`` to one of :data:`CPU_KINDS` makes every automatic choice act as on that
kind of host, whatever the real CPU, so the behaviour (and the test suite) of each kind can be
checked on any machine. Only the choice is forced: the arithmetic still runs on the real CPU
(bfloat16 without BF16 instructions is emulated, slower but correct).

Examples:
    >>> import os
    >>> os.environ[CPU_KIND_VARIABLE] = "avx512_bf16"
    >>> "avx512_bf16" in cpu_flags(), cpu_kind()
    (True, 'avx512_bf16')
    >>> del os.environ[CPU_KIND_VARIABLE]
"""

from __future__ import annotations

import os

CPU_KIND_VARIABLE = "UNET_TF_CPU_KIND"
_X86 = frozenset({"sse4_1", "sse4_2", "avx", "f16c", "fma", "avx2"})
_AVX512 = _X86 | {"avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512_vnni"}
# The /proc/cpuinfo flags each kind of host reports (the ones the automatic choices read).
CPU_KINDS = {
    "avx2": _X86,
    "avx512": _AVX512,
    "avx512_bf16": _AVX512 | {"avx512_bf16"},
}


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags: those of ``$UNET_TF_CPU_KIND`` when it is set, else Linux's
    ``/proc/cpuinfo`` (or the file ``cpuinfo``); empty where neither says.

    Raises:
        ValueError: ``UNET_TF_CPU_KIND`` holds a name not in :data:`CPU_KINDS`.
    """
    if cpuinfo is None:
        forced = os.environ.get(CPU_KIND_VARIABLE, "").strip()
        if forced:
            if forced not in CPU_KINDS:
                raise ValueError(
                    f"{CPU_KIND_VARIABLE}={forced!r} is not a kind of CPU this project knows; "
                    f"use one of {sorted(CPU_KINDS)} or unset it"
                )
            return set(CPU_KINDS[forced])
        cpuinfo = "/proc/cpuinfo"
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def cpu_kind(flags: set[str] | None = None) -> str:
    """"avx512_bf16", "avx512", "avx2" or "other" for ``flags`` (this CPU's when None)."""
    flags = cpu_flags() if flags is None else flags
    if "avx512f" in flags:
        return "avx512_bf16" if "avx512_bf16" in flags else "avx512"
    return "avx2" if "avx2" in flags else "other"
