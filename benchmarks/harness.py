"""The one benchmark harness: the host detected once, the commit, timing and peak memory, and
the record format every suite appends to ``benchmarks/results/SUITE.jsonl``.

A record is one JSON line::

    {"suite": "recipe_pets", "case": "default", "commit": "5b6c701", "date": "...Z",
     "host": {...}, "settings": {...}, "metrics": {...}}

``settings`` say what was run (preset, epochs, sizes, flags), ``metrics`` what came out
(seconds, images/s, scores). Later records of a case supersede earlier ones in the tables
(:func:`latest`); nothing is ever rewritten except by :func:`import_legacy`, which replaces
the records it imported from the same legacy file before. Nothing here imports TensorFlow:
the host's library versions are read from package metadata.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import resource
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# /proc/cpuinfo flags that decide which kernels TF (oneDNN) and LiteRT (XNNPACK) can use
CPU_FLAGS = ("fma", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
             "amx_int8")
LIBRARIES = ("tensorflow", "keras", "numpy", "ai-edge-litert", "jax")


def _cpuinfo() -> tuple[str, set[str]]:
    path = Path("/proc/cpuinfo")
    lines = path.read_text().splitlines() if path.exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines
                  if line.startswith("model name")), platform.processor() or platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in lines
                      if line.startswith("flags")), []))
    return model, flags


def _gpus() -> list[str]:
    """GPU names from ``nvidia-smi`` (no framework import); empty where there is none."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def versions() -> dict:
    """Python and the measured libraries' versions, from package metadata (imports nothing)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


@functools.cache
def host() -> dict:
    """This machine, detected once per process: CPU model, the flags of :data:`CPU_FLAGS` it
    has, cores, GPUs, library versions and the environment switches that change kernels.

    Example:
        >>> sorted(host())[:3]
        ['cores', 'cpu', 'flags']
    """
    model, flags = _cpuinfo()
    found = {
        "cpu": model,
        "flags": [flag for flag in CPU_FLAGS if flag in flags],
        "cores": os.cpu_count(),
        # cores this process may run on (affinity, containers)
        "usable_cores": (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                         else os.cpu_count()),
        "machine": f"{platform.system()} {platform.machine()}",
        "gpus": _gpus(),
        "versions": versions(),
    }
    env = {name: os.environ[name] for name in
           ("ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS", "KERAS_BACKEND") if name in os.environ}
    if env:
        found["env"] = env
    return found


def isa(host: dict) -> str:
    """The host's kind as the tables name it: what decides CPU speed here is the vector ISA."""
    flags = host.get("flags")
    if flags is None:
        return "flags not recorded"
    cap = (host.get("env") or {}).get("ONEDNN_MAX_CPU_ISA")
    kind = ("AMX" if "amx_tile" in flags else "AVX-512 BF16" if "avx512_bf16" in flags
            else "AVX-512" if "avx512f" in flags else "AVX2 only" if "avx2" in flags
            else "no AVX2")
    return kind + (f", oneDNN capped at {cap}" if cap else "")


def host_label(host: dict) -> str:
    """A short, table-sized name of a record's host, e.g. ``AMD EPYC, AVX2 only, 2 cores``;
    a legacy record's own description where it recorded no CPU model."""
    if not host:
        return "not recorded"
    if host.get("gpus"):
        return ", ".join(host["gpus"])
    if not host.get("cpu"):
        # legacy descriptions end with library versions: the tables keep the machine part
        return (host.get("description") or "not recorded").split("; TF")[0]
    cores = f", {host['cores']} cores" if host.get("cores") else ""
    return f"{host['cpu']}, {isa(host)}{cores}"


def commit() -> str | None:
    """The repository's HEAD as a short sha, ``-dirty`` when tracked files have changes; None
    outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        sha = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha + ("-dirty" if dirty else "")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def relative_paths(value):
    """``value`` (any JSON value) with this machine's paths written relative to the root."""
    text = json.dumps(value)
    text = text.replace(f"{ROOT}/", "").replace(f"{ROOT.parent}/", "../")
    return json.loads(text)


def records_path(suite: str) -> Path:
    return RESULTS / f"{suite}.jsonl"


def record(suite: str, case: str, settings: dict, metrics: dict, **extra) -> dict:
    """Append one record of ``suite`` / ``case`` to ``benchmarks/results/SUITE.jsonl``.

    ``extra`` adds top-level fields (``commit``, ``date``, ``host`` override the detected
    ones; ``legacy`` marks an imported record).

    Example:
        >>> record("example", "tiny", {"size": 32}, {"seconds": 1.5})  # doctest: +SKIP
    """
    entry = {"suite": suite, "case": case, "commit": commit(), "date": now(), "host": host(),
             "settings": settings, "metrics": metrics}
    entry.update(extra)
    entry = relative_paths(entry)
    path = records_path(suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(entry, sort_keys=False) + "\n")
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"record: {shown} ({case})", flush=True)
    return entry


def read_records(suite: str, results: Path | None = None) -> list[dict]:
    path = (results or RESULTS) / f"{suite}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def latest(suite: str, results: Path | None = None) -> dict[str, dict]:
    """The last record of every case of ``suite``, in the order cases first appeared."""
    found: dict[str, dict] = {}
    for entry in read_records(suite, results):
        found[entry["case"]] = entry  # a dict keeps a key's first position
    return found


def flat(entry: dict) -> dict:
    """A record's settings and metrics in one dict (metrics win a clash)."""
    return {**entry.get("settings", {}), **entry.get("metrics", {})}


def split(result: dict, settings_keys) -> tuple[dict, dict]:
    """``result`` as (settings, metrics): the keys in ``settings_keys`` and the rest."""
    settings = {k: v for k, v in result.items() if k in settings_keys}
    metrics = {k: v for k, v in result.items() if k not in settings_keys}
    return settings, metrics


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    ``VmHWM`` of /proc/self/status where there is one. Not ``ru_maxrss`` there: a process
    started by ``subprocess`` inherits its parent's size at the fork (Linux keeps it across
    exec), so a child of a 3 GB parent would report 3 GB.
    """
    peak = status_mib("VmHWM")
    return peak if peak is not None else (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB on Linux


def status_mib(field: str) -> float | None:
    """A memory line of /proc/self/status (kB) in MiB; None where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


@contextlib.contextmanager
def measure() -> Iterator[dict]:
    """Time a block and note this process's peak memory after it.

    Example:
        >>> with measure() as m:
        ...     _ = sum(range(1000))
        >>> sorted(m)
        ['peak_rss_mib', 'seconds']
    """
    found: dict = {}
    start = time.perf_counter()
    try:
        yield found
    finally:
        found["seconds"] = round(time.perf_counter() - start, 3)
        found["peak_rss_mib"] = round(peak_rss_mib(), 1)
