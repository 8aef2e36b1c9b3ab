"""A background thread that keeps a claimed task alive in the database while its handler runs.

It beats every `interval` seconds, stores the handler's progress with each beat (and brings the
job's counts up to date when the progress moved), and notices when the task stopped being ours:
the job was cancelled, or the task was requeued because an earlier beat came too late.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from featurechanger.jobs.store import Claim, advance_job, heartbeat

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, url: str, claim: Claim, interval: float) -> None:
        self._url, self._claim, self._interval = url, claim, interval
        self._progress = (0, 0)
        self._stored = (0, 0)
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-task-{claim.task_id}",
                                        daemon=True)

    def progress(self, done: int, failed: int) -> None:
        """Record the handler's progress; the next beat stores it."""
        self._progress = (done, failed)

    @property
    def done(self) -> int:
        return self._progress[0]

    def lost(self) -> bool:
        return self._lost.is_set()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._beat()
            except Exception:  # noqa: BLE001 - a database hiccup must not stop the beats
                log.exception("heartbeat of task %s failed; trying again", self._claim.task_id)
            if self._lost.is_set():
                return

    def _beat(self) -> None:
        progress = self._progress
        if not heartbeat(self._url, self._claim, *progress):
            log.warning("task %s is no longer ours (cancelled or requeued)", self._claim.task_id)
            self._lost.set()
            return
        if progress != self._stored:
            self._stored = progress
            advance_job(self._url, self._claim.job_id)
