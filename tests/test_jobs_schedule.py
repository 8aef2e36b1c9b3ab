"""Celery beat's nightly retraining: the schedule comes from FEATURECHANGER_RETRAIN_* (none when
unset, a clear error when a value cannot work), and the beat task submits one recorded, queued
train job per model through the ordinary job code."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurechanger.config import Settings
from featurechanger.data.shards import build_shards
from featurechanger.data.synth import write_synthetic
from featurechanger.errors import ConfigError, FeatureChangerError
from featurechanger.jobs.schedule import (RETRAIN_TASK, RetrainPlan, beat_schedule, retrain_plan,
                                          submit_retraining)
from featurechanger.jobs.store import job_summary, list_jobs, task_rows
from worker.celery_app import make_app


def test_no_retrain_time_means_no_schedule(settings: Settings) -> None:
    assert beat_schedule({}) == {}
    assert make_app(settings, {}).conf.beat_schedule == {}


def test_the_schedule_runs_the_retrain_task_at_the_configured_time(settings: Settings) -> None:
    environ = {"FEATURECHANGER_RETRAIN_AT": "02:30",
               "FEATURECHANGER_RETRAIN_DATA": "/shared/data/shards"}
    entry = make_app(settings, environ).conf.beat_schedule["nightly-retrain"]
    assert entry["task"] == RETRAIN_TASK and entry["options"] == {"queue": "cpu"}
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({2}, {30})
    assert RetrainPlan.from_json(entry["args"][0]) == RetrainPlan(
        hour=2, minute=30, data="/shared/data/shards", models=("dcae", "pgae"), queue=None)
    chosen = retrain_plan({**environ, "FEATURECHANGER_RETRAIN_MODELS": "PGAE, pgae",
                           "FEATURECHANGER_RETRAIN_QUEUE": "big-gpus"})
    assert (chosen.models, chosen.queue) == (("pgae",), "big-gpus")


@pytest.mark.parametrize("environ, message", [
    ({"FEATURECHANGER_RETRAIN_AT": "2.30"}, "FEATURECHANGER_RETRAIN_AT='2.30' is not a time"),
    ({"FEATURECHANGER_RETRAIN_AT": "24:00"}, "HH:MM in UTC"),
    ({"FEATURECHANGER_RETRAIN_AT": "02:30"}, "FEATURECHANGER_RETRAIN_DATA is not"),
    ({"FEATURECHANGER_RETRAIN_AT": "02:30", "FEATURECHANGER_RETRAIN_DATA": "s",
      "FEATURECHANGER_RETRAIN_MODELS": "dcae,vae"}, "unknown model(s) 'vae'"),
])
def test_a_bad_retrain_setting_is_refused_naming_the_variable(environ: dict,
                                                              message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        beat_schedule(environ)


@pytest.fixture
def shards(settings: Settings, tmp_path: Path) -> Path:
    faces = write_synthetic(tmp_path / "faces", 12, workers=1, progress=False)
    return build_shards(faces, tmp_path / "shards", sizes=[16], shard_size=8, workers=1,
                        progress=False).path


def test_the_retrain_task_submits_a_recorded_train_job_per_model(
        settings: Settings, shards: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import worker.tasks

    sent = []
    monkeypatch.setattr(worker.tasks, "send_tasks", lambda app, refs: sent.extend(refs))
    plan = RetrainPlan(hour=2, minute=30, data=str(shards), models=("dcae", "pgae"), queue=None)
    job_ids = worker.tasks.retrain.run(plan.to_json())

    assert len(job_ids) == 2 and [ref.task_name for ref in sent] == ["featurechanger.train"] * 2
    for job_id, model in zip(job_ids, plan.models):
        job = job_summary(settings.database_url, job_id)
        assert (job["kind"], job["state"], job["queue"]) == ("train", "queued", "gpu")
        assert job["params"]["model"] == model and "nightly retrain" in job["command_line"]
        assert [row["state"] for row in task_rows(settings.database_url, job_id)] == ["queued"]


def test_the_retrain_queue_is_configurable_and_a_missing_shard_set_is_an_error(
        settings: Settings, shards: Path, tmp_path: Path) -> None:
    sent = []
    plan = RetrainPlan(hour=2, minute=30, data=str(shards), models=("dcae",), queue="cpu")
    assert len(submit_retraining(settings, plan, sent.extend)) == 1 and sent[0].queue == "cpu"
    missing = RetrainPlan(hour=2, minute=30, data=str(tmp_path / "gone"), models=("dcae",),
                          queue=None)
    with pytest.raises(FeatureChangerError, match="gone"):
        submit_retraining(settings, missing, sent.extend)
    refused = list_jobs(settings.database_url, limit=1)[0]  # what `jobs list` shows the operator
    assert (refused["kind"], refused["state"], refused["total"]) == ("train", "failed", 0)
    assert "gone" in refused["error"] and "nightly retrain" in refused["command_line"]
