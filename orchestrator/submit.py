"""Submitting jobs from commands: plan and record a job, then queue its tasks to the workers (sent
by name, so that submitting never imports torch) or, without a broker, run it in this process.

A command that makes a job adds `@submit_options` and ends with one call:

    submit_job(ctx, "train", params, queue=queue, wait=wait, as_json=as_json)

A command that had a single-run form before it became a job passes `report`, which turns the
ended job's summary into that form's output (its --json keys, plus "job_id"), so that scripts
see the same result whether the job ran here or on a worker (with --wait).
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from orchestrator.output import emit, settings_from_context

if TYPE_CHECKING:  # imported inside the functions: `--help` must not pay for them
    from celery import Celery

    from featurechanger.config import Settings
    from featurechanger.jobs.store import TaskRef

# Exit statuses of a command that waited for its job.
EXIT_CODES = {"succeeded": 0, "partial": 2, "failed": 1, "cancelled": 1}
# Where a job produced its result: its summary -> (payload, human text or a function of it).
Report = Callable[[dict[str, Any]], tuple[dict[str, Any], "Callable[[Any], str] | str"]]


def submit_options(command: Callable) -> Callable:
    """--queue, --wait and --json, the options every job-submitting command shares."""
    command = click.option(
        "--json", "as_json", is_flag=True, help="Print a JSON object for scripts.")(command)
    command = click.option(
        "--wait", is_flag=True,
        help="With a broker: follow the job with a progress bar until it ends; exit 1 if it "
             "failed, 2 if some items failed. (Without a broker the job always runs here.)",
    )(command)
    return click.option(
        "--queue", default=None,
        help="Queue to send the job's tasks to (default: the kind's, gpu or cpu). Needs a "
             "broker.")(command)


def submit_job(ctx: click.Context, kind: str, params: dict[str, Any], *, queue: str | None,
               wait: bool, as_json: bool, report: Report | None = None,
               device: str | None = None, partial_exit: int = EXIT_CODES["partial"]) -> None:
    """Create a job of `kind` and queue it (with a broker) or run it here (without one).

    `report` describes a job that succeeded (or ended partial) the command's own way; `device`
    is the torch device of an in-process run (None: CUDA when there is one; workers use their
    FEATURECHANGER_DEVICE); `partial_exit` is the exit status when some items failed.
    """
    from featurechanger.db.migrate import ensure_schema
    from featurechanger.errors import ConfigError
    from featurechanger.jobs.kinds import job_kind
    from featurechanger.jobs.submit import new_job

    settings = settings_from_context(ctx)
    if not settings.broker_url:
        if queue is not None:
            raise ConfigError(f"--queue {queue!r} needs a broker (FEATURECHANGER_BROKER_URL); "
                              f"without one, jobs run in this process.")
        job = run_new_job_here(settings, kind, params, device=device)
        report_end(ctx, job["job_id"], as_json=as_json, report=report, partial_exit=partial_exit)
        return
    ensure_schema(settings.database_url)
    queue = queue or job_kind(kind).queue
    require_consumer(settings, queue)
    app = broker_app(settings)
    job_id, refs = new_job(settings, kind, params, queue=queue, command_line=command_line())
    send(app, settings, job_id, refs)
    if wait:
        finish_following(ctx, job_id, as_json=as_json, report=report, partial_exit=partial_exit)
        return
    emit({"job_id": job_id, "kind": kind, "queue": queue, "state": "queued",
          "tasks": len(refs)}, as_json,
         f"Job {job_id} ({kind}) queued on {queue!r}: {len(refs)} "
         f"{'task' if len(refs) == 1 else 'tasks'} sent. Follow it with "
         f"`featurechanger jobs watch {job_id}`.")


def run_new_job_here(settings: Settings, kind: str, params: dict[str, Any], *,
                     device: str | None = None) -> dict[str, Any]:
    """Create a job and run it in this process with a progress bar; returns its summary."""
    from featurechanger.db.migrate import ensure_schema
    from featurechanger.jobs.store import job_summary
    from featurechanger.jobs.submit import new_job

    ensure_schema(settings.database_url)
    job_id, _ = new_job(settings, kind, params, queue=None, command_line=command_line())
    run_queued_here(settings, job_id, device=device)
    return job_summary(settings.database_url, job_id)


def command_line() -> str:
    """The user's command, recorded with the job."""
    return shlex.join(["featurechanger", *sys.argv[1:]])


def run_queued_here(settings: Settings, job_id: int, *, device: str | None = None) -> None:
    """Run a job's queued tasks in this process, with a progress bar: the job's, or the task's
    own where its kind draws a finer one (training, shard building)."""
    from featurechanger.jobs.kinds import job_kind
    from featurechanger.jobs.runner import run_in_process
    from featurechanger.jobs.store import job_summary

    if job_kind(job_summary(settings.database_url, job_id)["kind"]).own_progress_bar:
        run_in_process(settings, job_id, device=device, progress_bars=True)
        return
    with JobBar(settings, job_id) as bar:
        run_in_process(settings, job_id, device=device, on_change=bar.refresh)


def finish_following(ctx: click.Context, job_id: int, *, as_json: bool,
                     report: Report | None = None,
                     partial_exit: int = EXIT_CODES["partial"]) -> None:
    """Follow a queued job with a progress bar until it ends, then report and exit."""
    from featurechanger.jobs.states import ENDED_JOB_STATES

    from featurechanger.jobs.store import job_summary

    settings = settings_from_context(ctx)
    warning = unserved_queue(settings, job_summary(settings.database_url, job_id))
    if warning:
        click.echo(f"Warning: {warning}", err=True)
    try:
        with JobBar(settings, job_id) as bar:
            while bar.refresh()["state"] not in ENDED_JOB_STATES:
                time.sleep(0.5)
    except KeyboardInterrupt:  # Ctrl-C stops the following, not the job
        raise click.ClickException(
            f"Stopped following job {job_id}; the job itself goes on. "
            f"`featurechanger jobs watch {job_id}` follows it again, `featurechanger jobs "
            f"cancel {job_id}` stops it.") from None
    report_end(ctx, job_id, as_json=as_json, report=report, partial_exit=partial_exit)


def report_end(ctx: click.Context, job_id: int, *, as_json: bool, report: Report | None = None,
               partial_exit: int = EXIT_CODES["partial"]) -> None:
    """Print how the job ended (the command's own report when it made its result) and exit
    with its status."""
    from featurechanger.jobs.store import job_summary

    summary = job_summary(settings_from_context(ctx).database_url, job_id)
    if report is not None and summary["state"] in ("succeeded", "partial"):
        payload, human = report(summary)
        emit({**payload, "job_id": job_id}, as_json, human)
    else:
        emit(summary, as_json, describe_job)
    codes = {**EXIT_CODES, "partial": partial_exit}
    ctx.exit(codes.get(summary["state"], 0))


def describe_job(job: dict[str, Any]) -> str:
    """A few lines a person reads: what, how far, what it made, what went wrong."""
    lines = [f"Job {job['job_id']} ({job['kind']}): {job['state']}, {job['done']} of "
             f"{job['total']} done, {job['failed']} failed."]
    lines += [f"  {name}: {value}" for name, value in sorted(job["outputs"].items())]
    if job.get("training"):
        lines.append(f"  training: {describe_training(job['training'])}")
    if job["error"]:
        lines.append(f"  error: {job['error']}")
    if job["failed"]:
        lines.append(f"  `featurechanger jobs show {job['job_id']} --failed` lists what failed; "
                     f"`featurechanger jobs retry {job['job_id']}` runs it again.")
    return "\n".join(lines)


def describe_training(training: dict[str, Any]) -> str:
    """A train job's run, how far it is: e.g. 'run 5 running, epoch 4 ended at step 1000
    (val PSNR 27.14 dB); last checkpoint at step 1000'."""
    reached = ("no epoch ended yet" if training["epoch"] is None else
               f"epoch {training['epoch']} ended at step {training['step']} "
               f"(val PSNR {training['val_psnr']:.2f} dB)")
    return (f"run {training['run_id']} {training['run_state']}, {reached}; last checkpoint at "
            f"step {training['checkpoint_step']}")


def broker_app(settings: Settings) -> Celery:
    from worker.celery_app import make_app

    return make_app(settings)


def require_consumer(settings: Settings, queue: str) -> None:
    """Fail at once when no online worker consumes `queue`, instead of waiting for ever."""
    from featurechanger.errors import ConfigError
    from featurechanger.jobs.workers import consumers_of, online_workers

    if consumers_of(settings.database_url, queue):
        return
    online = ", ".join(f"{worker['hostname']} ({', '.join(worker['queues'])})"
                       for worker in online_workers(settings.database_url)) or "none"
    raise ConfigError(
        f"No online worker consumes queue {queue!r} (workers online: {online}). Start one with "
        f"`celery -A worker.celery_app worker -Q {queue}`, or pick another queue with --queue.")


def unserved_queue(settings: Settings, job: dict[str, Any]) -> str | None:
    """Why a queued or running job may not move: no online worker consumes its queue (all
    died, or none was started); None when one does, or the job has ended or runs here."""
    from featurechanger.jobs.states import ENDED_JOB_STATES
    from featurechanger.jobs.workers import consumers_of

    queue = job["queue"]
    if queue is None or job["state"] in ENDED_JOB_STATES or consumers_of(
            settings.database_url, queue):
        return None
    return (f"No online worker consumes queue {queue!r}: the job waits until one starts "
            f"(`celery -A worker.celery_app worker -Q {queue}`), which also takes over the "
            f"tasks of dead workers.")


def send(app: Celery, settings: Settings, job_id: int, refs: list[TaskRef]) -> None:
    """Queue a job's tasks; if the broker refuses, the job is cancelled, not left queued."""
    from kombu.exceptions import OperationalError

    from featurechanger.errors import ConfigError
    from featurechanger.jobs.store import cancel_job
    from worker.celery_app import send_tasks

    try:
        send_tasks(app, refs)
    except OperationalError as error:  # the broker is down or refuses us, after retries
        cancel_job(settings.database_url, job_id)
        raise ConfigError(f"Job {job_id} could not be queued ({error}); it is cancelled. "
                          f"`featurechanger jobs retry {job_id}` queues it again.") from error


class JobBar:
    """A tqdm bar on stderr: a job's items ended (done or failed) out of its total."""

    def __init__(self, settings: Settings, job_id: int) -> None:
        self._url, self._job_id = settings.database_url, job_id
        self._bar = None

    def __enter__(self) -> JobBar:
        from tqdm import tqdm

        from featurechanger.jobs.store import job_summary

        job = job_summary(self._url, self._job_id)
        self._bar = tqdm(total=job["total"], desc=f"job {self._job_id} {job['kind']}",
                         unit="item", file=sys.stderr, dynamic_ncols=True)
        self.refresh()
        return self

    def refresh(self) -> dict[str, Any]:
        from featurechanger.jobs.store import job_summary

        job = job_summary(self._url, self._job_id)
        training = job.get("training") or {}
        shown = {"epoch": training.get("epoch"), "psnr": training.get("val_psnr")}
        self._bar.set_postfix(state=job["state"], failed=job["failed"], refresh=False,
                              **{name: value for name, value in shown.items()
                                 if value is not None})
        self._bar.update(job["done"] + job["failed"] - self._bar.n)
        return job

    def __exit__(self, *_: object) -> None:
        self._bar.close()

