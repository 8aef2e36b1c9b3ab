"""`featurechanger jobs`: list, show, watch, cancel and retry jobs."""

from __future__ import annotations

from typing import Any

import click

from featurechanger.jobs.states import JOB_STATES
from orchestrator.output import RECORD_ID, emit, json_option, settings_from_context
from orchestrator.submit import (broker_app, describe_job, finish_following, report_end,
                                 require_consumer, run_queued_here, send, unserved_queue)


@click.group()
def jobs() -> None:
    """Follow and manage jobs (edit, train, vectors, interpolate, shard)."""


@jobs.command("list")
@click.option("--state", type=click.Choice(JOB_STATES), help="Only jobs in this state.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many of the most recent jobs.")
@json_option
@click.pass_context
def list_command(ctx: click.Context, state: str | None, limit: int, as_json: bool) -> None:
    """The most recent jobs, newest first."""
    from featurechanger.jobs.store import list_jobs

    found = list_jobs(_url(ctx), limit=limit, state=state)
    emit({"jobs": found}, as_json, lambda payload: _job_table(payload["jobs"], state))


@jobs.command()
@click.argument("job_id", type=RECORD_ID)
@click.option("--failed", "show_failed", is_flag=True,
              help="List the images that failed and why, and the tasks that failed whole.")
@click.option("--tasks", "show_tasks", is_flag=True, help="List every task of the job.")
@json_option
@click.pass_context
def show(ctx: click.Context, job_id: int, show_failed: bool, show_tasks: bool,
         as_json: bool) -> None:
    """A job's state, counts, what it used and made; --failed says what failed and why."""
    from featurechanger.jobs.store import failures, iso_utc, job_summary, task_rows

    url = _url(ctx)
    payload: dict[str, Any] = job_summary(url, job_id)
    warning = unserved_queue(settings_from_context(ctx), payload)
    if warning:
        payload["warning"] = warning
    if show_failed:
        payload["failures"] = failures(url, job_id)
    if show_tasks:
        payload["task_list"] = [
            {**row, **{key: iso_utc(row[key]) for key in ("started_at", "finished_at",
                                                           "heartbeat_at")}}
            for row in task_rows(url, job_id)]
    emit(payload, as_json, _describe_in_full)


@jobs.command()
@click.argument("job_id", type=RECORD_ID)
@json_option
@click.pass_context
def watch(ctx: click.Context, job_id: int, as_json: bool) -> None:
    """Follow a job with a progress bar until it ends (exit 1 if it failed, 2 if partial)."""
    finish_following(ctx, job_id, as_json=as_json)


@jobs.command()
@click.argument("job_id", type=RECORD_ID)
@json_option
@click.pass_context
def cancel(ctx: click.Context, job_id: int, as_json: bool) -> None:
    """Cancel a job: queued tasks never start, running ones stop at their next heartbeat."""
    from featurechanger.jobs.store import cancel_job, job_summary

    cancel_job(_url(ctx), job_id)
    emit(job_summary(_url(ctx), job_id), as_json, describe_job)


@jobs.command()
@click.argument("job_id", type=RECORD_ID)
@click.option("--wait", is_flag=True, help="With a broker: follow the job until it ends.")
@json_option
@click.pass_context
def retry(ctx: click.Context, job_id: int, wait: bool, as_json: bool) -> None:
    """Run again only what did not succeed: failed or cancelled tasks, and failed images
    (images already done are skipped); tasks still queued are sent again, in case their
    message was lost. Without a broker it runs here."""
    from featurechanger.errors import ConfigError
    from featurechanger.jobs.kinds import job_kind
    from featurechanger.jobs.runner import IN_PROCESS_LIVENESS
    from featurechanger.jobs.store import job_summary, requeue_stale, retry_job

    settings = settings_from_context(ctx)
    url = _url(ctx)
    if not settings.broker_url:
        queue = job_summary(url, job_id)["queue"]
        if queue is not None:
            raise ConfigError(f"Job {job_id} was queued to the workers ({queue!r}); retry it "
                              f"with FEATURECHANGER_BROKER_URL set, so that they run it.")
        # An in-process run that was killed left its task running; nobody else will requeue it.
        requeue_stale(url, IN_PROCESS_LIVENESS, job_id)
        retry_job(url, job_id)
        run_queued_here(settings, job_id)
        report_end(ctx, job_id, as_json=as_json)
        return
    job = job_summary(url, job_id)
    # A job first run in-process has no queue: its tasks follow the kind's routes.
    require_consumer(settings, job["queue"] or job_kind(job["kind"]).queue)
    send(broker_app(settings), settings, job_id, retry_job(url, job_id))
    if wait:
        finish_following(ctx, job_id, as_json=as_json)
        return
    report_end(ctx, job_id, as_json=as_json)


def _url(ctx: click.Context) -> str:
    """The database URL, with the schema checked (and the embedded default created)."""
    from featurechanger.db.migrate import ensure_schema

    url = settings_from_context(ctx).database_url
    ensure_schema(url)
    return url


def _job_table(found: list[dict[str, Any]], state: str | None = None) -> str:
    if not found:
        return f"No {state} jobs." if state else "No jobs yet. `featurechanger demo` makes some."
    header = f"{'ID':>5}  {'KIND':<11} {'STATE':<10} {'DONE':>13} {'FAILED':>7}  CREATED"
    rows = [f"{job['job_id']:>5}  {job['kind']:<11} {job['state']:<10} "
            f"{job['done']:>6}/{job['total']:<6} {job['failed']:>7}  {job['created_at']}"
            for job in found]
    return "\n".join([header, *rows])


def _describe_in_full(job: dict[str, Any]) -> str:
    records = {"run": job["run_id"], "vector set": job["vector_set_id"],
               "shard set": job["shard_set_id"]}
    used = [f"{name} {record}" for name, record in records.items() if record is not None]
    lines = [describe_job(job),
             f"  command: {job['command_line']}",
             f"  uses: {', '.join(used) or 'no recorded run, vector set or shard set'}",
             "  tasks: " + ", ".join(f"{n} {state}" for state, n in sorted(job["tasks"].items()))]
    if job.get("warning"):
        lines.append(f"  warning: {job['warning']}")
    for task in job.get("task_list", []):
        lines.append(f"  task {task['task_id']} {task['step']} item {task['item']}: "
                     f"{task['state']} ({task['done']}/{task['total']} done, {task['failed']} "
                     f"failed, attempt {task['attempts']}, worker {task['worker']})"
                     + (f" - {task['error']}" if task["error"] else ""))
    failures = job.get("failures")
    if failures is not None:
        if not failures["images"] and not failures["tasks"]:
            lines.append("  nothing failed")
        lines += [f"  failed task: {t['step']} item {t['item']}: {t['error']}"
                  for t in failures["tasks"]]
        lines += [f"  failed image {i['image_id']}: {i['error']}" for i in failures["images"]]
    return "\n".join(lines)
