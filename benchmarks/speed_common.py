"""Measurement helpers of the ``speed`` suite: matmul peak, FLOPs, timing, memory (the host
is :func:`benchmarks.harness.host`).

Nothing here imports TensorFlow at module level: the latency child processes of
``speed.py`` that run a TFLite file import LiteRT alone, so that their peak memory is what a
TensorFlow-free deployment would use.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence

from benchmarks.harness import peak_rss_mib, status_mib


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


def rss_mib() -> float:
    """Resident memory of this process now, in MiB (VmRSS; the peak where unknown)."""
    now = status_mib("VmRSS")
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
