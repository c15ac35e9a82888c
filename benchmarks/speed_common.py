"""Measurement helpers of ``benchmarks/speed.py``: host, matmul peak, FLOPs, timing, memory.

Nothing here imports TensorFlow at module level: the latency child processes of
``speed.py`` that run a TFLite file import LiteRT alone, so that their peak memory is what a
TensorFlow-free deployment would use.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

# /proc/cpuinfo flags that decide which kernels TF (oneDNN) and LiteRT (XNNPACK) can use
CPU_FLAGS = ("fma", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
             "amx_int8")


def cpu_info() -> dict:
    """CPU model, the SIMD / matrix flags of :data:`CPU_FLAGS`, and the core counts."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    lines = text.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines
                  if line.startswith("model name")), platform.processor() or platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in lines
                      if line.startswith("flags")), []))
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "model": model,
        "flags": {flag: flag in flags for flag in CPU_FLAGS},
        "cores": os.cpu_count(),
        "usable_cores": usable,  # cores this process may run on (affinity, containers)
        # a cap on oneDNN's instructions (e.g. AVX2: how an AVX2-only host runs the kernels)
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA") or None,
        "machine": platform.machine(),
        "system": platform.system(),
    }


def versions() -> dict:
    """Versions of the libraries measured, read from package metadata (imports nothing)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("tensorflow", "keras", "ai-edge-litert", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    # TF 2.x on x86 uses oneDNN kernels unless this is "0"
    found["TF_ENABLE_ONEDNN_OPTS"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (on)")
    return found


def host_line(cpu: dict, libs: dict) -> str:
    flags = ", ".join(f for f, present in cpu["flags"].items() if present) or "none"
    if cpu.get("onednn_max_cpu_isa"):
        flags += f"; oneDNN capped at ONEDNN_MAX_CPU_ISA={cpu['onednn_max_cpu_isa']}"
    return (f"{cpu['model']} ({flags}); {cpu['cores']} cores ({cpu['usable_cores']} usable), "
            f"{cpu['system']} {cpu['machine']}; TF {libs['tensorflow']}, Keras {libs['keras']}, "
            f"ai-edge-litert {libs['ai-edge-litert']}, Python {libs['python']}")


def matmul_block(n: int = 2048, chain: int = 8) -> Callable[[], float]:
    """A timed float32 matmul block in TensorFlow, returning its FLOP/s: the host's
    practical peak for dense kernels.

    A ``tf.function`` multiplies an n x n matrix ``chain`` times in a row (each product
    depends on the previous one, so none can be skipped or merged) with TF's default thread
    pools, as training uses them; traced and warmed up here, one call is one timed block.
    """
    import tensorflow as tf

    a = tf.random.normal([n, n], seed=1)
    b = tf.random.normal([n, n], seed=2) / n**0.5  # keeps the chain's values bounded

    @tf.function
    def products(x):
        for _ in range(chain):
            x = tf.matmul(x, b)
        return x[0, 0]

    float(products(a))  # trace and warm up
    flops = 2.0 * n**3 * chain

    def block() -> float:
        start = time.perf_counter()
        float(products(a))
        return flops / (time.perf_counter() - start)

    return block


def matmul_peak(n: int = 2048, chain: int = 8, repeats: int = 5) -> dict:
    """Best and median float32 matmul FLOP/s of ``repeats`` blocks (:func:`matmul_block`)."""
    block = matmul_block(n, chain)
    rates = [block() for _ in range(repeats)]
    return {"n": n, "chain": chain, "repeats": repeats, "gflops_best": max(rates) / 1e9,
            "gflops_median": statistics.median(rates) / 1e9}


# Graph ops that hold (nearly) all of a CNN's arithmetic, and their multiply-adds.
def _conv_macs(op) -> int:
    if op.type == "Conv2D":  # filter [kh, kw, cin, cout]; every output value: kh*kw*cin MACs
        kh, kw, cin, _ = op.inputs[1].shape
        return op.outputs[0].shape.num_elements() * kh * kw * cin
    if op.type == "Conv2DBackpropInput":  # Conv2DTranspose: filter [kh, kw, cout, cin]
        kh, kw, cout, _ = op.inputs[1].shape  # every input value scatters to kh*kw*cout
        return op.inputs[2].shape.num_elements() * kh * kw * cout
    if op.type == "DepthwiseConv2dNative":  # filter [kh, kw, cin, multiplier]
        kh, kw, _, _ = op.inputs[1].shape
        return op.outputs[0].shape.num_elements() * kh * kw
    if op.type in ("MatMul", "BatchMatMulV2"):
        return op.outputs[0].shape.num_elements() * op.inputs[0].shape[-1]
    return 0


def forward_flops(model, height: int, width: int, channels: int = 3) -> dict:
    """FLOPs (2 x multiply-adds) of one image's forward pass, counted from the graph.

    The model is traced at a fixed [1, height, width, channels] shape and the
    multiply-adds of every convolution (plain, transposed, depthwise) and matmul are
    computed from the static shapes of their inputs, filters and outputs. Batch norm,
    activations, pooling, additions and concatenations are left out (a few percent).
    """
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False))
    graph = fn.get_concrete_function(
        tf.TensorSpec([1, height, width, channels], tf.float32)).graph
    macs = Counter()
    for op in graph.get_operations():
        count = _conv_macs(op)
        if count:
            macs[op.type] += int(count)
    if not macs:
        raise RuntimeError(f"no convolution found in the graph of {model.name}; the FLOP "
                           "count would be 0")
    return {"flops": 2 * sum(macs.values()), "macs_by_op": dict(macs)}


def rotated(names: Sequence[str], repeat: int) -> list[str]:
    """``names`` starting at a different one each repeat, so no contender always runs first."""
    k = repeat % max(len(names), 1)
    return [*names[k:], *names[:k]]


def alternate(blocks: dict[str, Callable[[], float]], repeats: int,
              log: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Run every contender's timed block once per repeat, contenders interleaved.

    On a shared, noisy host a slow spell then hits every contender instead of one; report
    the best repeat of each.
    """
    values: dict[str, list[float]] = {name: [] for name in blocks}
    for repeat in range(repeats):
        for name in rotated(list(blocks), repeat):
            values[name].append(blocks[name]())
            if log:
                log(f"  repeat {repeat + 1}/{repeats} {name}: {values[name][-1]:.4g}")
    return values


def _status_mib(field: str) -> float | None:
    """A memory line of /proc/self/status (kB) in MiB; None where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    ``VmHWM`` of /proc/self/status: the high-water mark of this program's memory. Not
    ``ru_maxrss``, which a process started by ``subprocess`` inherits from its parent's size
    at the fork (Linux keeps it across exec), so a child of a 3 GB parent reports 3 GB.
    """
    peak = _status_mib("VmHWM")
    return peak if peak is not None else (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB on Linux


def rss_mib() -> float:
    """Resident memory of this process now, in MiB (VmRSS; the peak where unknown)."""
    now = _status_mib("VmRSS")
    return now if now is not None else peak_rss_mib()


def time_calls(step: Callable[[], object], seconds: float, min_calls: int = 5,
               max_calls: int = 1000, warmup: int = 3) -> list[float]:
    """Milliseconds of each of at least ``min_calls`` calls of ``step``, for ``seconds``."""
    for _ in range(warmup):  # the first call traces / allocates
        step()
    times: list[float] = []
    end = time.perf_counter() + seconds
    while len(times) < min_calls or (time.perf_counter() < end and len(times) < max_calls):
        start = time.perf_counter()
        step()
        times.append(1000 * (time.perf_counter() - start))
    return times
