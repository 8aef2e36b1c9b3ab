"""The table of job kinds: how each kind is planned, which handler runs each of its tasks, where.

A kind has a planner (validates the parameters and splits the work into tasks, without torch, so
that submitting stays fast), a work step that runs once per planned task, and optionally a final
step that runs once after every work task ended (the reduce of a fan-out, a job's contact sheet).
Handlers and planners are named by "module:function" and imported only when used.

The Celery app builds its task names, routes and time limits from this table, so a new kind is
one entry here and one thin task in worker/tasks.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from featurechanger.errors import ConfigError

MINUTE = 60
HOUR = 60 * MINUTE


@dataclass(frozen=True)
class Step:
    """One kind of task: the Celery task `featurechanger.<name>` runs `handler` on a task row."""

    name: str
    handler: str  # "module:function" taking a TaskContext, returning a TaskOutcome
    soft_time_limit: int  # seconds; the handler gets SoftTimeLimitExceeded and the task fails
    time_limit: int  # seconds; the worker process is killed

    @property
    def task_name(self) -> str:
        return f"featurechanger.{self.name}"


@dataclass(frozen=True)
class JobKind:
    name: str
    queue: str  # default queue; `--queue` picks another
    planner: str  # "module:function" (settings, params) -> Plan
    work: Step
    final: Step | None = None
    final_needs_every_item: bool = False  # a reduce of partial work would be silently wrong
    # Its one task draws a finer bar (training steps, decoded images) than the job's item
    # count: an in-process run shows that bar instead of the job's.
    own_progress_bar: bool = False


KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind(
            name="edit", queue="gpu", planner="featurechanger.jobs.edit:plan",
            work=Step("edit_shard", "featurechanger.jobs.edit:edit_shard",
                      soft_time_limit=30 * MINUTE, time_limit=35 * MINUTE),
            final=Step("edit_sheet", "featurechanger.jobs.edit:contact_sheet",
                       soft_time_limit=5 * MINUTE, time_limit=10 * MINUTE),
        ),
        JobKind(
            name="interpolate", queue="gpu", planner="featurechanger.jobs.interpolate:plan",
            work=Step("interpolate", "featurechanger.jobs.interpolate:make_gifs",
                      soft_time_limit=30 * MINUTE, time_limit=35 * MINUTE),
        ),
        JobKind(
            name="vectors", queue="gpu", planner="featurechanger.jobs.vectors:plan",
            work=Step("vectors_shard", "featurechanger.jobs.vectors:encode_shard",
                      soft_time_limit=30 * MINUTE, time_limit=35 * MINUTE),
            final=Step("vectors_reduce", "featurechanger.jobs.vectors:reduce_vectors",
                       soft_time_limit=5 * MINUTE, time_limit=10 * MINUTE),
            final_needs_every_item=True,
        ),
        JobKind(
            name="train", queue="gpu", planner="featurechanger.jobs.train:plan",
            work=Step("train", "featurechanger.jobs.train:train_model",
                      soft_time_limit=24 * HOUR, time_limit=24 * HOUR + 10 * MINUTE),
            own_progress_bar=True,
        ),
        JobKind(
            name="shard", queue="cpu", planner="featurechanger.jobs.shard:plan",
            work=Step("build_shards", "featurechanger.jobs.shard:build_shards",
                      soft_time_limit=4 * HOUR, time_limit=4 * HOUR + 5 * MINUTE),
            own_progress_bar=True,
        ),
    )
}

QUEUES: tuple[str, ...] = ("gpu", "cpu")


def job_kind(name: str) -> JobKind:
    if name not in KINDS:
        raise ConfigError(f"Unknown job kind {name!r}. Valid kinds are {{{', '.join(KINDS)}}}.")
    return KINDS[name]


def steps() -> list[Step]:
    """Every step of every kind, each once."""
    found = [kind.work for kind in KINDS.values()]
    found += [kind.final for kind in KINDS.values() if kind.final is not None]
    return found


def step_named(name: str) -> Step:
    for step in steps():
        if step.name == name:
            return step
    raise ConfigError(f"Unknown task step {name!r}. Valid steps are "
                      f"{{{', '.join(step.name for step in steps())}}}.")


def longest_time_limit() -> int:
    return max(step.time_limit for step in steps())


def load_function(reference: str) -> Callable[..., Any]:
    """Import the function that "module:function" names."""
    module_name, function_name = reference.split(":")
    return getattr(importlib.import_module(module_name), function_name)
