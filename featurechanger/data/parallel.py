"""Spreading per-item work over processes, in order, with a progress bar.

Used by the synthetic generator and the shard builder: both map a module-level function over
chunks of images and consume the results in order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

from featurechanger.errors import ConfigError

Task = TypeVar("Task")
Result = TypeVar("Result")


def available_cores() -> int:
    """The cores this process may run on (the CPU affinity, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resolve_workers(workers: int | None) -> int:
    """None means every available core; otherwise a positive number of processes.

    A daemonic process (a Celery prefork child) may not start processes, so there None means
    one: the job system spreads work over shards and workers instead.
    """
    daemonic = multiprocessing.current_process().daemon
    if workers is None:
        return 1 if daemonic else available_cores()
    if daemonic and workers > 1:
        raise ConfigError(f"Cannot start {workers!r} worker processes from a daemonic process "
                          "(e.g. a Celery task); use workers=1.")
    if workers < 1:
        raise ConfigError(
            f"Workers must be at least 1, not {workers!r} (omit it to use every core).")
    return workers


def ordered_map(function: Callable[[Task], Result], tasks: Iterable[Task],
                workers: int) -> Iterator[Result]:
    """`map(function, tasks)` over `workers` processes, results in task order.

    With one worker it runs in this process, which keeps tracebacks simple and costs nothing.
    """
    if workers == 1:
        yield from map(function, tasks)
        return
    # forkserver: never fork a parent that may hold threads, CUDA or open database connections.
    context = multiprocessing.get_context("forkserver")
    with context.Pool(workers) as pool:
        yield from pool.imap(function, tasks)


def progress_bar(total: int, description: str, enabled: bool = True) -> tqdm:
    """A bar on stderr with the rate in images/s and the time left."""
    return tqdm(total=total, desc=description, unit="img", disable=not enabled, smoothing=0.1,
                dynamic_ncols=True)
