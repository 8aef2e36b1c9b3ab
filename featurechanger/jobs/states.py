"""The states of jobs and of their tasks, and how a job's state follows from its tasks' states.

A task moves  waiting -> queued -> running -> succeeded | failed | cancelled;  a running task
whose worker stopped heartbeating goes back to queued, and `jobs retry` puts failed ones back.
A job is only ever the sum of its tasks, except that cancelling it is a decision of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

WAITING = "waiting"  # a final step (a reduce) that starts once every work task has ended
QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
PARTIAL = "partial"  # some items failed, the rest succeeded
FAILED = "failed"
CANCELLED = "cancelled"

JOB_STATES: tuple[str, ...] = (QUEUED, RUNNING, SUCCEEDED, PARTIAL, FAILED, CANCELLED)
OPEN_TASK_STATES: frozenset[str] = frozenset({WAITING, QUEUED, RUNNING})
ENDED_JOB_STATES: frozenset[str] = frozenset({SUCCEEDED, PARTIAL, FAILED, CANCELLED})


@dataclass(frozen=True)
class TaskTally:
    """What a job's state depends on for one of its tasks."""

    state: str
    final: bool  # the job's final step, not one of its work items
    done: int
    failed: int


@dataclass(frozen=True)
class JobTally:
    state: str
    done: int
    failed: int


def tally_job(tasks: Iterable[TaskTally], cancelled: bool = False) -> JobTally:
    """The state and item counts of a job, from its tasks.

    A failed final step fails the job whatever its items did: without it the job's product
    (the vector set, the contact sheet) does not exist.
    """
    tasks = list(tasks)
    work = [task for task in tasks if not task.final]
    done = sum(task.done for task in work)
    failed = sum(task.failed for task in work)
    if cancelled:
        return JobTally(CANCELLED, done, failed)
    if any(task.state in OPEN_TASK_STATES for task in tasks):
        started = any(task.state not in (WAITING, QUEUED) for task in tasks)
        return JobTally(RUNNING if started else QUEUED, done, failed)
    if any(task.final and task.state == FAILED for task in tasks):
        return JobTally(FAILED, done, failed)
    if failed == 0 and all(task.state == SUCCEEDED for task in tasks):
        return JobTally(SUCCEEDED, done, failed)
    return JobTally(PARTIAL if done > 0 else FAILED, done, failed)
