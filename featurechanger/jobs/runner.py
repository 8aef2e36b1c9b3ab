"""The embedded default: run a job's tasks one after the other in this process, with the same
task code a Celery worker runs, until the job ends. Used when no broker is configured.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from collections.abc import Callable

from featurechanger.config import Settings
from featurechanger.jobs import states
from featurechanger.jobs.execute import run_task
from featurechanger.jobs.store import Liveness, cancel_job, job_summary, queued_tasks

# Beats often here: the progress bar reads the counts that each beat stores, and a run that was
# killed is noticed (by `jobs retry`) after a few seconds.
IN_PROCESS_LIVENESS = Liveness.from_heartbeat(1.0)


def in_process_worker_name() -> str:
    return f"in-process-{os.getpid()}@{socket.gethostname()}"


def run_in_process(settings: Settings, job_id: int, *, device: str | None = None,
                   on_change: Callable[[], None] | None = None,
                   liveness: Liveness = IN_PROCESS_LIVENESS, progress_bars: bool = False) -> None:
    """Run every queued task of job `job_id` here, and those they unblock.

    `on_change` is called after every progress report and every task's end (to redraw a bar);
    `progress_bars` lets the tasks draw their own (see TaskContext).
    Interrupting (Ctrl-C) cancels the job, so that `jobs retry` can pick it up again.
    """
    url = settings.database_url
    notify = on_change or (lambda: None)
    pending = deque(queued_tasks(url, job_id))
    try:
        while pending:
            ref = pending.popleft()
            run_task(settings, ref.task_id, worker=in_process_worker_name(),
                     dispatch=pending.extend, liveness=liveness, device=device,
                     on_progress=lambda *_: notify(), progress_bars=progress_bars)
            notify()
    except KeyboardInterrupt:
        if job_summary(url, job_id)["state"] not in states.ENDED_JOB_STATES:
            cancel_job(url, job_id)
        raise
