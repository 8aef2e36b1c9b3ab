"""The train job: one task that runs a whole training run (featurechanger.training) on a
worker, and records the run it made."""

from __future__ import annotations

from typing import Any

from featurechanger.config import Settings
from featurechanger.jobs.context import Plan, PlannedTask, TaskContext, TaskOutcome, TaskStopped


def plan(settings: Settings, params: dict[str, Any]) -> Plan:
    """params: TrainOptions.to_dict() (featurechanger.training.options)."""
    from featurechanger.training.options import TrainOptions

    from featurechanger.data.shards import open_shard_set
    from featurechanger.jobs.selection import shard_set_id
    from featurechanger.training.runs import check_resumable, get_run

    options = TrainOptions.from_dict(params)
    options.validate()
    records = {"run_id": options.resume, "shard_set_id": None}
    if options.resume is not None:  # an unknown or finished run is the user's error, named now
        run = get_run(settings, options.resume)
        check_resumable(run)
        records["shard_set_id"] = run.shard_set_id
    stored = options.to_dict()
    if options.data:  # relative to the data root, so that a worker finds it on its mount
        shard_set = open_shard_set(options.data)  # missing or broken: fails now, not on a worker
        stored["data"] = settings.relative(options.data, "data")
        records["shard_set_id"] = shard_set_id(settings, shard_set)
    return Plan(params=stored, tasks=[PlannedTask(item=0, total=1)], **records)


def train_model(context: TaskContext) -> TaskOutcome:
    """Train, or resume the run an earlier attempt of this job made (its worker died, the job
    was cancelled or interrupted and is retried): a run is never started over, nor orphaned.
    A cancelled task stops its run at a checkpoint, resumable."""
    from dataclasses import replace

    from featurechanger.jobs.store import record_job_run
    from featurechanger.training.loop import train
    from featurechanger.training.options import TrainOptions
    from featurechanger.training.runs import get_run

    settings = context.settings
    options = TrainOptions.from_dict(context.params)
    earlier = context.records.get("run_id")
    if earlier is not None and options.resume is None:
        if get_run(settings, earlier).state == "completed":
            return _made(earlier)
        options = replace(options, resume=earlier)
    if options.data:
        options = replace(options, data=str(settings.resolve(options.data, "data")))
    if options.device == "auto" and context.device:
        options = replace(options, device=context.device)  # the worker's FEATURECHANGER_DEVICE
    run_id = train(options, settings, progress=context.progress_bars,
                   on_run=lambda run: record_job_run(settings.database_url, context.job_id, run),
                   should_stop=context.should_stop)
    if context.should_stop():
        raise TaskStopped(f"task {context.task_id} was cancelled or given to another worker; "
                          f"run {run_id} stopped at a checkpoint (`featurechanger train "
                          f"--resume {run_id}` continues it)")
    return _made(run_id)


def _made(run_id: int) -> TaskOutcome:
    return TaskOutcome(done=1, outputs={"run_id": run_id}, records={"run_id": run_id})
