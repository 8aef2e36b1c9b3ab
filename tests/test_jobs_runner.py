"""Running jobs in-process with the same task code workers run: every task and the final step
run, a handler's exception fails only its task, a rerun skips completed images, and retry runs
only what failed. The handlers below stand in for the domain code (this module is importable as
`test_jobs_runner`, so the kind table can name them)."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace

import pytest

from featurechanger.config import Settings
from featurechanger.db.migrate import ensure_schema
from featurechanger.errors import ConfigError
from featurechanger.jobs.context import (ItemResult, Plan, PlannedTask, TaskContext,
                                         TaskOutcome, TaskStopped)
from featurechanger.jobs.kinds import KINDS, JobKind, Step
from featurechanger.jobs.runner import run_in_process
from featurechanger.jobs.store import (Liveness, cancel_job, completed_images, failures,
                                       job_summary, list_jobs, retry_job, task_rows)
from featurechanger.jobs.submit import new_job

PROCESSED: list[str] = []  # image ids the handler processed, in order
KIND = JobKind(name="toy", queue="cpu", planner="test_jobs_runner:plan_toy",
               work=Step("toy_images", "test_jobs_runner:process_images", 60, 90),
               final=Step("toy_sheet", "test_jobs_runner:make_sheet", 60, 90))


def plan_toy(settings: Settings, params: dict) -> Plan:
    if params["shards"] < 1:
        raise ConfigError(f"shards must be at least 1, not {params['shards']!r}")
    return Plan(params=params, tasks=[PlannedTask(i, 2) for i in range(params["shards"])])


def process_images(context: TaskContext) -> TaskOutcome:
    """Two images per shard; ids listed in params['broken'] fail, item params['crash'] raises."""
    if context.item == context.params.get("crash"):
        raise RuntimeError("the shard file is truncated")
    if context.item == context.params.get("refuse"):
        raise ConfigError("the user's option cannot work; here is the fix")
    ids = [f"{context.item}-{n}.jpg" for n in range(2)]
    skipped = completed_images(context.settings.database_url, context.job_id, ids)
    results = []
    for image_id in (i for i in ids if i not in skipped):
        PROCESSED.append(image_id)
        broken = image_id in context.params.get("broken", [])
        results.append(ItemResult(image_id, None if broken else f"out/{image_id}.png",
                                  "DataError: cannot decode" if broken else None))
        context.progress(len(skipped) + len(results), 0)
    failed = sum(result.error is not None for result in results)
    return TaskOutcome(done=len(ids) - failed, failed=failed, results=results)


def cancel_then_wait(context: TaskContext) -> TaskOutcome:
    """Cancel its own job, then work until the heartbeat says the task is no longer ours."""
    cancel_job(context.settings.database_url, context.job_id)
    deadline = time.monotonic() + 10
    while not context.should_stop():
        assert time.monotonic() < deadline, "the heartbeat never noticed the cancel"
        time.sleep(0.02)
    raise TaskStopped("stopped at the next beat")


def make_sheet(context: TaskContext) -> TaskOutcome:
    return TaskOutcome(done=0, outputs={"sheet": f"sheet-of-{len(context.items_of_job)}.png"})


@pytest.fixture
def toy(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setitem(KINDS, KIND.name, KIND)
    ensure_schema(settings.database_url)
    PROCESSED.clear()
    return settings


def test_in_process_runs_every_task_then_the_final_step(toy: Settings) -> None:
    job_id, _ = new_job(toy, "toy", {"shards": 3}, queue=None, command_line="featurechanger toy")
    changes: list[int] = []
    run_in_process(toy, job_id, on_change=lambda: changes.append(1))
    job = job_summary(toy.database_url, job_id)
    assert (job["state"], job["total"], job["done"], job["failed"]) == ("succeeded", 6, 6, 0)
    assert job["outputs"] == {"sheet": "sheet-of-3.png"}
    assert len(PROCESSED) == 6 and changes
    workers = {row["worker"] for row in task_rows(toy.database_url, job_id)}
    assert len(workers) == 1 and workers.pop().startswith("in-process-")


def test_a_task_failing_on_the_users_error_logs_one_line_and_a_bug_its_traceback(
        toy: Settings, caplog: pytest.LogCaptureFixture) -> None:
    job_id, _ = new_job(toy, "toy", {"shards": 2, "refuse": 0, "crash": 1}, queue=None)
    run_in_process(toy, job_id)
    refused = next(r for r in caplog.records if "ConfigError" in r.getMessage())
    crashed = next(r for r in caplog.records if r.exc_info and r.exc_info[0] is RuntimeError)
    assert refused.levelname == "WARNING" and refused.exc_info is None
    assert "here is the fix" in refused.getMessage() and crashed.levelname == "ERROR"


def test_a_crashing_task_fails_alone_and_retry_runs_only_what_failed(toy: Settings) -> None:
    job_id, _ = new_job(toy, "toy", {"shards": 3, "crash": 1, "broken": ["2-1.jpg"]}, queue=None)
    run_in_process(toy, job_id)
    job = job_summary(toy.database_url, job_id)
    assert (job["state"], job["done"], job["failed"]) == ("partial", 3, 3)
    found = failures(toy.database_url, job_id)
    assert found["images"] == [{"image_id": "2-1.jpg", "error": "DataError: cannot decode"}]
    assert found["tasks"] == [{"item": 1, "step": "toy_images",
                               "error": "RuntimeError: the shard file is truncated"}]

    PROCESSED.clear()
    retry_job(toy.database_url, job_id)
    run_in_process(toy, job_id)
    # Shard 0 is not run again; shard 2 reruns its failed image only; shard 1 crashes again.
    assert PROCESSED == ["2-1.jpg"]
    assert job_summary(toy.database_url, job_id)["state"] == "partial"


def test_a_plan_that_cannot_work_writes_no_job(toy: Settings) -> None:
    with pytest.raises(ConfigError, match="shards must be at least 1, not 0"):
        new_job(toy, "toy", {"shards": 0}, queue=None)
    assert list_jobs(toy.database_url) == []


def test_an_unknown_kind_or_queue_name_is_refused(toy: Settings) -> None:
    with pytest.raises(ConfigError, match="Unknown job kind 'paint'"):
        new_job(toy, "paint", {}, queue=None)
    with pytest.raises(ConfigError, match="Invalid queue name 'g p u'"):
        new_job(toy, "toy", {"shards": 1}, queue="g p u")


def test_a_running_task_learns_of_a_cancel_at_its_next_heartbeat(
        toy: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KINDS, "toy", replace(KIND, work=replace(
        KIND.work, handler="test_jobs_runner:cancel_then_wait")))
    job_id, _ = new_job(toy, "toy", {"shards": 1}, queue=None)
    run_in_process(toy, job_id, liveness=Liveness(heartbeat_s=0.05))
    job = job_summary(toy.database_url, job_id)
    assert (job["state"], job["tasks"]) == ("cancelled", {"cancelled": 2})


def test_interrupting_an_in_process_run_cancels_the_job_for_retry(toy: Settings) -> None:
    job_id, _ = new_job(toy, "toy", {"shards": 2}, queue=None)

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_in_process(toy, job_id, on_change=interrupt)
    assert job_summary(toy.database_url, job_id)["state"] == "cancelled"
    retry_job(toy.database_url, job_id)
    run_in_process(toy, job_id)
    assert job_summary(toy.database_url, job_id)["state"] == "succeeded"


def test_the_console_script_turns_sigterm_into_an_interrupt() -> None:
    """`kill` or `docker stop` on `featurechanger` unwinds like Ctrl-C (the test above: the job
    is cancelled for retry) instead of ending the process with the job left 'running'."""
    code = ("import time, orchestrator.cli as cli\n"
            "def main():\n"
            "    try:\n"
            "        print('ready', flush=True)\n"
            "        time.sleep(60)\n"
            "    except KeyboardInterrupt:\n"
            "        print('interrupted', flush=True)\n"
            "        raise SystemExit(130)\n"
            "cli.main = main\n"
            "cli.run()\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "ready\n"
    process.terminate()
    output, _ = process.communicate(timeout=30)
    assert (output, process.returncode) == ("interrupted\n", 130)
