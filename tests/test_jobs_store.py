"""The job state machine on SQLite: claims, heartbeats, stale requeue, final steps, partial jobs,
retry of what failed only, and cancel."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from featurechanger.config import Settings
from featurechanger.db.base import utcnow
from featurechanger.db.jobs import JobTaskRecord, ResultRecord
from featurechanger.db.migrate import ensure_schema
from featurechanger.db.session import session_scope
from featurechanger.errors import ConfigError
from featurechanger.jobs import states
from featurechanger.jobs.context import ItemResult, Plan, PlannedTask, TaskOutcome
from featurechanger.jobs.kinds import KINDS, JobKind, Step
from featurechanger.jobs.store import (Liveness, advance_job, cancel_job, claim_task,
                                       create_job, failures, finish_task, heartbeat,
                                       job_summary, requeue_stale, retry_job)

LIVENESS = Liveness(heartbeat_s=1.0, stale_after_s=30.0, max_attempts=2)
FANOUT = JobKind(name="fanout", queue="cpu", planner="unused:plan",
                 work=Step("fanout_part", "unused:part", 60, 90),
                 final=Step("fanout_reduce", "unused:reduce", 60, 90),
                 final_needs_every_item=True)
WITH_SHEET = JobKind(name="sheeted", queue="gpu", planner="unused:plan",
                     work=Step("sheeted_part", "unused:part", 60, 90),
                     final=Step("sheeted_sheet", "unused:sheet", 60, 90))


@pytest.fixture
def url(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(KINDS, FANOUT.name, FANOUT)
    monkeypatch.setitem(KINDS, WITH_SHEET.name, WITH_SHEET)
    ensure_schema(settings.database_url)
    return settings.database_url


def new(url: str, kind: JobKind = FANOUT, sizes: tuple[int, ...] = (3, 2)) -> tuple[int, list]:
    plan = Plan(params={"anything": 1}, tasks=[PlannedTask(i, n) for i, n in enumerate(sizes)])
    return create_job(url, kind, plan, queue=kind.queue, command_line="featurechanger test")


def run(url: str, task_id: int, outcome: TaskOutcome, worker: str = "w1") -> list:
    claim = claim_task(url, task_id, worker, LIVENESS)
    assert claim is not None
    assert finish_task(url, claim, outcome)
    return advance_job(url, claim.job_id)


def task_state(url: str, task_id: int) -> str:
    with session_scope(url) as session:
        return session.get(JobTaskRecord, task_id).state


def silence(url: str, task_id: int, seconds: float = 3600) -> None:
    """Make a running task look as if its worker stopped heartbeating `seconds` ago."""
    with session_scope(url) as session:
        session.execute(update(JobTaskRecord).where(JobTaskRecord.id == task_id).values(
            heartbeat_at=utcnow() - timedelta(seconds=seconds)))


def test_a_new_job_queues_its_work_and_holds_back_its_final_step(url: str) -> None:
    job_id, refs = new(url)
    job = job_summary(url, job_id)
    assert (job["state"], job["total"], job["done"], job["failed"]) == ("queued", 5, 0, 0)
    assert job["tasks"] == {"queued": 2, "waiting": 1}
    assert [ref.task_name for ref in refs] == ["featurechanger.fanout_part"] * 2
    assert {ref.queue for ref in refs} == {"cpu"}


def test_a_task_is_claimed_once_and_a_duplicate_delivery_is_skipped(url: str) -> None:
    job_id, refs = new(url)
    claim = claim_task(url, refs[0].task_id, "w1", LIVENESS)
    assert claim is not None and claim.attempt == 1
    assert claim_task(url, refs[0].task_id, "w2", LIVENESS) is None
    assert job_summary(url, job_id)["state"] == "running"


def test_heartbeats_store_progress_that_the_job_counts_show(url: str) -> None:
    job_id, refs = new(url)
    claim = claim_task(url, refs[0].task_id, "w1", LIVENESS)
    assert heartbeat(url, claim, done=2, failed=1)
    advance_job(url, job_id)
    job = job_summary(url, job_id)
    assert (job["done"], job["failed"], job["state"]) == (2, 1, "running")


def test_the_final_step_starts_once_after_every_work_task_and_the_job_succeeds(url: str) -> None:
    job_id, refs = new(url)
    assert run(url, refs[0].task_id, TaskOutcome(done=3)) == []
    ready = run(url, refs[1].task_id, TaskOutcome(done=2))
    assert [ref.task_name for ref in ready] == ["featurechanger.fanout_reduce"]
    assert advance_job(url, job_id) == []  # a second look does not start it again
    run(url, ready[0].task_id, TaskOutcome(done=0, outputs={"vector_set_id": 7}))
    job = job_summary(url, job_id)
    assert (job["state"], job["done"], job["failed"]) == ("succeeded", 5, 0)
    assert job["outputs"] == {"vector_set_id": 7}
    assert job["finished_at"] is not None


def test_results_are_written_per_task_and_a_rerun_replaces_its_images_rows(url: str) -> None:
    job_id, refs = new(url, WITH_SHEET, sizes=(2,))
    run(url, refs[0].task_id, TaskOutcome(done=1, failed=1, results=[
        ItemResult("a.jpg", "out/a.png"), ItemResult("b.jpg", None, "DataError: unreadable")]))
    assert failures(url, job_id)["images"] == [{"image_id": "b.jpg",
                                               "error": "DataError: unreadable"}]
    retry_job(url, job_id)
    run(url, refs[0].task_id, TaskOutcome(done=2, results=[ItemResult("b.jpg", "out/b.png")]))
    with session_scope(url) as session:
        rows = session.execute(select(ResultRecord.image_id, ResultRecord.output_path).order_by(
            ResultRecord.image_id)).all()
    assert rows == [("a.jpg", "out/a.png"), ("b.jpg", "out/b.png")]


def test_a_silent_worker_s_task_is_requeued_and_its_old_claim_can_no_longer_end_it(
        url: str) -> None:
    job_id, refs = new(url)
    lost = claim_task(url, refs[0].task_id, "dead-worker", LIVENESS)
    silence(url, refs[0].task_id)
    again = requeue_stale(url, LIVENESS)
    assert [ref.task_id for ref in again] == [refs[0].task_id]
    assert task_state(url, refs[0].task_id) == "queued"
    assert not heartbeat(url, lost, 1, 0)
    fresh = claim_task(url, refs[0].task_id, "w2", LIVENESS)
    assert fresh.attempt == 2
    assert not finish_task(url, lost, TaskOutcome(done=3, results=[ItemResult("x", "x.png")]))
    assert finish_task(url, fresh, TaskOutcome(done=3))
    with session_scope(url) as session:
        assert session.execute(select(ResultRecord)).first() is None


def test_a_live_worker_s_task_is_not_requeued(url: str) -> None:
    _, refs = new(url)
    claim_task(url, refs[0].task_id, "w1", LIVENESS)
    silence(url, refs[0].task_id, seconds=LIVENESS.stale_after_s / 2)
    assert requeue_stale(url, LIVENESS) == []
    assert task_state(url, refs[0].task_id) == "running"


def test_a_redelivered_message_takes_over_a_task_whose_worker_died(url: str) -> None:
    _, refs = new(url)
    claim_task(url, refs[0].task_id, "dead-worker", LIVENESS)
    silence(url, refs[0].task_id)
    taken = claim_task(url, refs[0].task_id, "w2", LIVENESS)
    assert taken is not None and taken.attempt == 2


def test_a_task_that_keeps_losing_its_worker_fails_instead_of_looping(url: str) -> None:
    job_id, refs = new(url)
    for _ in range(LIVENESS.max_attempts):
        claim_task(url, refs[0].task_id, "dying-worker", LIVENESS)
        silence(url, refs[0].task_id)
        requeue_stale(url, LIVENESS)
    assert task_state(url, refs[0].task_id) == "failed"
    assert "stopped heartbeating" in failures(url, job_id)["tasks"][0]["error"]
    assert job_summary(url, job_id)["failed"] == 3  # its items count as failed, as fail_task's


def test_requeuing_one_job_s_silent_tasks_leaves_the_other_jobs_alone(url: str) -> None:
    mine, my_refs = new(url)
    _, other_refs = new(url)
    for ref in (my_refs[0], other_refs[0]):
        claim_task(url, ref.task_id, "w1", LIVENESS)
        silence(url, ref.task_id)
    assert [ref.task_id for ref in requeue_stale(url, LIVENESS, mine)] == [my_refs[0].task_id]
    assert task_state(url, other_refs[0].task_id) == "running"


def test_a_reduce_does_not_run_over_incomplete_work_and_the_job_fails(url: str) -> None:
    job_id, refs = new(url)
    run(url, refs[0].task_id, TaskOutcome(done=3))
    assert run(url, refs[1].task_id, TaskOutcome(done=1, failed=1)) == []
    job = job_summary(url, job_id)
    assert job["state"] == "failed"
    assert "jobs retry" in failures(url, job_id)["tasks"][0]["error"]


def test_some_failed_items_make_a_job_partial_and_retry_reruns_only_their_task(url: str) -> None:
    job_id, refs = new(url, WITH_SHEET)
    run(url, refs[0].task_id, TaskOutcome(done=3))
    sheet = run(url, refs[1].task_id, TaskOutcome(done=1, failed=1))
    run(url, sheet[0].task_id, TaskOutcome(done=0))
    job = job_summary(url, job_id)
    assert (job["state"], job["done"], job["failed"]) == ("partial", 4, 1)
    assert "1 of 5 items failed" in job["error"]

    again = retry_job(url, job_id)
    assert [ref.task_id for ref in again] == [refs[1].task_id]
    assert task_state(url, refs[0].task_id) == "succeeded"
    retried = job_summary(url, job_id)
    assert retried["tasks"] == {"succeeded": 1, "queued": 1, "waiting": 1}
    assert (retried["done"], retried["failed"]) == (4, 0)  # the failed item is being retried
    sheet = run(url, refs[1].task_id, TaskOutcome(done=2))
    run(url, sheet[0].task_id, TaskOutcome(done=0))
    job = job_summary(url, job_id)
    assert (job["state"], job["done"], job["failed"], job["error"]) == ("succeeded", 5, 0, None)


def test_retry_sends_again_tasks_still_queued_whose_message_may_be_lost(url: str) -> None:
    job_id, refs = new(url)
    run(url, refs[0].task_id, TaskOutcome(done=3))
    assert [ref.task_id for ref in retry_job(url, job_id)] == [refs[1].task_id]
    assert job_summary(url, job_id)["tasks"] == {"succeeded": 1, "queued": 1, "waiting": 1}


def test_retry_of_a_job_that_succeeded_says_there_is_nothing_to_retry(url: str) -> None:
    job_id, refs = new(url, WITH_SHEET, sizes=(1,))
    sheet = run(url, refs[0].task_id, TaskOutcome(done=1))
    run(url, sheet[0].task_id, TaskOutcome(done=0))
    with pytest.raises(ConfigError, match=f"Job {job_id} has nothing to retry"):
        retry_job(url, job_id)


def test_cancel_stops_queued_and_running_tasks_and_retry_resumes_them(url: str) -> None:
    job_id, refs = new(url)
    running = claim_task(url, refs[0].task_id, "w1", LIVENESS)
    cancel_job(url, job_id)
    job = job_summary(url, job_id)
    assert job["state"] == "cancelled" and job["tasks"] == {"cancelled": 3}
    assert not heartbeat(url, running, 1, 0)  # the worker learns it at its next beat
    assert not finish_task(url, running, TaskOutcome(done=3))
    assert claim_task(url, refs[1].task_id, "w2", LIVENESS) is None
    advance_job(url, job_id)
    assert job_summary(url, job_id)["state"] == "cancelled"
    with pytest.raises(ConfigError, match="already ended"):
        cancel_job(url, job_id)

    again = retry_job(url, job_id)
    assert sorted(ref.task_id for ref in again) == sorted(ref.task_id for ref in refs)
    assert job_summary(url, job_id)["state"] == "queued"


def test_a_job_whose_worker_died_before_starting_the_final_step_is_moved_on(url: str) -> None:
    job_id, refs = new(url, sizes=(1,))
    claim = claim_task(url, refs[0].task_id, "w1", LIVENESS)
    finish_task(url, claim, TaskOutcome(done=1))  # ...and the worker died before advance_job
    ready = requeue_stale(url, LIVENESS)
    assert [ref.task_name for ref in ready] == ["featurechanger.fanout_reduce"]


def test_an_unknown_job_id_is_a_clear_error(url: str) -> None:
    with pytest.raises(ConfigError, match="There is no job 42"):
        job_summary(url, 42)


@pytest.mark.parametrize("tasks, cancelled, expected", [
    ([("queued", False, 0, 0), ("waiting", True, 0, 0)], False, "queued"),
    ([("running", False, 0, 0), ("queued", False, 0, 0)], False, "running"),
    ([("succeeded", False, 2, 0), ("succeeded", True, 0, 0)], False, "succeeded"),
    ([("succeeded", False, 2, 1)], False, "partial"),
    ([("failed", False, 0, 3)], False, "failed"),
    ([("succeeded", False, 2, 0), ("failed", True, 0, 0)], False, "failed"),
    ([("succeeded", False, 2, 0), ("cancelled", False, 0, 0)], True, "cancelled"),
])
def test_a_job_state_follows_from_its_tasks(tasks: list, cancelled: bool, expected: str) -> None:
    tally = states.tally_job([states.TaskTally(*task) for task in tasks], cancelled)
    assert tally.state == expected


def test_the_quick_schema_check_reads_the_same_head_as_alembic() -> None:
    """ensure_schema skips Alembic when the stored revision is the files' head: that head must
    be Alembic's own."""
    from featurechanger.db.migrate import file_head_revision, head_revision

    assert file_head_revision() == head_revision("sqlite://")
