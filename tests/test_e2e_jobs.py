"""End to end on the real services: two Celery worker processes on the local Redis and a private
PostgreSQL database run an edit job submitted through the CLI; every input gets exactly one
result row and one output file, the counts match, `jobs show` and `workers` report it, and the
same job on the embedded default (SQLite, in-process) writes the same images; a vectors job
submitted with --wait runs on the same workers.

Tolerance: the workers run torch with 1 thread and the embedded run with the default threads,
so float sums may round differently; outputs may differ by at most 2 levels of 255 per channel,
on at most 1% of the pixels.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from PIL import Image
from sqlalchemy import func, select

from featurechanger.config import Settings
from featurechanger.data.shards import open_shard_set
from featurechanger.db.jobs import ResultRecord
from featurechanger.db.migrate import upgrade
from featurechanger.db.session import session_scope
from featurechanger.jobs.workers import online_workers
from jobs_world import make_edit_world, register_in

pytestmark = [pytest.mark.services, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REDIS_DB = 14
BROKER_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
MAX_LEVELS, MAX_SHARE = 2, 0.01


@pytest.fixture
def broker() -> Iterator[str]:
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    yield BROKER_URL
    client.flushdb()


@pytest.fixture
def workers(settings: Settings, postgres_url: str, broker: str,
            tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of the distributed setup, with two worker processes running in it."""
    env = {**os.environ, "FEATURECHANGER_DATABASE_URL": postgres_url,
           "FEATURECHANGER_BROKER_URL": broker, "FEATURECHANGER_HEARTBEAT_SECONDS": "1",
           "FEATURECHANGER_TORCH_THREADS": "1", "FEATURECHANGER_DEVICE": "cpu"}
    upgrade(postgres_url)
    processes = [subprocess.Popen(
        [str(BIN / "celery"), "-A", "worker.celery_app", "worker", "-Q", "gpu,cpu", "-c", "1",
         "-n", f"e2e{number}@%h", "--without-mingle", "--without-gossip", "-l", "INFO"],
        cwd=REPO, env=env, stdout=(tmp_path / f"worker{number}.log").open("w"),
        stderr=subprocess.STDOUT, start_new_session=True) for number in (1, 2)]
    try:
        deadline = time.monotonic() + 120
        while len(online_workers(postgres_url)) < 2:
            assert time.monotonic() < deadline, "workers did not come online: see worker*.log"
            assert all(p.poll() is None for p in processes), (tmp_path / "worker1.log").read_text()
            time.sleep(0.5)
        yield env
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "featurechanger"), *args], env=env, capture_output=True,
                          text=True, timeout=300)


def edit_args(run_id: int, shards: Path, out: Path) -> list[str]:
    return ["edit", "--run", str(run_id), "--data", str(shards), "--remove", "Eyeglasses",
            "--out", str(out), "--json"]


def test_an_edit_job_runs_on_two_workers_like_it_runs_in_process(
        settings: Settings, postgres_url: str, workers: dict[str, str]) -> None:
    world = make_edit_world(settings, settings.data_root)
    embedded_env = {name: value for name, value in workers.items()
                    if name not in ("FEATURECHANGER_DATABASE_URL", "FEATURECHANGER_BROKER_URL")}
    local_out = settings.output_root / "local"
    local = cli(embedded_env, *edit_args(world.run_id, world.shards, local_out))
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout)["state"] == "succeeded"

    shared = register_in(settings.with_overrides(database_url=postgres_url), settings, world)
    distributed = settings.output_root / "distributed"
    submitted = cli(workers, *edit_args(shared.run_id, world.shards, distributed))
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["job_id"]
    watched = cli(workers, "jobs", "watch", str(job_id), "--json")
    assert watched.returncode == 0, watched.stdout + watched.stderr

    image_ids = [i for _, arrays in _shards(world.shards) for i in arrays.image_ids]
    job = json.loads(cli(workers, "jobs", "show", str(job_id), "--tasks", "--json").stdout)
    assert (job["job_id"], job["kind"], job["state"]) == (job_id, "edit", "succeeded")
    assert (job["total"], job["done"], job["failed"]) == (len(image_ids), len(image_ids), 0)
    assert job["run_id"] == shared.run_id and job["vector_set_id"] == shared.vector_set_id
    online = json.loads(cli(workers, "workers", "--json").stdout)["workers"]
    assert {w["hostname"].split("@")[0] for w in online} == {"e2e1", "e2e2"}
    assert all(w["queues"] == ["cpu", "gpu"] for w in online)
    assert {task["worker"] for task in job["task_list"]} <= {w["hostname"] for w in online}

    with session_scope(postgres_url) as session:
        rows = session.execute(select(ResultRecord.image_id, func.count()).where(
            ResultRecord.job_id == job_id).group_by(ResultRecord.image_id)).all()
    assert sorted(rows) == [(image_id, 1) for image_id in sorted(image_ids)]

    expected = {Path(image_id).stem + ".png" for image_id in image_ids}
    assert {p.name for p in distributed.glob("*.png")} == expected | {"contact_sheet.png"}
    assert len(list((distributed / "manifests").glob("shard-*.json"))) == 3
    for name in sorted(expected):
        _assert_close(local_out / name, distributed / name)

    # Another kind through the same workers, followed with --wait: a vectors job (a fan-out over
    # the shards and a reduce) prints the vector set it made, as the single-run form does.
    vectors = cli(workers, "vectors", "--run", str(shared.run_id), "--wait", "--json")
    assert vectors.returncode == 0, vectors.stdout + vectors.stderr
    made = json.loads(vectors.stdout)
    assert len(made["vectors"]) + len(made["skipped"]) == 40
    job = json.loads(cli(workers, "jobs", "show", str(made["job_id"]), "--json").stdout)
    assert (job["kind"], job["state"], job["vector_set_id"]) == (
        "vectors", "succeeded", made["vector_set_id"])


def _shards(path: Path) -> list:
    shard_set = open_shard_set(path)
    return [(i, shard_set.shard(i, 32)) for i in range(shard_set.num_shards)]


def _assert_close(first: Path, second: Path) -> None:
    a = np.asarray(Image.open(first), dtype=np.int16)
    b = np.asarray(Image.open(second), dtype=np.int16)
    assert a.shape == b.shape
    difference = np.abs(a - b)
    assert difference.max() <= MAX_LEVELS, f"{second.name} differs by {difference.max()}"
    assert (difference > 0).mean() <= MAX_SHARE, f"{second.name}: {(difference > 0).mean():.3%}"
