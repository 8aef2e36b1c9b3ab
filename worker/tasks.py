"""Thin Celery tasks. Each takes the id of a job task row and runs it with the job system's own
code (featurechanger.jobs.run_task), which claims the row, runs the step's handler under a
heartbeat and records the outcome in the job tables; and beat's nightly `retrain`, which only
submits train jobs. No logic lives only here.
"""

from __future__ import annotations

from functools import partial

from celery import Task

from featurechanger.config import load_settings
from featurechanger.jobs import states
from featurechanger.jobs.execute import run_task
from featurechanger.jobs.schedule import RETRAIN_TASK, RetrainPlan, submit_retraining
from worker.celery_app import app, options, send_tasks


class JobTaskFailed(Exception):
    """A job task that failed: recorded in the job tables, and raised so that Celery's events,
    and Flower, show it failed too (an expected error: logged without a traceback)."""


# Every job step's task: bound (it reports progress), its failures expected.
job_task = partial(app.task, bind=True, throws=(JobTaskFailed,))


def _run(task: Task, task_id: int) -> dict:
    def progress(done: int, failed: int, total: int) -> None:
        task.send_event("task-progress", done=done, failed=failed, total=total)

    report = run_task(load_settings(), task_id, worker=task.request.hostname,
                      celery_id=task.request.id, dispatch=lambda refs: send_tasks(app, refs),
                      liveness=options.liveness, device=options.device, on_progress=progress)
    if report.outcome == states.FAILED:
        raise JobTaskFailed(f"job {report.job_id} task {task_id} ({report.step}): {report.error}")
    return report.as_dict()


@job_task(name="featurechanger.edit_shard")
def edit_shard(self: Task, task_id: int) -> dict:
    """Edit the selected images of one shard (an edit job's work)."""
    return _run(self, task_id)


@job_task(name="featurechanger.edit_sheet")
def edit_sheet(self: Task, task_id: int) -> dict:
    """Draw an edit job's before/after contact sheet once its shards are done."""
    return _run(self, task_id)


@job_task(name="featurechanger.interpolate")
def interpolate(self: Task, task_id: int) -> dict:
    """Write the GIFs of one shard (or one chunk of pairs) of an interpolate job."""
    return _run(self, task_id)


@job_task(name="featurechanger.vectors_shard")
def vectors_shard(self: Task, task_id: int) -> dict:
    """Encode one shard for a vectors job and save its partial sums."""
    return _run(self, task_id)


@job_task(name="featurechanger.vectors_reduce")
def vectors_reduce(self: Task, task_id: int) -> dict:
    """Add up a vectors job's partial sums into its vector set."""
    return _run(self, task_id)


@job_task(name="featurechanger.train")
def train(self: Task, task_id: int) -> dict:
    """Run a training run (a train job)."""
    return _run(self, task_id)


@job_task(name="featurechanger.build_shards")
def build_shards(self: Task, task_id: int) -> dict:
    """Decode a dataset into a shard set (a shard job)."""
    return _run(self, task_id)


@app.task(name=RETRAIN_TASK)
def retrain(plan: dict) -> list[int]:
    """Beat's nightly task: submit a train job per model of `plan` (a RetrainPlan as JSON, see
    featurechanger.jobs.schedule); returns their job ids."""
    return submit_retraining(load_settings(), RetrainPlan.from_json(plan),
                             lambda refs: send_tasks(app, refs))
