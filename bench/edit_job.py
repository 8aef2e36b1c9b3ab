"""The same dataset-wide edit in-process and through Redis with two worker processes, side by side.

    .venv/bin/python bench/edit_job.py [--faces 20480 | --shards SHARDS] [--out bench/out/edit_job]

Both arms edit every face (remove Eyeglasses, full-resolution blend inside the band of an
untrained localiser filled by an untrained refiner, which cost what trained ones do; one PNG
per face) of the
same shards (2,048 faces each) with the same checkpoint and vectors, on the same PostgreSQL
database (a private one, dropped afterwards) and with the same total torch threads: the
in-process arm is `featurechanger edit` without a broker and OMP_NUM_THREADS=2; the distributed
arm is the same command with a broker and two Celery worker processes (prefork, one pool
process, FEATURECHANGER_TORCH_THREADS=1 each) on the local Redis (DB 13), warmed up (imports,
model load) by a small untimed job first.

Printed, from the task rows: images/s of both arms (faces / first task start to last task
end) and their ratio; the queue overhead per shard task, the gap between one task's end and the
next task's start on the same worker (ack, broker round trip, claim), next to the mean shard
time; and how long submitting took (CLI start to printed job id).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POSTGRES = os.environ.get("FEATURECHANGER_TEST_POSTGRES",
                          "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
BROKER = "redis://127.0.0.1:6379/13"
THREADS = 2
SHARD_SIZE = 2048


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=10 * SHARD_SIZE)
    parser.add_argument("--shards", type=Path,
                        help="Use this existing shard set (32 px, shards of 2,048, its photos in "
                             "place) instead of making --faces synthetic faces.")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "edit_job")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    with private_database() as url:
        env = {**os.environ, "FEATURECHANGER_HOME": str(args.out / "home"),
               "FEATURECHANGER_DATABASE_URL": url}
        os.environ.update(env)
        world = prepare(args.out, args.faces, args.shards)
        args.faces = world["faces"]
        edit = ["edit", "--run", str(world["run_id"]), "--data", str(world["shards"]),
                "--remove", "Eyeglasses"]
        local = in_process(edit, args.out)
        with workers({**env, "FEATURECHANGER_BROKER_URL": BROKER}) as broker_env:
            distributed = through_workers(edit, args.out, broker_env)
        report(args.faces, local, distributed)  # reads the task rows: before the database goes
    print(f"load average at end: {os.getloadavg()[0]:.2f} (1 min)")


def prepare(out: Path, faces: int, existing: Path | None) -> dict:
    """Faces and shards (kept between runs, or `existing`), then a DCAE trained for a few steps
    and its vectors (the speed of an edit does not depend on how well the model is trained)."""
    import torch

    from featurechanger.config import load_settings
    from featurechanger.data.shards import build_shards, open_shard_set
    from featurechanger.data.synth import write_synthetic
    from featurechanger.db.migrate import upgrade
    from featurechanger.editing.bands import localiser_path, refiner_path
    from featurechanger.editing.localiser import Localiser, LocaliserNet, save_localiser
    from featurechanger.editing.refiner import Refiner, RefinerNet, save_refiner
    from featurechanger.latent.store import save_vector_set
    from featurechanger.latent.vectors import compute_vector_set
    from featurechanger.training.loop import train
    from featurechanger.training.options import TrainOptions
    from featurechanger.training.runs import get_run, load_run_model, run_checkpoint_path

    torch.set_num_threads(THREADS)
    settings = load_settings()
    upgrade(settings.database_url)
    if existing is not None:
        shard_set = open_shard_set(existing)
        if shard_set.shard_size != SHARD_SIZE or 32 not in shard_set.sizes:
            sys.exit(f"--shards {existing}: needs 32 px shards of {SHARD_SIZE} images.")
        shards = shard_set.path
    else:
        dataset = out / "faces"
        if not (dataset / "synthetic.json").exists() or _count(dataset) != faces:
            write_synthetic(dataset, faces, seed=0, replace=True)
        shards = build_shards(dataset, out / "shards", sizes=(32,), shard_size=SHARD_SIZE,
                              replace=True).path
    run_id = train(TrainOptions(model="dcae", data=str(shards), steps=20, device="cpu"),
                   settings, progress=False)
    vectors = compute_vector_set(load_run_model(settings, run_id), open_shard_set(shards))
    checkpoint = run_checkpoint_path(settings, get_run(settings, run_id))
    save_vector_set(settings, run_id, vectors, checkpoint=checkpoint)
    # The blend of a removal runs the Eyeglasses localiser and refiner on every face;
    # untrained, they cost the same.
    save_localiser(localiser_path(settings, open_shard_set(shards), "Eyeglasses"),
                   Localiser("Eyeglasses", LocaliserNet().eval(), float("nan")), "untrained")
    save_refiner(refiner_path(checkpoint, "Eyeglasses"),
                 Refiner("Eyeglasses", RefinerNet().eval(), {}), "untrained")
    return {"run_id": run_id, "shards": shards, "faces": open_shard_set(shards).num_images}


def _count(dataset: Path) -> int:
    return json.loads((dataset / "synthetic.json").read_text()).get("count", -1)


def in_process(edit: list[str], out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
    return {"job": run_cli([*edit, "--out", str(out / "local"), "--json"], env)}


def through_workers(edit: list[str], out: Path, env: dict) -> dict:
    warm = run_cli([*edit, "--where", "Bald=1", "--out", str(out / "warm-workers"), "--json"],
                   env)
    run_cli(["jobs", "watch", str(warm["job_id"]), "--json"], env)
    started = time.perf_counter()
    job = run_cli([*edit, "--out", str(out / "distributed"), "--json"], env)
    submitted = time.perf_counter() - started
    run_cli(["jobs", "watch", str(job["job_id"]), "--json"], env)
    return {"submit_seconds": submitted, "job": job}


def run_cli(args: list[str], env: dict) -> dict:
    """Run featurechanger; return the JSON it printed."""
    done = subprocess.run([str(BIN / "featurechanger"), *args], env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        sys.exit(f"featurechanger {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


@contextmanager
def workers(env: dict):  # noqa: ANN201
    import redis

    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    worker_env = {**env, "FEATURECHANGER_TORCH_THREADS": "1", "FEATURECHANGER_DEVICE": "cpu"}
    processes = [subprocess.Popen(
        [str(BIN / "celery"), "-A", "worker.celery_app", "worker", "-Q", "gpu", "-c", "1",
         "-n", f"bench{n}@%h", "--without-mingle", "--without-gossip", "-l", "WARNING"],
        cwd=REPO, env=worker_env, start_new_session=True) for n in (1, 2)]
    try:
        from featurechanger.jobs.workers import online_workers

        while len(online_workers(env["FEATURECHANGER_DATABASE_URL"])) < 2:
            time.sleep(0.5)
        yield env
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait()
        client.flushdb()


@contextmanager
def private_database():  # noqa: ANN201
    from sqlalchemy import create_engine, text

    name = f"featurechanger_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    finally:
        from featurechanger.db.session import dispose_engines

        dispose_engines()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def timings(job_id: int) -> tuple[float, list[float], list[float]]:
    """From the first shard task's start to the last one's end; shard task durations; and the
    gaps between consecutive tasks on each worker."""
    from featurechanger.config import load_settings
    from featurechanger.jobs.store import task_rows

    rows = [row for row in task_rows(load_settings().database_url, job_id)
            if row["step"] == "edit_shard"]
    durations = [(row["finished_at"] - row["started_at"]).total_seconds() for row in rows]
    gaps = []
    for worker in {row["worker"] for row in rows}:
        mine = sorted((row for row in rows if row["worker"] == worker),
                      key=lambda row: row["started_at"])
        gaps += [(later["started_at"] - earlier["finished_at"]).total_seconds()
                 for earlier, later in zip(mine, mine[1:])]
    span = max(row["finished_at"] for row in rows) - min(row["started_at"] for row in rows)
    return span.total_seconds(), durations, gaps


def report(faces: int, local: dict, distributed: dict) -> None:
    print(f"\nremove Eyeglasses on {faces:,} faces, {-(-faces // SHARD_SIZE)} shards of "
          f"{SHARD_SIZE:,}, {THREADS} torch threads in all per arm")
    print(f"{'arm':<34} {'seconds':>8} {'images/s':>9} {'shard s':>8} {'gap s':>7} {'gap %':>6}")
    rates = {}
    for name, arm in (("in-process (1 process, 2 threads)", local),
                      ("Redis + 2 workers (1 thread each)", distributed)):
        span, durations, gaps = timings(arm["job"]["job_id"])
        rates[name] = faces / span
        gap = statistics.mean(gaps) if gaps else float("nan")
        shard = statistics.mean(durations)
        print(f"{name:<34} {span:>8.1f} {rates[name]:>9.1f} {shard:>8.2f} "
              f"{gap:>7.3f} {100 * gap / shard:>5.2f}%")
    first, second = rates.values()
    print(f"distributed / in-process images/s: {second / first:.2f} (target >= 0.90)")
    print(f"submitting the job (CLI start to job id, torch not imported): "
          f"{distributed['submit_seconds']:.2f} s")


if __name__ == "__main__":
    main()
