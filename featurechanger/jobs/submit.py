"""Turning a user's request into a job: validate and plan it with its kind's planner, then write
its rows. Dispatching the tasks is the caller's part (a broker, or the in-process runner).
"""

from __future__ import annotations

import re
from typing import Any

from featurechanger.config import Settings
from featurechanger.errors import ConfigError
from featurechanger.jobs.kinds import job_kind, load_function
from featurechanger.jobs.store import TaskRef, create_job

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


def new_job(settings: Settings, kind: str, params: dict[str, Any], *, queue: str | None,
            command_line: str | None = None) -> tuple[int, list[TaskRef]]:
    """Plan a job of `kind` and record it; returns its id and the tasks to dispatch now.

    `queue` is the broker queue for its tasks, or None to run it in-process. Raises ConfigError
    or DataError (before writing anything) when the parameters cannot work.
    """
    spec = job_kind(kind)
    if queue is not None and not _QUEUE_NAME.match(queue):
        raise ConfigError(f"Invalid queue name {queue!r}: use letters, digits, '_', '.' or '-' "
                          f"(the queues are {{gpu, cpu}} unless your workers consume others).")
    plan = load_function(spec.planner)(settings, params)
    return create_job(settings.database_url, spec, plan, queue=queue, command_line=command_line)
