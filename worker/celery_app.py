"""The Celery app and its configuration, from FEATURECHANGER_* environment variables.

Start a worker per GPU, each its own process tree, so that CUDA is only ever initialised inside a
pool process (never in the forking parent) and each sees one device:

    CUDA_VISIBLE_DEVICES=0 celery -A worker.celery_app worker -Q gpu -c 1 -n gpu0@%h
    CUDA_VISIBLE_DEVICES=1 celery -A worker.celery_app worker -Q gpu -c 1 -n gpu1@%h
    celery -A worker.celery_app worker -Q cpu -c 2 -n cpu@%h

Environment: FEATURECHANGER_BROKER_URL (required), FEATURECHANGER_DATABASE_URL and the roots (see
featurechanger.config), and for workers FEATURECHANGER_DEVICE (cpu, cuda, cuda:1; default the
first GPU when there is one), FEATURECHANGER_TORCH_THREADS (torch threads per pool process) and
FEATURECHANGER_HEARTBEAT_SECONDS (how often a running task proves itself alive; a task silent
for six beats is requeued; every worker sweeps for silent tasks by its own beat, so give all
workers the same value).

Nightly retraining (off unless FEATURECHANGER_RETRAIN_AT is set; see
featurechanger.jobs.schedule): run ONE beat process next to the workers,

    FEATURECHANGER_RETRAIN_AT=02:30 FEATURECHANGER_RETRAIN_DATA=/shared/data/shards \
        celery -A worker.celery_app beat

and at 02:30 UTC it queues `featurechanger.retrain` (to cpu) with the plan as its JSON
argument; that task submits a train job per model (FEATURECHANGER_RETRAIN_MODELS, default
dcae,pgae), recorded and queued like any other job.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from celery import Celery
from kombu import Exchange, Queue

from featurechanger.config import Settings, load_settings
from featurechanger.errors import ConfigError
from featurechanger.jobs.kinds import KINDS, QUEUES, longest_time_limit, steps
from featurechanger.jobs.schedule import RETRAIN_TASK, beat_schedule
from featurechanger.jobs.store import Liveness, TaskRef

# Redis hands an unacknowledged task to another worker after this long; it must exceed the
# longest hard time limit, or a long task would run twice. Workers that die are noticed much
# sooner through the database heartbeats (see featurechanger.jobs.store.requeue_stale).
VISIBILITY_TIMEOUT_S = longest_time_limit() + 10 * 60


@dataclass(frozen=True)
class WorkerOptions:
    device: str | None
    torch_threads: int | None
    liveness: Liveness


def worker_options(environ: Mapping[str, str] | None = None) -> WorkerOptions:
    env = os.environ if environ is None else environ
    beat = _number(env, "FEATURECHANGER_HEARTBEAT_SECONDS", float) or Liveness.heartbeat_s
    return WorkerOptions(
        device=env.get("FEATURECHANGER_DEVICE") or None,
        torch_threads=_number(env, "FEATURECHANGER_TORCH_THREADS", int),
        liveness=Liveness.from_heartbeat(beat),
    )


def make_app(settings: Settings, environ: Mapping[str, str] | None = None) -> Celery:
    """The app that workers run and that the CLI sends tasks through (by name); `environ`
    (default os.environ) configures beat's nightly retraining."""
    app = Celery("featurechanger", broker=settings.broker_url,
                 include=["worker.tasks", "worker.lifecycle"])
    app.conf.update(
        # JSON only: a pickled message from the broker would be remote code execution.
        task_serializer="json", result_serializer="json", event_serializer="json",
        accept_content=["json"], result_accept_content=["json"],
        # A task is acknowledged when it ends, and requeued if its process dies meanwhile.
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        broker_connection_retry_on_startup=True,
        # Outcomes live in the job tables; no result backend to fill up.
        task_ignore_result=True, result_backend=None,
        task_queues=[Queue(name, Exchange(name), routing_key=name) for name in QUEUES],
        task_default_queue="cpu",
        task_routes=_routes(),
        task_annotations={step.task_name: {"soft_time_limit": step.soft_time_limit,
                                           "time_limit": step.time_limit} for step in steps()},
        # Events, so that Flower and `featurechanger workers` see every task and its state.
        worker_send_task_events=True, task_send_sent_event=True,
        # Beat's schedule (empty unless FEATURECHANGER_RETRAIN_AT is set), times in UTC.
        beat_schedule=beat_schedule(os.environ if environ is None else environ),
        timezone="UTC", enable_utc=True,
    )
    return app


def send_tasks(app: Celery, refs: Iterable[TaskRef]) -> None:
    """Queue task rows by Celery task name: the sender needs none of the task code."""
    for ref in refs:  # Flower shows argsrepr: the job too, not only the task row's id
        app.send_task(ref.task_name, args=[ref.task_id], queue=ref.queue,
                      argsrepr=f"[{ref.task_id}] (job {ref.job_id})")


def _routes() -> dict[str, dict[str, str]]:
    routes = {RETRAIN_TASK: {"queue": "cpu"}}
    for kind in KINDS.values():
        for step in (kind.work, kind.final):
            if step is not None:
                routes[step.task_name] = {"queue": kind.queue}
    return routes


def _number(env: Mapping[str, str], name: str, kind: type) -> float | int | None:
    value = env.get(name)
    if not value:
        return None
    try:
        number = kind(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise ConfigError(f"{name}={value!r} is not a positive {kind.__name__}; unset it or "
                          f"give e.g. {name}=2.")
    return number


try:
    options = worker_options()
    app = make_app(load_settings())
except ConfigError as error:  # SystemExit's message reaches the terminal; Celery's traceback hid it
    raise SystemExit(str(error)) from None
