"""The Celery app's configuration, the worker's tasks, and submitting through a broker: JSON only,
late acks, a visibility timeout above every hard limit, one task per job step, no torch where it
would cost (CLI start, submitting, the forking worker parent), and a queue nobody consumes is
reported at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
import redis
from click.testing import CliRunner

from featurechanger.config import Settings, load_settings
from featurechanger.data.synth import write_synthetic
from featurechanger.db.migrate import ensure_schema
from featurechanger.errors import ConfigError
from featurechanger.jobs.kinds import KINDS, longest_time_limit, steps
from featurechanger.jobs.store import job_summary
from featurechanger.jobs.workers import online_workers, worker_offline, worker_online
from orchestrator.cli import main
from orchestrator.submit import submit_job
from worker.celery_app import make_app, worker_options

REDIS_DB = 15


def test_the_app_speaks_json_acks_late_and_outlives_every_time_limit(settings: Settings) -> None:
    conf = make_app(settings).conf
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] > longest_time_limit()
    assert conf.task_ignore_result and not conf.result_backend
    assert {queue.name for queue in conf.task_queues} == {"gpu", "cpu"}
    assert conf.worker_send_task_events and conf.task_send_sent_event


def test_every_job_step_is_a_routed_task_with_its_time_limits(settings: Settings) -> None:
    import worker.tasks  # noqa: F401 - registers the tasks on the module's app
    from worker.celery_app import app

    conf = make_app(settings).conf
    for kind in KINDS.values():
        for step in (kind.work, kind.final):
            if step is None:
                continue
            assert step.task_name in app.tasks
            assert conf.task_routes[step.task_name] == {"queue": kind.queue}
            assert conf.task_annotations[step.task_name] == {
                "soft_time_limit": step.soft_time_limit, "time_limit": step.time_limit}
    assert len(steps()) == len({step.name for step in steps()})


def test_a_failed_job_task_fails_its_celery_task_too_as_an_expected_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Flower shows Celery's state: a job task that failed must not show SUCCESS there."""
    import worker.tasks
    from featurechanger.jobs.execute import TaskReport

    def failed(*_: object, **__: object) -> TaskReport:
        return TaskReport(7, 3, "train", "failed", error="DataError: no shard set")
    monkeypatch.setattr(worker.tasks, "run_task", failed)
    with pytest.raises(worker.tasks.JobTaskFailed, match="job 3 task 7 .*no shard set"):
        worker.tasks.train.run(7)
    assert all(worker.tasks.JobTaskFailed in task.throws for name, task in
               worker.tasks.app.tasks.items() if name.startswith("featurechanger.")
               and name != "featurechanger.retrain")


def test_worker_settings_come_from_the_environment() -> None:
    options = worker_options({"FEATURECHANGER_DEVICE": "cuda:1",
                              "FEATURECHANGER_TORCH_THREADS": "2",
                              "FEATURECHANGER_HEARTBEAT_SECONDS": "5"})
    assert (options.device, options.torch_threads) == ("cuda:1", 2)
    assert (options.liveness.heartbeat_s, options.liveness.stale_after_s) == (5.0, 30.0)
    with pytest.raises(ConfigError, match="FEATURECHANGER_HEARTBEAT_SECONDS='soon'"):
        worker_options({"FEATURECHANGER_HEARTBEAT_SECONDS": "soon"})


@pytest.mark.parametrize("code", [
    "from orchestrator.cli import main; main(['edit', '--help'], standalone_mode=False)",
    "import worker.tasks, worker.lifecycle",
])
def test_cli_help_and_the_worker_parent_do_not_import_torch(code: str) -> None:
    check = f"import sys; {code}; sys.exit(3 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", check], capture_output=True).returncode == 0


@pytest.mark.parametrize("process, environ, message", [
    (["worker"], {}, "FEATURECHANGER_BROKER_URL is not set"),
    (["beat"], {}, "FEATURECHANGER_BROKER_URL is not set"),
    (["worker"], {"FEATURECHANGER_BROKER_URL": "redis://127.0.0.1:6379/15",
                  "FEATURECHANGER_HEARTBEAT_SECONDS": "abc"},
     "FEATURECHANGER_HEARTBEAT_SECONDS='abc' is not a positive float"),
    (["beat"], {"FEATURECHANGER_BROKER_URL": "redis://127.0.0.1:6379/15",
                "FEATURECHANGER_RETRAIN_AT": "02:30"}, "FEATURECHANGER_RETRAIN_DATA is not"),
])
def test_a_worker_or_beat_set_up_wrong_says_why_and_stops(
        tmp_path: Path, process: list[str], environ: dict, message: str) -> None:
    """Without a broker Celery would fall back to amqp://localhost, another broker than the
    CLI's; and an error of Celery's import or startup would hide the reason."""
    env = {"PATH": str(Path(sys.executable).parent), "FEATURECHANGER_HOME": str(tmp_path),
           **environ}
    extra = {"worker": ["-Q", "cpu", "--pool", "solo"],
             "beat": ["--schedule", str(tmp_path / "beat-schedule")]}[process[0]]
    ended = subprocess.run([sys.executable, "-m", "celery", "-A", "worker.celery_app",
                            *process, *extra], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert ended.returncode != 0
    assert message in ended.stdout + ended.stderr and "Traceback" not in ended.stderr


@pytest.mark.services
@pytest.mark.parametrize("process", ["worker", "beat"])
def test_a_worker_or_beat_on_a_database_without_the_schema_says_to_upgrade_it(
        tmp_path: Path, postgres_url: str, process: str) -> None:
    """It would log a traceback per record it writes, and a worker would never be online."""
    env = {"PATH": str(Path(sys.executable).parent), "FEATURECHANGER_HOME": str(tmp_path),
           "FEATURECHANGER_BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
           "FEATURECHANGER_DATABASE_URL": postgres_url}
    extra = {"worker": ["-Q", "cpu", "--pool", "solo"],
             "beat": ["--schedule", str(tmp_path / "beat-schedule")]}[process]
    ended = subprocess.run([sys.executable, "-m", "celery", "-A", "worker.celery_app",
                            process, *extra], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert ended.returncode != 0 and "Traceback" not in ended.stderr
    assert "Run `featurechanger db upgrade` first" in ended.stdout + ended.stderr


def test_a_worker_brings_the_embedded_database_up_to_date_before_it_starts(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from featurechanger.db.migrate import file_head_revision, stored_revision
    from worker.lifecycle import _check_setup

    monkeypatch.setenv("FEATURECHANGER_BROKER_URL", f"redis://127.0.0.1:6379/{REDIS_DB}")
    assert stored_revision(settings.database_url) is None
    _check_setup()
    assert stored_revision(settings.database_url) == file_head_revision()


@pytest.fixture
def broker(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> redis.Redis:
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    monkeypatch.setenv("FEATURECHANGER_BROKER_URL", f"redis://127.0.0.1:6379/{REDIS_DB}")
    ensure_schema(settings.database_url)
    yield client
    client.flushdb()


@pytest.mark.services
def test_submitting_to_a_queue_no_worker_consumes_fails_at_once(
        settings: Settings, broker: redis.Redis, tmp_path: Path) -> None:
    worker_online(settings.database_url, "cpu1@host", ["cpu"], concurrency=2, pid=1,
                  heartbeat_s=10)
    result = CliRunner().invoke(main, ["edit", "--run", "1", "--data", str(tmp_path),
                                       "--remove", "Eyeglasses", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "No online worker consumes queue 'gpu' (workers online: cpu1@host (cpu))" in \
        result.output
    assert "--queue" in result.output
    jobs = CliRunner().invoke(main, ["jobs", "list", "--json"])
    assert json.loads(jobs.output)["jobs"] == []


@pytest.mark.services
def test_a_job_s_tasks_are_queued_by_name_on_the_chosen_queue(
        settings: Settings, broker: redis.Redis, tmp_path: Path,
        capsys: pytest.CaptureFixture) -> None:
    faces = write_synthetic(tmp_path / "faces", 8, workers=1, progress=False)
    worker_online(settings.database_url, "any@host", ["gpu", "special"], concurrency=1, pid=1,
                  heartbeat_s=10)
    params = {"dataset": str(faces), "out": str(tmp_path / "shards")}
    with click.Context(main, obj={"settings": load_settings()}) as context:
        submit_job(context, "shard", params, queue="special", wait=False, as_json=True)
    submitted = json.loads(capsys.readouterr().out)
    assert submitted["queue"] == "special" and submitted["tasks"] == 1
    message = json.loads(broker.lindex("special", 0))
    assert message["headers"]["task"] == "featurechanger.build_shards"
    assert message["content-type"] == "application/json"
    job = job_summary(settings.database_url, submitted["job_id"])
    assert (job["state"], job["queue"], job["total"]) == ("queued", "special", 8)


def test_workers_lists_who_is_online_and_forgets_who_left(settings: Settings) -> None:
    ensure_schema(settings.database_url)
    worker_online(settings.database_url, "gpu0@box", ["gpu"], concurrency=1, pid=7,
                  heartbeat_s=10)
    result = CliRunner().invoke(main, ["workers", "--json"])
    found = json.loads(result.output)["workers"]
    assert [(w["hostname"], w["queues"], w["running"]) for w in found] == [
        ("gpu0@box", ["gpu"], [])]
    worker_offline(settings.database_url, "gpu0@box")
    assert online_workers(settings.database_url) == []
