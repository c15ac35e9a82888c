"""The cluster a multi-worker run trains on: ``TF_CONFIG`` read and checked, and the wait
for its workers.

TensorFlow itself would wait an hour for a worker that never starts, deaf to SIGTERM and
Ctrl-C; :func:`wait_for_workers` waits ``TrainConfig.cluster_timeout`` seconds at most, names
the workers that did not answer, and stops on either signal. Standard library only, but for
TensorFlow's ``TFConfigClusterResolver`` (imported when ``TF_CONFIG`` is set).

Examples:
    >>> split_address("[::1]:2222")
    ('::1', 2222)
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

logger = logging.getLogger("unet_tf")

TRAINING_JOBS = ("chief", "worker")  # the TF_CONFIG tasks that train (not evaluator, ps)
PROBE_INTERVAL = 0.25  # seconds between rounds of connection attempts to missing workers
PROGRESS_INTERVAL = 5.0  # seconds between "waiting for worker ..." lines


def cluster_tasks() -> tuple[dict[str, list[str]], str | None, int | None]:
    """(cluster: job -> addresses, this task's type, its index) from ``TF_CONFIG``.

    Read with ``TFConfigClusterResolver`` (empty cluster without ``TF_CONFIG``), and checked:
    this task must be one that its cluster lists.

    Examples:
        >>> cluster_tasks()  # worker 1 of two  # doctest: +SKIP
        ({'worker': ['10.0.0.1:2222', '10.0.0.2:2222']}, 'worker', 1)
    """
    if not os.environ.get("TF_CONFIG"):
        return {}, None, None
    import tensorflow as tf

    try:
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        cluster = resolver.cluster_spec().as_dict()
        task_type, index = resolver.task_type, resolver.task_id
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        raise ValueError(f"TF_CONFIG is not the JSON TensorFlow expects ({exc!r}): "
                         '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": '
                         '"worker", "index": I}}; see the README\'s scale-out guide') from exc
    cluster = {job: list(tasks.values()) if isinstance(tasks, dict) else list(tasks)
               for job, tasks in cluster.items()}
    if task_type is not None:
        tasks = cluster.get(task_type, [])
        if task_type not in cluster:
            raise ValueError(f"TF_CONFIG names this task {task_type!r}, a job its cluster does "
                             f"not list (jobs: {sorted(cluster)}); use one of those")
        if not 0 <= index < len(tasks):
            raise ValueError(
                f"TF_CONFIG task index {index} is out of range: its cluster lists "
                f"{len(tasks)} {task_type} task{'s' if len(tasks) != 1 else ''}, so the index "
                f"is 0..{len(tasks) - 1} (one distinct index per process)")
    return cluster, task_type, index


def cluster_size() -> int:
    """How many training tasks (chief and workers) ``TF_CONFIG`` lists (1 without it)."""
    cluster, _, _ = cluster_tasks()
    return max(1, sum(len(cluster.get(job, [])) for job in TRAINING_JOBS))


def split_address(address: str) -> tuple[str, int]:
    """(host, port) of a ``host:port`` address (IPv6 hosts in brackets).

    Examples:
        >>> split_address("[::1]:2222"), split_address("worker-0.local:2222")
        (('::1', 2222), ('worker-0.local', 2222))
    """
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"TF_CONFIG address {address!r} is not host:port, e.g. 10.0.0.2:2222")
    return host.strip("[]"), int(port)


def answers(host: str, port: int, timeout: float) -> bool:
    """Whether something accepts a TCP connection at ``host:port`` within ``timeout`` s."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:  # refused, unreachable, unknown host, timed out
        return False


@contextlib.contextmanager
def stop_on_signals(what: str) -> Iterator[None]:
    """SIGTERM and Ctrl-C raise ``KeyboardInterrupt`` (saying what was stopped) inside."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name} {what}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():  # None: a handler installed outside Python
            signal.signal(sig, signal.SIG_DFL if old is None else old)


def _listener(port: int) -> socket.socket:
    """A TCP socket listening on ``port`` of every interface (IPv6 and IPv4 where it can)."""
    try:
        listener = socket.socket(socket.AF_INET6)
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    except OSError:  # no IPv6 on this host
        listener = socket.socket(socket.AF_INET)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("", port))
        # never accepted: the kernel completes the others' connections in the queue, and
        # closing the listener resets them, leaving the port free for TensorFlow's server
        listener.listen(socket.SOMAXCONN)
    except OSError:
        listener.close()
        raise
    return listener


@contextlib.contextmanager
def own_port(address: str, name: str) -> Iterator[None]:
    """Listen on this task's own port while waiting, so that the other workers, waiting
    for it in turn, see it answer before its TensorFlow server starts (and takes the port
    over)."""
    _, port = split_address(address)
    try:
        listener = _listener(port)
    except OSError as exc:
        raise OSError(f"TF_CONFIG gives this task ({name}) the address {address}, but port "
                      f"{port} cannot be opened on this host ({exc}); free the port or give "
                      "the task another one in TF_CONFIG") from exc
    try:
        yield
    finally:
        listener.close()


def wait_for_workers(timeout: float) -> None:
    """Wait until every other training task in ``TF_CONFIG`` accepts connections.

    Each missing worker is tried every :data:`PROBE_INTERVAL` seconds, with a line
    "waiting for worker 1 at host:port (12 s of 120 s)" every :data:`PROGRESS_INTERVAL`.
    Meanwhile this task's own port answers too (the others wait for it), and SIGTERM or
    Ctrl-C stop the wait at once (``KeyboardInterrupt``).

    Args:
        timeout: seconds to wait for all of them (``TrainConfig.cluster_timeout``).

    Raises:
        TimeoutError: a worker did not answer in time; the message names each one.

    Examples:
        >>> wait_for_workers(120)  # doctest: +SKIP
    """
    cluster, task_type, index = cluster_tasks()
    me = (task_type, index)
    waiting = {f"{job} {i} at {address}": split_address(address)
               for job in TRAINING_JOBS for i, address in enumerate(cluster.get(job, []))
               if (job, i) != me}
    if not waiting:
        return
    name = f"{task_type} {index}" if task_type else "this task"
    mine = cluster[task_type][index] if task_type in TRAINING_JOBS else None
    start = time.monotonic()
    report = start + PROGRESS_INTERVAL
    with stop_on_signals("while waiting for the cluster's workers; nothing was trained"), (
            own_port(mine, name) if mine else contextlib.nullcontext()):
        while True:
            for worker, (host, port) in list(waiting.items()):
                left = timeout - (time.monotonic() - start)
                if answers(host, port, max(0.05, min(1.0, left))):
                    del waiting[worker]
            elapsed = time.monotonic() - start
            if not waiting:
                logger.info("%s: every worker answered (%.0f s)", name, elapsed)
                return
            if elapsed >= timeout:
                raise TimeoutError(
                    f"{name}: {'; '.join(waiting)} did not answer within {timeout:g} s "
                    "(TrainConfig.cluster_timeout, --cluster-timeout); start the same command "
                    "there, or check TF_CONFIG's addresses and the firewall")
            if time.monotonic() >= report:
                report += PROGRESS_INTERVAL
                for worker in waiting:
                    logger.info("waiting for %s (%.0f s of %g s)", worker, elapsed, timeout)
            time.sleep(PROBE_INTERVAL)


def is_chief_task() -> bool:
    """Whether this process is the cluster's chief in ``TF_CONFIG`` (also without one): the
    task named ``chief``, else worker 0."""
    cluster, task_type, index = cluster_tasks()
    if "chief" in cluster:
        return task_type in (None, "chief")
    return task_type in (None, "worker") and not index


def task_name() -> str:
    """This process's task in ``TF_CONFIG``, e.g. ``worker 1`` (``chief`` without one)."""
    _, task_type, index = cluster_tasks()
    return f"{task_type} {index}" if task_type else "chief"


def writes_run(strategy: str) -> bool:
    """Whether a process training with ``strategy`` writes (and then evaluates) the run:
    always, except on the other workers of a multi-worker run."""
    multi = strategy == "multi-worker" or (strategy == "auto" and cluster_size() > 1)
    return not multi or is_chief_task()
