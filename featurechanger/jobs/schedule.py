"""Nightly retraining: which models Celery beat retrains, when, and on which shard set, from
FEATURECHANGER_* variables; and the submission itself, an ordinary train job per model (planned,
recorded in SQL and queued by name like `featurechanger train` with a broker).

    FEATURECHANGER_RETRAIN_AT      time of day, HH:MM in UTC (unset: no nightly retraining)
    FEATURECHANGER_RETRAIN_DATA    the shard set to train on (required with RETRAIN_AT)
    FEATURECHANGER_RETRAIN_MODELS  comma-separated models [default: dcae,pgae]
    FEATURECHANGER_RETRAIN_QUEUE   queue of the train jobs [default: the train kind's, gpu]

Each model trains with the `featurechanger train` defaults; a new run each night, so that the
runs (and `runs list`) keep the history and the newest one is the freshest model.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from featurechanger.config import Settings
from featurechanger.errors import ConfigError, FeatureChangerError
from featurechanger.jobs.store import TaskRef

log = logging.getLogger(__name__)

DEFAULT_MODELS = ("dcae", "pgae")  # the product brief: beat retrains DCAE and PGAE nightly
RETRAIN_TASK = "featurechanger.retrain"
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class RetrainPlan:
    hour: int  # UTC
    minute: int
    data: str  # shard set path, as the workers see it
    models: tuple[str, ...]
    queue: str | None  # None: the train kind's default queue

    def describe(self) -> str:
        return (f"{', '.join(self.models)} at {self.hour:02d}:{self.minute:02d} UTC on "
                f"{self.data}, queue {self.queue or 'gpu (the default)'}")

    def to_json(self) -> dict:
        return {"hour": self.hour, "minute": self.minute, "data": self.data,
                "models": list(self.models), "queue": self.queue}

    @classmethod
    def from_json(cls, payload: dict) -> "RetrainPlan":
        return cls(hour=payload["hour"], minute=payload["minute"], data=payload["data"],
                   models=tuple(payload["models"]), queue=payload["queue"])


def retrain_plan(environ: Mapping[str, str]) -> RetrainPlan | None:
    """The nightly retraining the environment asks for, or None when RETRAIN_AT is unset.

    Raises ConfigError naming the variable when a value cannot work, so that beat refuses to
    start rather than skip the night silently.
    """
    at = environ.get("FEATURECHANGER_RETRAIN_AT", "").strip()
    if not at:
        return None
    matched = _TIME.match(at)
    if matched is None:
        raise ConfigError(f"FEATURECHANGER_RETRAIN_AT={at!r} is not a time of day; give HH:MM "
                          f"in UTC, e.g. 02:30.")
    data = environ.get("FEATURECHANGER_RETRAIN_DATA", "").strip()
    if not data:
        raise ConfigError("FEATURECHANGER_RETRAIN_AT is set but FEATURECHANGER_RETRAIN_DATA is "
                          "not: give the shard set to retrain on, as the workers see it.")
    return RetrainPlan(hour=int(matched.group(1)), minute=int(matched.group(2)), data=data,
                       models=_models(environ.get("FEATURECHANGER_RETRAIN_MODELS", "")),
                       queue=environ.get("FEATURECHANGER_RETRAIN_QUEUE", "").strip() or None)


def _models(value: str) -> tuple[str, ...]:
    from featurechanger.training.options import MODEL_NAMES

    models = tuple(dict.fromkeys(name.strip().lower() for name in value.split(",")
                                 if name.strip())) or DEFAULT_MODELS
    unknown = [name for name in models if name not in MODEL_NAMES]
    if unknown:
        raise ConfigError(f"FEATURECHANGER_RETRAIN_MODELS names unknown model(s) "
                          f"{', '.join(map(repr, unknown))}; valid: {', '.join(MODEL_NAMES)}.")
    return models


def beat_schedule(environ: Mapping[str, str]) -> dict[str, dict]:
    """Celery's beat_schedule: one nightly entry, or none when retraining is not configured."""
    plan = retrain_plan(environ)
    if plan is None:
        return {}
    from celery.schedules import crontab

    return {"nightly-retrain": {
        "task": RETRAIN_TASK,
        "schedule": crontab(hour=plan.hour, minute=plan.minute),
        # The plan travels with the message (JSON): the worker needs none of beat's variables.
        "args": [plan.to_json()],
        # Only the retrain task's own message goes to cpu: it plans and queues, it trains nothing.
        "options": {"queue": "cpu"},
    }}


def submit_retraining(settings: Settings, plan: RetrainPlan,
                      send: Callable[[Sequence[TaskRef]], None]) -> list[int]:
    """Record and queue one train job per model of the plan; returns the job ids.

    A model whose job cannot be planned (e.g. the shard set is gone) is recorded as a failed
    job with the reason, logged and skipped, so that it does not stop the others; if every
    model fails, the last error is raised.
    """
    from featurechanger.db.migrate import ensure_schema
    from featurechanger.jobs.kinds import job_kind
    from featurechanger.jobs.store import record_refused_job
    from featurechanger.jobs.workers import consumers_of
    from featurechanger.jobs.submit import new_job
    from featurechanger.training.options import TrainOptions

    ensure_schema(settings.database_url)
    queue = plan.queue or job_kind("train").queue
    job_ids, error = [], None
    for model in plan.models:
        params = TrainOptions(model=model, data=plan.data).to_dict()
        command_line = f"celery beat: nightly retrain of {model} on {plan.data}"
        try:
            job_id, refs = new_job(settings, "train", params, queue=queue,
                                   command_line=command_line)
        except FeatureChangerError as failure:  # a bad option or missing data, with the fix
            error = failure
            job_id = record_refused_job(settings.database_url, "train", params, queue=queue,
                                        error=f"{type(failure).__name__}: {failure}",
                                        command_line=command_line)
            log.error("nightly retrain of %s not submitted (job %s, failed): %s", model,
                      job_id, failure)
            continue
        send(refs)
        job_ids.append(job_id)
        log.info("nightly retrain of %s queued as job %s on %r", model, job_id, queue)
    if job_ids and not consumers_of(settings.database_url, queue):
        log.warning("nightly retrain jobs %s wait: no online worker consumes queue %r (see "
                    "FEATURECHANGER_RETRAIN_QUEUE)", job_ids, queue)
    if not job_ids and error is not None:
        raise error
    return job_ids
