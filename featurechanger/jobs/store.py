"""Job and task rows, the source of truth for what is done: creating a job, claiming a task,
heartbeats, ending a task with its results, requeueing tasks whose worker went silent, cancel,
retry, and reading jobs back.

Every change that races with another worker is one conditional UPDATE whose row count says who
won, so two workers never both own a task. A claim is fenced by its attempt number: a worker that
lost its task (requeued while it was silent, or cancelled) can neither heartbeat nor end it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from featurechanger.db.base import utcnow
from featurechanger.db.jobs import JobRecord, JobTaskRecord, ResultRecord
from featurechanger.db.runs import RunMetricRecord, RunRecord
from featurechanger.db.session import session_scope
from featurechanger.errors import ConfigError
from featurechanger.jobs import states
from featurechanger.jobs.context import ItemResult, Plan, TaskOutcome
from featurechanger.jobs.kinds import JobKind, job_kind

FINAL_ITEM = -1  # the final step is not one of the job's items


@dataclass(frozen=True)
class Liveness:
    """How often a running task proves its worker alive, and when silence means it died."""

    heartbeat_s: float = 10.0
    stale_after_s: float = 60.0  # several missed beats, so that a slow database is not a death
    # Claims after which a task whose worker went silent fails instead of being requeued, so
    # that a task that kills its worker does not loop for ever. Attempts are never reset: they
    # also fence a claim (a worker that lost its task cannot end it), and `jobs retry` still
    # runs such a task once more.
    max_attempts: int = 3

    @classmethod
    def from_heartbeat(cls, heartbeat_s: float) -> Liveness:
        """Silence for six beats means the worker died."""
        return cls(heartbeat_s=heartbeat_s, stale_after_s=6 * heartbeat_s)


@dataclass(frozen=True)
class TaskRef:
    """What a dispatcher needs to send one task: its row, its Celery task name and queue, and
    its job (for monitors such as Flower)."""

    task_id: int
    step: str
    queue: str | None  # None: the job runs in-process
    job_id: int | None = None

    @property
    def task_name(self) -> str:
        return f"featurechanger.{self.step}"


@dataclass(frozen=True)
class Claim:
    task_id: int
    job_id: int
    attempt: int


def create_job(url: str, kind: JobKind, plan: Plan, *, queue: str | None,
               command_line: str | None = None) -> tuple[int, list[TaskRef]]:
    """Write a job and its tasks; returns the job id and the tasks to dispatch now.

    `queue` is the broker queue its tasks go to, or None for a job run in-process."""
    with session_scope(url) as session:
        job = JobRecord(kind=kind.name, params=plan.params, queue=queue, state=states.QUEUED,
                        run_id=plan.run_id, vector_set_id=plan.vector_set_id,
                        shard_set_id=plan.shard_set_id, total=sum(t.total for t in plan.tasks),
                        done=0, failed=0, command_line=command_line, outputs={})
        session.add(job)
        session.flush()
        rows = [JobTaskRecord(job_id=job.id, item=t.item, step=kind.work.name, total=t.total,
                              state=states.QUEUED, attempts=0, done=0, failed=0)
                for t in plan.tasks]
        if kind.final is not None:
            rows.append(JobTaskRecord(job_id=job.id, item=FINAL_ITEM, step=kind.final.name,
                                      total=0, state=states.WAITING, attempts=0, done=0, failed=0))
        session.add_all(rows)
        session.flush()
        return job.id, [TaskRef(row.id, row.step, queue, job.id) for row in rows
                        if row.state == states.QUEUED]


def record_refused_job(url: str, kind: str, params: dict, *, queue: str | None, error: str,
                       command_line: str | None = None) -> int:
    """Record a job that could not even be planned, as failed with the reason, for a submitter
    no one watches (beat's nightly retraining): `jobs list` shows it, not only a worker's log."""
    with session_scope(url) as session:
        now = utcnow()
        job = JobRecord(kind=kind, params=params, queue=queue, state=states.FAILED, total=0,
                        done=0, failed=0, command_line=command_line, outputs={}, error=error,
                        finished_at=now)
        session.add(job)
        session.flush()
        return job.id


def claim_task(url: str, task_id: int, worker: str, liveness: Liveness,
               celery_id: str | None = None) -> Claim | None:
    """Make `worker` the owner of a queued task, or of a running one whose worker went silent.

    Returns None when the task is not there to take: done, cancelled, or running elsewhere (a
    duplicate delivery of the same message).
    """
    now = utcnow()
    with session_scope(url) as session:
        claimable = (JobTaskRecord.state == states.QUEUED) | (
            (JobTaskRecord.state == states.RUNNING)
            & (JobTaskRecord.heartbeat_at < now - timedelta(seconds=liveness.stale_after_s))
            & (JobTaskRecord.attempts < liveness.max_attempts))
        claimed = session.execute(
            update(JobTaskRecord).where(JobTaskRecord.id == task_id, claimable).values(
                state=states.RUNNING, attempts=JobTaskRecord.attempts + 1, worker=worker,
                celery_id=celery_id, heartbeat_at=now, started_at=now, finished_at=None,
                error=None)).rowcount
        if not claimed:
            return None
        job_id, attempt = session.execute(
            select(JobTaskRecord.job_id, JobTaskRecord.attempts).where(
                JobTaskRecord.id == task_id)).one()
        session.execute(update(JobRecord).where(JobRecord.id == job_id,
                                                JobRecord.state == states.QUEUED).values(
            state=states.RUNNING, started_at=now))
        return Claim(task_id, job_id, attempt)


def heartbeat(url: str, claim: Claim, done: int, failed: int) -> bool:
    """Prove the claim alive and store progress; False once the task is no longer ours."""
    with session_scope(url) as session:
        return bool(session.execute(_owned(claim).values(
            heartbeat_at=utcnow(), done=done, failed=failed)).rowcount)


def finish_task(url: str, claim: Claim, outcome: TaskOutcome) -> bool:
    """End a task that ran to completion, writing its results in the same transaction.

    Returns False (and writes nothing) when the task was taken from this worker meanwhile.
    """
    with session_scope(url) as session:
        ended = session.execute(_owned(claim).values(
            state=states.SUCCEEDED, done=outcome.done, failed=outcome.failed, finished_at=utcnow(),
            error=None)).rowcount
        if not ended:
            return False
        _write_results(session, claim, outcome.results)
        if outcome.outputs or outcome.records:
            job = session.get(JobRecord, claim.job_id)
            job.outputs = {**(job.outputs or {}), **outcome.outputs}
            for name, value in outcome.records.items():
                setattr(job, name, value)
        return True


def record_job_run(url: str, job_id: int, run_id: int) -> None:
    """Tie a training run to its job as soon as it exists, so that a requeued or retried task
    resumes that run instead of starting another."""
    with session_scope(url) as session:
        session.get(JobRecord, job_id).run_id = run_id


def fail_task(url: str, claim: Claim, error: str, done: int) -> bool:
    """End a task whose handler raised: the items it did not finish count as failed."""
    with session_scope(url) as session:
        total = session.execute(select(JobTaskRecord.total).where(
            JobTaskRecord.id == claim.task_id)).scalar_one()
        return bool(session.execute(_owned(claim).values(
            state=states.FAILED, done=done, failed=max(total - done, 0), finished_at=utcnow(),
            error=error)).rowcount)


def release_task(url: str, claim: Claim) -> bool:
    """Give a claimed task back to the queue untouched (the runner was interrupted)."""
    with session_scope(url) as session:
        return bool(session.execute(_owned(claim).values(
            state=states.QUEUED, heartbeat_at=None)).rowcount)


def advance_job(url: str, job_id: int) -> list[TaskRef]:
    """Bring a job's state and counts up to date with its tasks; start its final step when every
    work task has ended. Returns the tasks that became queued (to dispatch)."""
    with session_scope(url) as session:
        job, tasks = _lock_job(session, job_id)
        kind = job_kind(job.kind)
        ready = _unblock_final_step(kind, job, tasks)
        _retally(session, job, kind, tasks)
        return [TaskRef(task.id, task.step, job.queue, job.id) for task in ready]


def requeue_stale(url: str, liveness: Liveness, job_id: int | None = None) -> list[TaskRef]:
    """Requeue running tasks whose worker stopped heartbeating (fail those that had their
    chances), and move on jobs whose worker died between their last work task and the final step.
    Returns the tasks to dispatch. Safe to run from every worker at once. `job_id`: only that
    job's tasks (an in-process retry must not judge the workers' tasks by its own liveness)."""
    now = utcnow()
    cutoff = now - timedelta(seconds=liveness.stale_after_s)
    refs: list[TaskRef] = []
    with session_scope(url) as session:
        query = select(
            JobTaskRecord.id, JobTaskRecord.job_id, JobTaskRecord.step, JobTaskRecord.attempts,
            JobTaskRecord.worker, JobTaskRecord.heartbeat_at, JobRecord.queue,
        ).join(JobRecord, JobRecord.id == JobTaskRecord.job_id).where(
            JobTaskRecord.state == states.RUNNING, JobTaskRecord.heartbeat_at < cutoff)
        if job_id is not None:
            query = query.where(JobTaskRecord.job_id == job_id)
        silent = session.execute(query).all()
        for task in silent:
            gave_up = task.attempts >= liveness.max_attempts
            note = (f"worker {task.worker!r} stopped heartbeating at "
                    f"{task.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC "
                    f"(attempt {task.attempts}, at most {liveness.max_attempts})")
            changed = session.execute(update(JobTaskRecord).where(
                JobTaskRecord.id == task.id, JobTaskRecord.attempts == task.attempts,
                JobTaskRecord.state == states.RUNNING, JobTaskRecord.heartbeat_at < cutoff,
            ).values(state=states.FAILED if gave_up else states.QUEUED,
                     failed=(JobTaskRecord.total - JobTaskRecord.done) if gave_up else 0,
                     finished_at=now if gave_up else None,
                     error=note if gave_up else f"requeued: {note}")).rowcount
            if changed and not gave_up:
                refs.append(TaskRef(task.id, task.step, task.queue, task.job_id))
        stalled = _jobs_with_only_a_final_step_open(session)
        if job_id is not None:
            stalled &= {job_id}
    for stale_job in sorted({task.job_id for task in silent} | stalled):
        refs += advance_job(url, stale_job)
    return refs


def _jobs_with_only_a_final_step_open(session: Session) -> set[int]:
    other = aliased(JobTaskRecord)
    work_open = select(other.id).where(other.job_id == JobTaskRecord.job_id,
                                       other.state.in_((states.QUEUED, states.RUNNING)))
    return set(session.execute(select(JobTaskRecord.job_id).where(
        JobTaskRecord.state == states.WAITING, ~work_open.exists())).scalars())


def cancel_job(url: str, job_id: int) -> None:
    """Cancel a job: its open tasks are cancelled, and a running one stops at its next beat."""
    with session_scope(url) as session:
        job, tasks = _lock_job(session, job_id)
        if job.state in states.ENDED_JOB_STATES:
            raise ConfigError(f"Job {job_id} already ended ({job.state}); there is nothing to "
                              "cancel.")
        now = utcnow()
        for task in tasks:
            if task.state in states.OPEN_TASK_STATES:
                task.state, task.finished_at = states.CANCELLED, now
        job.state, job.finished_at = states.CANCELLED, now


def retry_job(url: str, job_id: int) -> list[TaskRef]:
    """Queue again what did not succeed: failed and cancelled tasks, and tasks with failed items
    (their rerun skips the items already done). Returns the tasks to dispatch: those, and the
    tasks still queued, whose messages may have been lost (a duplicate delivery is skipped)."""
    with session_scope(url) as session:
        job, tasks = _lock_job(session, job_id)
        kind = job_kind(job.kind)
        is_final = _final_test(kind)
        work = [task for task in tasks if not is_final(task)]
        redo = [task for task in work if task.state in (states.FAILED, states.CANCELLED)
                or (task.state == states.SUCCEEDED and task.failed > 0)]
        final = [task for task in tasks if is_final(task)
                 and task.state in (states.FAILED, states.CANCELLED)]
        waiting_in_queue = [task for task in tasks if task.state == states.QUEUED]
        if not redo and not final and not waiting_in_queue:
            raise ConfigError(f"Job {job_id} has nothing to retry: it is {job.state} and no "
                              f"task of it failed, was cancelled or waits in the queue.")
        for task in redo:  # its done items stay done (the rerun skips them); the failed are retried
            task.state, task.error, task.finished_at, task.failed = states.QUEUED, None, None, 0
        for task in (t for t in tasks if is_final(t)):
            # The final step reduces over every item, so it runs again after any of them reruns.
            if redo or task in final:
                task.state, task.error, task.finished_at = states.WAITING, None, None
        job.state, job.error, job.finished_at = states.QUEUED, None, None  # no longer cancelled
        _unblock_final_step(kind, job, tasks)
        _retally(session, job, kind, tasks)
        return [TaskRef(task.id, task.step, job.queue, job.id) for task in tasks
                if task.state == states.QUEUED]


def queued_tasks(url: str, job_id: int) -> list[TaskRef]:
    """The job's tasks that wait in the queue now (to dispatch them again, or run them here)."""
    with session_scope(url) as session:
        job = _get_job(session, job_id)
        ids = session.execute(select(JobTaskRecord.id, JobTaskRecord.step).where(
            JobTaskRecord.job_id == job_id, JobTaskRecord.state == states.QUEUED).order_by(
                JobTaskRecord.id)).all()
        return [TaskRef(task_id, step, job.queue, job.id) for task_id, step in ids]


def completed_images(url: str, job_id: int, image_ids: list[str]) -> dict[str, str]:
    """Image id -> stored output path, for the given images of a job that already succeeded."""
    with session_scope(url) as session:
        rows = session.execute(select(ResultRecord.image_id, ResultRecord.output_path).where(
            ResultRecord.job_id == job_id, ResultRecord.image_id.in_(image_ids),
            ResultRecord.output_path.is_not(None))).all()
        return dict(rows)


def sample_results(url: str, job_id: int, count: int) -> list[tuple[int, str, str]]:
    """(task item, image id, output) of up to `count` succeeded images, spread over the job."""
    with session_scope(url) as session:
        rows = session.execute(select(JobTaskRecord.item, ResultRecord.image_id,
                                      ResultRecord.output_path).join(
            JobTaskRecord, JobTaskRecord.id == ResultRecord.task_id).where(
                ResultRecord.job_id == job_id, ResultRecord.output_path.is_not(None)).order_by(
                    ResultRecord.image_id)).all()
    if len(rows) <= count:
        return [tuple(row) for row in rows]
    step = (len(rows) - 1) / (count - 1)
    return [tuple(rows[round(i * step)]) for i in range(count)]


def job_summary(url: str, job_id: int) -> dict[str, Any]:
    """A job as JSON values: identity, state, counts, what it used and made, task states."""
    with session_scope(url) as session:
        job = _get_job(session, job_id)
        task_states = dict(session.execute(select(JobTaskRecord.state, func.count()).where(
            JobTaskRecord.job_id == job_id).group_by(JobTaskRecord.state)).all())
        summary = {**_job_fields(job), "tasks": task_states}
        if job.kind == "train" and job.run_id is not None:
            summary["training"] = _training_progress(session, job.run_id)
        return summary


def _training_progress(session: Session, run_id: int) -> dict[str, Any]:
    """How far a train job's run is: its one item ends only with the run, so this is what
    shows it moving (its last evaluation, at each epoch's end, and its last checkpoint)."""
    run = session.get(RunRecord, run_id)
    last = session.execute(select(RunMetricRecord).where(RunMetricRecord.run_id == run_id)
                           .order_by(RunMetricRecord.step.desc(), RunMetricRecord.id.desc())
                           .limit(1)).scalar()
    return {"run_id": run_id, "run_state": run.state, "checkpoint_step": run.step,
            "epoch": last.epoch if last else None, "step": last.step if last else None,
            "val_psnr": last.val_psnr if last else None}


def list_jobs(url: str, limit: int = 20, state: str | None = None) -> list[dict[str, Any]]:
    """The most recent jobs first."""
    with session_scope(url) as session:
        query = select(JobRecord).order_by(JobRecord.id.desc()).limit(limit)
        if state is not None:
            query = query.where(JobRecord.state == state)
        return [_job_fields(job) for job in session.execute(query).scalars()]


def task_rows(url: str, job_id: int) -> list[dict[str, Any]]:
    with session_scope(url) as session:
        _get_job(session, job_id)
        tasks = session.execute(select(JobTaskRecord).where(
            JobTaskRecord.job_id == job_id).order_by(JobTaskRecord.id)).scalars()
        return [{"task_id": t.id, "item": t.item, "step": t.step, "state": t.state,
                 "attempts": t.attempts, "worker": t.worker, "total": t.total, "done": t.done,
                 "failed": t.failed, "started_at": t.started_at, "finished_at": t.finished_at,
                 "heartbeat_at": t.heartbeat_at, "error": t.error} for t in tasks]


def failures(url: str, job_id: int, limit: int | None = None) -> dict[str, list[dict]]:
    """The images that failed and why, and the tasks that failed as a whole."""
    with session_scope(url) as session:
        _get_job(session, job_id)
        images = session.execute(select(ResultRecord.image_id, ResultRecord.error).where(
            ResultRecord.job_id == job_id, ResultRecord.error.is_not(None)).order_by(
                ResultRecord.image_id).limit(limit)).all()
        tasks = session.execute(select(JobTaskRecord.item, JobTaskRecord.step,
                                       JobTaskRecord.error).where(
            JobTaskRecord.job_id == job_id, JobTaskRecord.state == states.FAILED).order_by(
                JobTaskRecord.id)).all()
        return {"images": [{"image_id": i, "error": e} for i, e in images],
                "tasks": [{"item": i, "step": s, "error": e} for i, s, e in tasks]}


def _job_fields(job: JobRecord) -> dict[str, Any]:
    return {"job_id": job.id, "kind": job.kind, "state": job.state, "total": job.total,
            "done": job.done, "failed": job.failed, "queue": job.queue, "params": job.params,
            "run_id": job.run_id, "vector_set_id": job.vector_set_id,
            "shard_set_id": job.shard_set_id, "outputs": job.outputs or {}, "error": job.error,
            "command_line": job.command_line, "created_at": iso_utc(job.created_at),
            "started_at": iso_utc(job.started_at), "finished_at": iso_utc(job.finished_at)}


def iso_utc(moment: datetime | None) -> str | None:
    """A stored UTC time as JSON shows it, e.g. 2026-12-01T02:49:20Z."""
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def _get_job(session: Session, job_id: int) -> JobRecord:
    job = session.get(JobRecord, job_id)
    if job is None:
        raise ConfigError(f"There is no job {job_id!r}. `featurechanger jobs list` shows the "
                          f"jobs there are.")
    return job


def _lock_job(session: Session, job_id: int) -> tuple[JobRecord, list[JobTaskRecord]]:
    """The job and its tasks, read after taking a write lock on the job.

    Writing first holds the job row (PostgreSQL) or the database (SQLite) until commit, so the
    task states read next include every task that ended before, and a second refresh at the
    same time waits for this one instead of overwriting it with older counts.
    """
    locked = session.execute(update(JobRecord).where(JobRecord.id == job_id).values(
        state=JobRecord.state)).rowcount
    if not locked:
        _get_job(session, job_id)
    job = session.get(JobRecord, job_id, populate_existing=True)
    tasks = list(session.execute(select(JobTaskRecord).where(
        JobTaskRecord.job_id == job_id).order_by(JobTaskRecord.id)).scalars())
    return job, tasks


def _final_test(kind: JobKind):  # noqa: ANN202
    final_name = kind.final.name if kind.final else None
    return lambda task: task.step == final_name


def _unblock_final_step(kind: JobKind, job: JobRecord,
                        tasks: list[JobTaskRecord]) -> list[JobTaskRecord]:
    """Queue the final step once every work task ended (or fail it, for a reduce that needs
    every item). Returns the tasks it queued."""
    if job.state == states.CANCELLED:
        return []
    is_final = _final_test(kind)
    work = [task for task in tasks if not is_final(task)]
    waiting = [task for task in tasks if is_final(task) and task.state == states.WAITING]
    if not waiting or any(task.state in states.OPEN_TASK_STATES for task in work):
        return []
    incomplete = [task for task in work if task.state != states.SUCCEEDED or task.failed]
    for task in waiting:
        if kind.final_needs_every_item and incomplete:
            task.state, task.finished_at = states.FAILED, utcnow()
            task.error = (f"not run: {len(incomplete)} of {len(work)} tasks did not complete "
                          f"every item (first: item {incomplete[0].item}); "
                          f"`featurechanger jobs retry {job.id}` reruns them")
        else:
            task.state = states.QUEUED
    return [task for task in waiting if task.state == states.QUEUED]


def _retally(session: Session, job: JobRecord, kind: JobKind,
             tasks: list[JobTaskRecord]) -> None:
    is_final = _final_test(kind)
    tally = states.tally_job(
        (states.TaskTally(t.state, is_final(t), t.done, t.failed) for t in tasks),
        cancelled=job.state == states.CANCELLED)
    job.state, job.done, job.failed = tally.state, tally.done, tally.failed
    if tally.state in states.ENDED_JOB_STATES and job.finished_at is None:
        job.finished_at = utcnow()
    failed_tasks = [task for task in tasks if task.state == states.FAILED]
    if failed_tasks and tally.state in (states.FAILED, states.PARTIAL):
        first = failed_tasks[0]
        job.error = (f"{len(failed_tasks)} of {len(tasks)} tasks failed; first, "
                     f"{first.step} item {first.item}: {first.error}")
    elif tally.state == states.PARTIAL:
        job.error = f"{tally.failed} of {job.total} items failed; `jobs show {job.id} --failed`"
    session.flush()


def _owned(claim: Claim):  # noqa: ANN202
    """An UPDATE of the claimed task that matches only while this claim still owns it."""
    return update(JobTaskRecord).where(JobTaskRecord.id == claim.task_id,
                                       JobTaskRecord.attempts == claim.attempt,
                                       JobTaskRecord.state == states.RUNNING)


def _write_results(session: Session, claim: Claim, results: list[ItemResult]) -> None:
    """One statement per shard: a rerun replaces the rows of the images it processed again."""
    if not results:
        return
    image_ids = [result.image_id for result in results]
    session.execute(delete(ResultRecord).where(ResultRecord.job_id == claim.job_id,
                                               ResultRecord.image_id.in_(image_ids)))
    now = utcnow()
    session.execute(insert(ResultRecord), [
        {"job_id": claim.job_id, "task_id": claim.task_id, "image_id": result.image_id,
         "output_path": result.output_path, "error": result.error, "created_at": now}
        for result in results])
