"""Dask clients for whole-slide jobs: a local cluster of processes, or a running scheduler.

Examples:
    >>> with dask_client(workers=2, scheduler=None) as client:  # doctest: +SKIP
    ...     client.map(...)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

SCHEDULER_TIMEOUT = "10s"  # how long to try a --scheduler address before giving up


@contextlib.contextmanager
def dask_client(workers: int | None, scheduler: str | None) -> Iterator:
    """A ``distributed.Client``: to ``scheduler`` if given, else to a new ``LocalCluster`` of
    ``workers`` processes (one thread each, on loopback), closed on exit.

    Raises:
        ConnectionError: the scheduler cannot be reached within ``SCHEDULER_TIMEOUT``; the
            message names the address and how to start one.
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(
                f"no Dask scheduler answered at {scheduler} within {SCHEDULER_TIMEOUT} "
                f"({exc.__class__.__name__}); start one with `dask scheduler` (and workers "
                "with `dask worker ADDRESS`), or use --workers N for a local cluster") from None
        with client:
            yield client
        return
    if workers is None or workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client
