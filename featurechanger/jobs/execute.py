"""Running one task of a job: claim it, run its step's handler under a heartbeat, record the
outcome, and move the job on. A Celery worker and the in-process runner both call `run_task`;
only how they dispatch the tasks that become ready differs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import select

from featurechanger.config import Settings
from featurechanger.db.jobs import JobRecord, JobTaskRecord
from featurechanger.db.session import session_scope
from featurechanger.errors import FeatureChangerError
from featurechanger.jobs import states
from featurechanger.jobs.context import TaskContext, TaskStopped
from featurechanger.jobs.heartbeat import Heartbeat
from featurechanger.jobs.kinds import Step, load_function, step_named
from featurechanger.jobs.store import (FINAL_ITEM, Claim, Liveness, TaskRef, advance_job,
                                       claim_task, fail_task, finish_task)

log = logging.getLogger(__name__)

Dispatch = Callable[[Sequence[TaskRef]], None]
Progress = Callable[[int, int, int], None]  # (done, failed, total) of the running task


@dataclass(frozen=True)
class TaskReport:
    """What became of one delivery of a task (the Celery task's return value, for Flower)."""

    task_id: int
    job_id: int | None
    step: str | None
    outcome: str  # succeeded | failed | skipped (not ours to run) | lost (taken from us)
    done: int = 0
    failed: int = 0
    error: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def run_task(settings: Settings, task_id: int, *, worker: str, dispatch: Dispatch,
             liveness: Liveness = Liveness(), celery_id: str | None = None,
             device: str | None = None, on_progress: Progress | None = None,
             progress_bars: bool = False) -> TaskReport:
    """Run task `task_id` here if it is ours to run; `dispatch` sends the tasks it unblocks.

    `progress_bars`: the handler may draw its own bars on stderr (see TaskContext)."""
    url = settings.database_url
    claim = claim_task(url, task_id, worker, liveness, celery_id)
    if claim is None:
        return TaskReport(task_id, None, None, "skipped")
    with Heartbeat(url, claim, liveness.heartbeat_s) as beat:
        context, step = _context(settings, claim, device, beat, on_progress, progress_bars)
        try:
            outcome = load_function(step.handler)(context)
        except Exception as error:  # noqa: BLE001 - recorded on the task; the worker goes on
            message = f"{type(error).__name__}: {error}"
            if isinstance(error, TaskStopped):  # cancelled, or taken over: nothing went wrong
                log.info("task %s (%s, item %s) stopped: %s", task_id, step.name,
                         context.item, error)
            elif isinstance(error, FeatureChangerError):  # the user's to fix; the message says how
                log.warning("task %s (%s, item %s) failed: %s", task_id, step.name,
                            context.item, message)
            else:  # a bug: its traceback belongs in the log
                log.exception("task %s (%s, item %s) failed", task_id, step.name, context.item)
            ended = fail_task(url, claim, message, beat.done)
            report = TaskReport(task_id, claim.job_id, step.name, states.FAILED, beat.done,
                                max(context.total - beat.done, 0), message)
        else:
            ended = finish_task(url, claim, outcome)
            report = TaskReport(task_id, claim.job_id, step.name, states.SUCCEEDED,
                                outcome.done, outcome.failed)
    if not ended:
        return TaskReport(task_id, claim.job_id, step.name, "lost", report.done, report.failed)
    dispatch(advance_job(url, claim.job_id))
    return report


def _context(settings: Settings, claim: Claim, device: str | None, beat: Heartbeat,
             on_progress: Progress | None, progress_bars: bool) -> tuple[TaskContext, Step]:
    with session_scope(settings.database_url) as session:
        task = session.get(JobTaskRecord, claim.task_id)
        job = session.get(JobRecord, claim.job_id)
        work_items = list(session.execute(select(JobTaskRecord.item).where(
            JobTaskRecord.job_id == job.id, JobTaskRecord.item != FINAL_ITEM).order_by(
                JobTaskRecord.item)).scalars())

    def progress(done: int, failed: int) -> None:
        beat.progress(done, failed)
        if on_progress is not None:
            on_progress(done, failed, task.total)

    context = TaskContext(
        settings=settings, job_id=job.id, kind=job.kind, params=job.params,
        records={"run_id": job.run_id, "vector_set_id": job.vector_set_id,
                 "shard_set_id": job.shard_set_id},
        outputs=dict(job.outputs or {}), task_id=task.id, item=task.item, total=task.total,
        items_of_job=work_items, device=device, progress=progress, should_stop=beat.lost,
        progress_bars=progress_bars)
    return context, step_named(task.step)
