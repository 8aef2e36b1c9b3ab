"""train, vectors, interpolate (bulk) and data shard as jobs through the CLI: without a broker they
run here with the job code and print their single-run output plus the job id; with one they
queue the job by name and print its id; bad requests fail before any job row is written; and
planning a job of any kind never imports torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result

from featurechanger.config import Settings, load_settings
from featurechanger.db.session import dispose_engines
from featurechanger.jobs.workers import worker_offline, worker_online
from jobs_world import EditWorld, make_edit_world
from orchestrator.cli import main

pytestmark = pytest.mark.slow

REDIS_DB = 13
BROKER_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, EditWorld]:
    home = tmp_path_factory.mktemp("home")
    settings = load_settings({"FEATURECHANGER_HOME": str(home)})
    yield settings, make_edit_world(settings, settings.data_root)
    dispose_engines()


def cli(settings: Settings, *args: object, broker: str = "") -> Result:
    """featurechanger with the world's database; `broker` empty: the embedded default."""
    return CliRunner().invoke(main, ["--home", str(settings.home), "--database-url",
                                     settings.database_url, *map(str, args)],
                              env={"FEATURECHANGER_BROKER_URL": broker or None})


def job_of(settings: Settings, job_id: int) -> dict:
    return json.loads(cli(settings, "jobs", "show", job_id, "--json").stdout)


def job_ids(settings: Settings) -> list[int]:
    return [job["job_id"] for job in json.loads(cli(settings, "jobs", "list", "--json").stdout)[
        "jobs"]]


def test_train_runs_as_a_job_here_and_keeps_its_run_output(
        world: tuple[Settings, EditWorld]) -> None:
    settings, made = world
    result = cli(settings, "train", "--data", made.shards, "--steps", "1", "--batch-size", "8",
                 "--device", "cpu", "--latent-dim", "8", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"run_id", "state", "precision", "job_id"}
    assert payload["state"] == "completed" and payload["precision"] == "fp32"  # the tests' auto
    job = job_of(settings, payload["job_id"])
    assert (job["kind"], job["state"], job["run_id"]) == ("train", "succeeded", payload["run_id"])


def test_a_train_job_shows_how_far_its_run_is_while_it_runs(
        world: tuple[Settings, EditWorld], monkeypatch: pytest.MonkeyPatch) -> None:
    """Its one item ends with the run: `jobs show` and `jobs watch` showed 0 of 1 until then."""
    from featurechanger.jobs.store import list_jobs
    from featurechanger.training import runs

    settings, made = world
    record, seen = runs.record_evaluation, []

    def record_then_look(*args: object, **values: object) -> None:
        record(*args, **values)
        [job] = list_jobs(settings.database_url, limit=1)
        seen.append((job["state"], job_of(settings, job["job_id"])["training"]))

    monkeypatch.setattr(runs, "record_evaluation", record_then_look)
    result = cli(settings, "train", "--data", made.shards, "--epochs", "2", "--batch-size", "16",
                 "--device", "cpu", "--latent-dim", "8", "--checkpoint-every", "100", "--json")
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]
    steps = seen[0][1]["step"] if seen else None  # one epoch's steps
    assert [(state, t["run_id"], t["run_state"], t["epoch"], t["step"], t["checkpoint_step"])
            for state, t in seen] == [("running", run_id, "running", 1, steps, 0),
                                      ("running", run_id, "running", 2, 2 * steps, 0)]
    shown = cli(settings, "jobs", "show", json.loads(result.stdout)["job_id"]).output
    assert (f"training: run {run_id} completed, epoch 2 ended at step {2 * steps} (val PSNR "
            in shown and f"last checkpoint at step {2 * steps}" in shown)


def test_vectors_run_as_a_job_here_and_refuse_keep_with_a_sample_at_submit(
        world: tuple[Settings, EditWorld]) -> None:
    settings, made = world
    result = cli(settings, "vectors", "--run", made.run_id, "--keep", "Male", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["keep"] == ["Male"] and len(payload["vectors"]) + len(payload["skipped"]) == 40
    job = job_of(settings, payload["job_id"])
    assert (job["kind"], job["state"]) == ("vectors", "succeeded")
    assert job["vector_set_id"] == payload["vector_set_id"]

    before = job_ids(settings)
    refused = cli(settings, "vectors", "--run", made.run_id, "--keep", "Male",
                  "--per-attribute", "4")
    assert refused.exit_code == 1 and "--keep needs every image" in refused.output
    assert job_ids(settings) == before  # refused when planned, not when the reduce ran


def test_interpolate_in_bulk_writes_a_gif_per_selected_image_or_listed_pair(
        world: tuple[Settings, EditWorld], tmp_path: Path) -> None:
    settings, made = world
    result = cli(settings, "interpolate", "--run", made.run_id, "--where", "Male=1",
                 "--split", "train", "--add", "Smiling", "--frames", "2", "--out",
                 tmp_path / "gifs", "--json")
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    assert (job["kind"], job["state"], job["params"]["frames"]) == ("interpolate", "succeeded", 2)
    assert job["params"]["where"] == {"Male": 1} and job["params"]["split"] == "train"
    assert len(list((tmp_path / "gifs").glob("*.gif"))) == job["done"] == job["total"] > 0

    pairs = tmp_path / "pairs.txt"
    pairs.write_text("000001.jpg 000002.jpg\n")
    result = cli(settings, "interpolate", "--run", made.run_id, "--pairs", pairs, "--out",
                 tmp_path / "pairs", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["params"]["frames"] == 20  # the GIF default, from one place
    assert [p.name for p in (tmp_path / "pairs").glob("*.gif")] == ["000001_to_000002.gif"]


@pytest.mark.parametrize("args, message", [
    ([], "Give one of"),
    (["--image", "000001.jpg", "--where", "Male=1"], "Give one of"),
    (["--pairs", "PAIRS", "--add", "Smiling"], "--add belong to the edit forms"),
    (["--from", "000001.jpg", "--to", "000002.jpg", "--keep", "Male"],
     "--keep belong to the edit forms"),
    (["--image", "000001.jpg", "--add", "Smiling", "--frames", "1"], "x>=2"),
    (["--image", "000001.jpg", "--add", "Smiling"], "does not end in .gif"),
    (["--image", "000001.jpg", "--add", "Smiling", "--wait"], "--queue and --wait are for"),
])
def test_interpolate_names_its_forms_when_they_are_mixed(
        world: tuple[Settings, EditWorld], tmp_path: Path, args: list[str], message: str) -> None:
    settings, made = world
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("000001.jpg 000002.jpg\n")
    args = [str(pairs) if arg == "PAIRS" else arg for arg in args]
    result = cli(settings, "interpolate", "--run", made.run_id, *args, "--out", tmp_path / "x")
    assert result.exit_code == 2 and message in result.output


def test_data_shard_runs_as_a_job_here_and_keeps_its_output(
        world: tuple[Settings, EditWorld], tmp_path: Path) -> None:
    settings, made = world
    result = cli(settings, "data", "shard", made.dataset, "--out", tmp_path / "shards",
                 "--size", "16", "--shard-size", "64", "--workers", "1", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["shards"], payload["images"], payload["sizes"]) == (2, 96, [16])
    job = job_of(settings, payload["job_id"])
    assert (job["kind"], job["state"], job["shard_set_id"]) == (
        "shard", "succeeded", payload["shard_set_id"])


def test_a_cancelled_shard_job_stops_between_shards_and_its_retry_skips_them(
        world: tuple[Settings, EditWorld], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """It built every shard to the end and reported no images until then."""
    import time

    from featurechanger.data import shards as library
    from featurechanger.jobs.runner import run_in_process
    from featurechanger.jobs.store import Liveness, cancel_job, job_summary, retry_job
    from featurechanger.jobs.submit import new_job

    settings, made = world
    out = tmp_path / "shards"
    params = {"dataset": str(made.dataset), "out": str(out), "sizes": [16], "shard_size": 32,
              "workers": 1}
    job_id, _ = new_job(settings, "shard", params, queue=None)
    write, written = library._write_shard, []

    def write_then_cancel(*args: object) -> None:
        if written:  # the second shard
            time.sleep(0.3)  # a beat stores the progress of the first
            assert job_summary(settings.database_url, job_id)["done"] == 32
        write(*args)
        written.append(args[2].name)
        if len(written) == 2:
            cancel_job(settings.database_url, job_id)
            time.sleep(0.3)  # the next beat learns of it

    monkeypatch.setattr(library, "_write_shard", write_then_cancel)
    run_in_process(settings, job_id, liveness=Liveness(heartbeat_s=0.05))
    assert job_summary(settings.database_url, job_id)["state"] == "cancelled"
    assert sorted(p.name for p in out.glob("shard-*")) == written == ["shard-00000",
                                                                      "shard-00001"]
    first = (out / "shard-00000" / "images-16.npy").stat().st_mtime_ns

    monkeypatch.setattr(library, "_write_shard", write)
    retry_job(settings.database_url, job_id)
    run_in_process(settings, job_id)
    job = job_summary(settings.database_url, job_id)
    assert (job["state"], job["done"]) == ("succeeded", 96)
    assert sorted(p.name for p in out.glob("shard-*")) == [f"shard-0000{i}" for i in range(3)]
    assert (out / "shard-00000" / "images-16.npy").stat().st_mtime_ns == first


@pytest.fixture
def broker(world: tuple[Settings, EditWorld]) -> redis.Redis:
    """The local Redis as the broker, and a (recorded, not running) worker on both queues."""
    settings, _ = world
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    worker_online(settings.database_url, "both@host", ["gpu", "cpu"], concurrency=1, pid=1,
                  heartbeat_s=60)
    yield client
    worker_offline(settings.database_url, "both@host")
    client.flushdb()


@pytest.mark.services
def test_with_a_broker_each_kind_is_queued_by_name_and_its_id_printed(
        world: tuple[Settings, EditWorld], broker: redis.Redis, tmp_path: Path) -> None:
    settings, made = world
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("000001.jpg 000002.jpg\n")
    submissions = {
        "featurechanger.train": ["train", "--data", made.shards, "--steps", "1"],
        "featurechanger.vectors_shard": ["vectors", "--run", made.run_id],
        "featurechanger.interpolate": ["interpolate", "--run", made.run_id, "--pairs", pairs,
                                       "--out", tmp_path / "gifs"],
        "featurechanger.build_shards": ["data", "shard", made.dataset, "--out",
                                        tmp_path / "shards", "--queue", "gpu"],
    }
    for task_name, args in submissions.items():
        result = cli(settings, *args, "--json", broker=BROKER_URL)
        assert result.exit_code == 0, result.output
        submitted = json.loads(result.stdout)
        assert submitted["state"] == "queued" and submitted["queue"] == "gpu"
        assert job_of(settings, submitted["job_id"])["state"] == "queued"
        messages = [json.loads(message) for message in broker.lrange("gpu", 0, -1)]
        broker.delete("gpu")
        assert [m["headers"]["task"] for m in messages] == [task_name] * submitted["tasks"]
        # What Flower shows of a task's arguments names its job.
        assert all(m["headers"]["argsrepr"].endswith(f"(job {submitted['job_id']})")
                   for m in messages)
    assert not list((tmp_path / "shards").glob("*")) and not (tmp_path / "gifs").exists()


@pytest.mark.services
def test_a_queued_job_is_followed_retried_and_listed_as_its_state_says(
        world: tuple[Settings, EditWorld], broker: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings, made = world
    submitted = cli(settings, "train", "--data", made.shards, "--steps", "1", broker=BROKER_URL)
    assert "queued on 'gpu': 1 task sent" in submitted.output
    job_id = job_ids(settings)[0]
    here = cli(settings, "jobs", "retry", job_id)  # no broker: it would take the workers' job
    assert here.exit_code == 1 and "was queued to the workers ('gpu')" in here.output
    assert "No running jobs." in cli(settings, "jobs", "list", "--state", "running").output
    assert cli(settings, "jobs", "show", 2**63).exit_code == 2  # beyond any SQL id

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt
    monkeypatch.setattr("orchestrator.submit.time.sleep", interrupted)
    watched = cli(settings, "jobs", "watch", job_id, broker=BROKER_URL)
    assert watched.exit_code == 1 and f"Stopped following job {job_id}; the job itself goes " \
        "on." in watched.output
    assert job_of(settings, job_id)["state"] == "queued" and "warning" not in job_of(
        settings, job_id)
    worker_offline(settings.database_url, "both@host")  # every worker gone
    shown = cli(settings, "jobs", "show", job_id)
    assert "warning: No online worker consumes queue 'gpu'" in shown.output


@pytest.mark.services
def test_with_a_broker_a_queue_nobody_consumes_is_refused_at_once(
        world: tuple[Settings, EditWorld], broker: redis.Redis) -> None:
    settings, made = world
    before = job_ids(settings)
    result = cli(settings, "train", "--data", made.shards, "--queue", "big-gpus",
                 broker=BROKER_URL)
    assert result.exit_code == 1
    assert "No online worker consumes queue 'big-gpus'" in result.output
    assert job_ids(settings) == before


def test_a_bulk_interpolate_into_a_file_is_refused_before_its_job(
        world: tuple[Settings, EditWorld], tmp_path: Path) -> None:
    settings, made = world
    before = job_ids(settings)
    taken = tmp_path / "taken.gif"
    taken.write_bytes(b"GIF89a")
    result = cli(settings, "interpolate", "--run", made.run_id, "--where", "Male=1", "--add",
                 "Smiling", "--out", taken)
    assert result.exit_code == 1 and "is a file; an interpolate job writes a folder" in \
        result.output
    assert job_ids(settings) == before and taken.read_bytes() == b"GIF89a"


def test_an_edit_job_refuses_to_write_among_the_photos_it_edits(
        world: tuple[Settings, EditWorld]) -> None:
    settings, made = world
    before = job_ids(settings)
    photos = made.dataset / "img_align_celeba" / "img_align_celeba"
    result = cli(settings, "edit", "--run", made.run_id, "--data", made.shards, "--add",
                 "Smiling", "--out", photos)
    assert result.exit_code == 1 and "is the folder of the photos being edited" in result.output
    assert job_ids(settings) == before


PLANS = {
    "train": {"model": "dcae", "data": "SHARDS", "steps": 1},
    "vectors": {"run": "RUN", "keep": ["Male"]},
    "interpolate": {"run": "RUN", "where": ["Male=1"], "add": ["Smiling"], "out": "OUT"},
    "shard": {"dataset": "DATASET", "out": "OUT"},
    "edit": {"run": "RUN", "data": "SHARDS", "remove": ["Eyeglasses"], "keep": [],
             "where": ["Eyeglasses=1"], "out": "OUT"},
}


@pytest.mark.parametrize("kind", sorted(PLANS))
def test_planning_a_job_of_any_kind_does_not_import_torch(
        world: tuple[Settings, EditWorld], tmp_path: Path, kind: str) -> None:
    """Submitting must stay fast: planners read rows, indexes and annotations, never a model."""
    settings, made = world
    values = {"SHARDS": str(made.shards), "RUN": made.run_id, "OUT": str(tmp_path / "out"),
              "DATASET": str(made.dataset)}
    params = {key: values.get(value, value) if isinstance(value, str) else value
              for key, value in PLANS[kind].items()}
    code = ("import sys; from featurechanger.config import load_settings; "
            "from featurechanger.jobs.submit import new_job; "
            f"new_job(load_settings(), {kind!r}, {params!r}, queue='gpu'); "
            "sys.exit(3 if 'torch' in sys.modules else 0)")
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("FEATURECHANGER_")}
    planned = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**env, "FEATURECHANGER_HOME": str(settings.home)})
    assert planned.returncode == 0, planned.stderr[-2000:]


@pytest.mark.services
def test_submitting_through_the_cli_to_a_broker_does_not_import_torch(
        world: tuple[Settings, EditWorld], broker: redis.Redis, tmp_path: Path) -> None:
    """The whole submit path (CLI, planning, the schema check, sending by name) stays light."""
    settings, made = world
    args = ["--home", str(settings.home), "--database-url", settings.database_url, "edit",
            "--run", str(made.run_id), "--data", str(made.shards), "--remove", "Eyeglasses",
            "--out", str(tmp_path / "out"), "--json"]
    code = ("import sys; from orchestrator.cli import main; "
            f"main({args!r}, standalone_mode=False); "
            "sys.exit(3 if 'torch' in sys.modules else 0)")
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("FEATURECHANGER_")}
    submitted = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env={**env, "FEATURECHANGER_BROKER_URL": BROKER_URL})
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    assert json.loads(submitted.stdout)["state"] == "queued"
