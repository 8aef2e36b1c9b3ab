"""The job kinds on the embedded default, through the CLI where there is one: an edit job writes
one output per selected image with a manifest per shard and a contact sheet, a failed image is
listed with its reason and `jobs retry` redoes only it; vectors, interpolate and train jobs do
what the in-process library does. One small world (faces, shards, DCAE, vectors) serves all."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from featurechanger.config import Settings, load_settings
from featurechanger.data.shards import open_shard_set
from featurechanger.db.session import dispose_engines
from featurechanger.jobs.selection import selected
from featurechanger.latent.edits import BANDED_REMOVAL_MARGIN
from jobs_world import EditWorld, make_edit_world
from orchestrator.cli import main
from orchestrator.submit import run_new_job_here

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, EditWorld]:
    home = tmp_path_factory.mktemp("home")
    settings = load_settings({"FEATURECHANGER_HOME": str(home)})
    yield settings, make_edit_world(settings, settings.data_root)
    dispose_engines()


def cli(settings: Settings, *args: object) -> Result:
    return CliRunner().invoke(main, ["--home", str(settings.home), "--database-url",
                                     settings.database_url, *map(str, args)])


def with_glasses(world: EditWorld) -> list[str]:
    shard_set = open_shard_set(world.shards)
    ids = []
    for index in range(shard_set.num_shards):
        arrays = shard_set.shard(index, 32)
        mask = selected(arrays, "all", {"Eyeglasses": 1})
        ids += [image_id for image_id, keep in zip(arrays.image_ids, mask) if keep]
    return ids


def test_an_edit_job_writes_one_output_per_selected_image(
        world: tuple[Settings, EditWorld], tmp_path: Path) -> None:
    settings, made = world
    result = cli(settings, "edit", "--run", made.run_id, "--data", made.shards, "--remove",
                 "Eyeglasses", "--where", "Eyeglasses=1", "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    wearers = with_glasses(made)
    assert (job["state"], job["total"], job["done"], job["failed"]) == (
        "succeeded", len(wearers), len(wearers), 0)
    assert job["params"]["where"] == {"Eyeglasses": 1}
    assert job["params"]["spec"]["margin"] == BANDED_REMOVAL_MARGIN  # a removal in its band
    assert (job["run_id"], job["vector_set_id"]) == (made.run_id, made.vector_set_id)
    assert job["params"]["checkpoint"].endswith(".pt") and job["shard_set_id"] is not None
    # The blended removal keeps the localiser and refiner it was planned with (relative to the
    # checkpoints; the refiner beside the run's checkpoint).
    assert job["params"]["localisers"]["Eyeglasses"].startswith("localisers/")
    assert job["params"]["refiners"]["Eyeglasses"].startswith(
        str(Path(job["params"]["checkpoint"]).parent / "refiners"))
    outputs = sorted(p.name for p in (tmp_path / "out").glob("0*.png"))
    assert outputs == sorted(Path(i).stem + ".png" for i in wearers)
    assert (tmp_path / "out" / "contact_sheet.png").is_file()
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "out" / "manifests").iterdir()]
    assert sorted(i for m in manifests for i in m["items"]) == sorted(wearers)


def test_a_failed_image_is_listed_and_retry_redoes_only_it(
        world: tuple[Settings, EditWorld], tmp_path: Path) -> None:
    settings, made = world
    out = tmp_path / "out"
    victim = with_glasses(made)[0]
    photo = next(made.dataset.rglob(victim))
    shutil.move(photo, tmp_path / victim)
    result = cli(settings, "edit", "--run", made.run_id, "--data", made.shards, "--remove",
                 "Eyeglasses", "--where", "Eyeglasses=1", "--out", out, "--json")
    assert result.exit_code == 2, result.output  # partial
    job_id = json.loads(result.stdout)["job_id"]
    shown = json.loads(cli(settings, "jobs", "show", job_id, "--failed", "--json").stdout)
    assert shown["state"] == "partial" and shown["failed"] == 1
    [failure] = shown["failures"]["images"]
    assert failure["image_id"] == victim and victim in failure["error"]

    shutil.move(tmp_path / victim, photo)
    untouched = sorted(out.glob("0*.png"))[-1]
    before = untouched.stat().st_mtime_ns
    retried = cli(settings, "jobs", "retry", job_id, "--json")
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.stdout)["state"] == "succeeded"
    assert (out / (Path(victim).stem + ".png")).is_file()
    assert untouched.stat().st_mtime_ns == before


def test_a_retry_on_a_shard_set_regrouped_since_the_plan_is_refused(
        world: tuple[Settings, EditWorld], tmp_path: Path) -> None:
    """Its task numbers would name other shards: the retry would edit images the plan did not
    choose, and miss the one that failed."""
    from featurechanger.data.shards import build_shards

    settings, made = world
    shards = tmp_path / "shards"
    shutil.copytree(made.shards, shards)
    victim = with_glasses(made)[0]
    photo = next(made.dataset.rglob(victim))
    shutil.move(photo, tmp_path / victim)
    try:
        result = cli(settings, "edit", "--run", made.run_id, "--data", shards, "--remove",
                     "Eyeglasses", "--where", "Eyeglasses=1", "--out", tmp_path / "out",
                     "--json")
    finally:
        shutil.move(tmp_path / victim, photo)
    assert result.exit_code == 2, result.output
    job_id = json.loads(result.stdout)["job_id"]
    build_shards(made.dataset, shards, sizes=[32], shard_size=48, workers=1, progress=False,
                 replace=True)
    retried = cli(settings, "jobs", "retry", job_id, "--json")
    assert retried.exit_code == 1
    shown = json.loads(cli(settings, "jobs", "show", job_id, "--tasks", "--json").stdout)
    assert any("was rebuilt (with --replace) since job" in (task["error"] or "")
               and "shards of 48 images" in task["error"] for task in shown["task_list"])
    assert not (tmp_path / "out" / (Path(victim).stem + ".png")).exists()


@pytest.mark.parametrize("args, message", [
    (["--remove", "Eyeglass"], "Did you mean 'Eyeglasses'"),
    (["--remove", "Eyeglasses", "--where", "Eyeglasses=2"], "must be 1 (has it) or 0"),
    (["--remove", "Eyeglasses", "--where", "Bald"], "must look like ATTR=1"),
    (["--remove", "Eyeglasses", "--where", "Eyeglasses=1", "--where", "Eyeglasses=0"],
     "contradict each other"),
    # Synthetic faces, like CelebA's, have mustaches on men only.
    (["--remove", "Mustache", "--where", "Mustache=1", "--where", "Male=0"], "No image of"),
])
def test_an_edit_that_cannot_work_is_refused_before_any_job(
        world: tuple[Settings, EditWorld], tmp_path: Path, args: list[str],
        message: str) -> None:
    settings, made = world
    before = json.loads(cli(settings, "jobs", "list", "--json").stdout)["jobs"]
    result = cli(settings, "edit", "--run", made.run_id, "--data", made.shards, *args,
                 "--out", tmp_path)
    assert result.exit_code == 1 and message in result.output
    assert json.loads(cli(settings, "jobs", "list", "--json").stdout)["jobs"] == before


def test_a_vectors_job_reduces_its_shards_to_the_in_process_vectors(
        world: tuple[Settings, EditWorld]) -> None:
    from featurechanger.latent.store import load_vector_set
    from featurechanger.latent.vectors import compute_vector_set
    from featurechanger.training.runs import load_run_model

    settings, made = world
    job = run_new_job_here(settings, "vectors", {"run": made.run_id, "data": str(made.shards),
                                                 "keep": ["Male"]})
    assert job["state"] == "succeeded" and job["tasks"] == {"succeeded": 4}
    made_by_job = load_vector_set(settings, job["vector_set_id"])
    direct = compute_vector_set(load_run_model(settings, made.run_id), open_shard_set(made.shards),
                                keep=["Male"])
    assert made_by_job.keep == ("Male",)
    for name, vector in direct.vectors.items():
        np.testing.assert_allclose(made_by_job.vector(name).values, vector.values, atol=1e-5)
    assert not list((settings.output_root / "jobs").rglob("*.npz"))  # partials cleaned up


def test_an_interpolate_job_writes_a_gif_per_image_or_per_pair(
        world: tuple[Settings, EditWorld], tmp_path: Path) -> None:
    settings, made = world
    common = {"run": made.run_id, "data": str(made.shards), "frames": 3}
    job = run_new_job_here(settings, "interpolate", {
        **common, "remove": ["Eyeglasses"], "where": ["Eyeglasses=1"], "out": str(tmp_path / "a")})
    assert job["state"] == "succeeded" and Path(
        settings.resolve(job["outputs"]["out"], "output")) == tmp_path / "a"
    assert sorted(p.stem for p in (tmp_path / "a").glob("*.gif")) == sorted(
        Path(i).stem for i in with_glasses(made))
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("# from, to\n000001.jpg 000002.jpg\n000003.jpg,000004.jpg\n")
    job = run_new_job_here(settings, "interpolate", {**common, "pairs": str(pairs),
                                                     "out": str(tmp_path / "b")})
    assert job["state"] == "succeeded" and job["done"] == 2
    assert sorted(p.name for p in (tmp_path / "b").glob("*.gif")) == [
        "000001_to_000002.gif", "000003_to_000004.gif"]


def test_a_train_job_records_the_run_it_made(world: tuple[Settings, EditWorld]) -> None:
    settings, made = world
    job = run_new_job_here(settings, "train", {"model": "dcae", "data": str(made.shards),
                                               "steps": 1, "batch_size": 8, "device": "cpu",
                                               "latent_dim": 8})
    assert job["state"] == "succeeded" and job["shard_set_id"] is not None  # what it trained on
    assert job["run_id"] == job["outputs"]["run_id"] != made.run_id
