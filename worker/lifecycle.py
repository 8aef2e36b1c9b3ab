"""What a worker does around its tasks: refuse to start without a broker or a current records
database (the embedded SQLite one is brought up to date), set up each pool process after the
fork, record itself as online (and beat) so that submitting knows who consumes which queue, and
sweep for tasks whose worker went silent.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from celery.signals import (beat_init, worker_init, worker_process_init, worker_ready,
                            worker_shutdown)

from featurechanger.config import load_settings
from featurechanger.db.migrate import ensure_schema
from featurechanger.errors import FeatureChangerError
from featurechanger.jobs.schedule import retrain_plan
from featurechanger.jobs.store import requeue_stale
from featurechanger.jobs.workers import worker_beat, worker_offline, worker_online
from worker.celery_app import app, options, send_tasks

log = logging.getLogger(__name__)
_stopping = threading.Event()


@worker_init.connect
def _check_setup(**_: object) -> None:
    # SystemExit's message reaches the terminal; Celery stops on other errors without them.
    settings = load_settings()
    if not settings.broker_url:
        raise SystemExit("FEATURECHANGER_BROKER_URL is not set: a worker needs the Redis URL "
                         "of the broker, e.g. redis://127.0.0.1:6379/0.")
    _check_database(settings.database_url)
    # The forking parent must not hold a CUDA context: a forked child cannot use it.
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise SystemExit("CUDA was initialised in the worker's parent process; start one "
                         "worker per GPU with CUDA_VISIBLE_DEVICES, and keep torch out of "
                         "import time of worker modules.")


def _check_database(url: str) -> None:
    """A worker records itself and its tasks there: without the schema it would log tracebacks
    and never be seen online, so submitting would find no worker."""
    try:
        ensure_schema(url)
    except FeatureChangerError as error:
        raise SystemExit(str(error)) from None


@beat_init.connect
def _check_beat_setup(**_: object) -> None:
    settings = load_settings()
    if not settings.broker_url:
        raise SystemExit("FEATURECHANGER_BROKER_URL is not set: beat queues the nightly "
                         "retraining through it, e.g. redis://127.0.0.1:6379/0.")
    _check_database(settings.database_url)  # a night it cannot plan is recorded as a job
    plan = retrain_plan(os.environ)  # checked already by the app's beat_schedule
    log.warning("nightly retraining: %s", plan.describe() if plan else
                "off (FEATURECHANGER_RETRAIN_AT is not set)")


@worker_process_init.connect
def _set_up_pool_process(**_: object) -> None:
    if options.torch_threads:
        import torch

        torch.set_num_threads(options.torch_threads)


@worker_ready.connect
def _go_online(sender: object, **_: object) -> None:
    hostname = sender.hostname
    worker_online(load_settings().database_url, hostname,
                  queues=[queue.name for queue in sender.task_consumer.queues],
                  concurrency=sender.controller.concurrency, pid=os.getpid(),
                  heartbeat_s=options.liveness.heartbeat_s)
    threading.Thread(target=_beat, args=(hostname,), name="worker-beat", daemon=True).start()


@worker_shutdown.connect
def _go_offline(sender: object, **_: object) -> None:
    _stopping.set()
    worker_offline(load_settings().database_url, sender.hostname)


def _beat(hostname: str) -> None:
    """Every beat: say this worker is alive, and requeue tasks whose worker went silent. Every
    worker sweeps; the database decides which one requeues each task, so it is sent once."""
    url = load_settings().database_url
    while not _stopping.wait(options.liveness.heartbeat_s):
        try:
            worker_beat(url, hostname)
            refs = requeue_stale(url, options.liveness)
        except Exception:  # noqa: BLE001 - a database hiccup must not stop the beats
            log.exception("worker beat failed; trying again")
            continue
        if refs:
            log.warning("sending %d tasks again after a sweep for silent workers: %s",
                        len(refs), [ref.task_id for ref in refs])
            send_tasks(app, refs)
