"""The editing commands end to end on the embedded default: synthetic faces, shards, a PCA run,
vectors, grid, GIFs, the classifier and the evaluation."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from featurechanger.attributes import ATTRIBUTES
from featurechanger.data.shards import build_shards
from featurechanger.data.synth import write_synthetic
from featurechanger.editing.bands import refiner_path
from featurechanger.evaluation.classifier import (AttributeClassifier, Classifier,
                                                  load_classifier, save_classifier)
from featurechanger.latent.edits import ADDITION_DEFAULTS, BANDED_REMOVAL_MARGIN, DEFAULT_MARGIN
from orchestrator.cli import main
from tests.editing_world import one_thread  # noqa: F401 - a fixture

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def _invoke(*arguments: str) -> dict:
    result = CliRunner().invoke(main, [*arguments, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{"):])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A PCA run on 240 synthetic faces, with their twins without glasses."""
    root = tmp_path_factory.mktemp("editing")
    write_synthetic(root / "data", 240, seed=0, workers=1, progress=False)
    write_synthetic(root / "twin", 240, seed=0, counterfactual={"Eyeglasses": 0}, workers=1,
                    progress=False)
    build_shards(root / "data", root / "shards", sizes=(32, 64), shard_size=100, workers=1,
                 progress=False)
    return {"root": root, "shards": str(root / "shards")}


@pytest.fixture
def trained(run: dict, home: Path) -> dict:
    run_id = _invoke("train", "--model", "pca", "--data", run["shards"], "--latent-dim", "16",
                     "--device", "cpu")["run_id"]
    return {**run, "run_id": str(run_id)}


def test_vectors_grid_and_gifs(trained: dict) -> None:
    run_id, root = trained["run_id"], trained["root"]
    plain = _invoke("vectors", "--run", run_id, "--device", "cpu")
    assert plain["images"] == 192 and plain["method"] == "mean" and plain["keep"] == []
    assert set(plain["vectors"]) | set(plain["skipped"]) == set(ATTRIBUTES)
    kept = _invoke("vectors", "--run", run_id, "--keep", "male", "--device", "cpu")
    assert kept["keep"] == ["Male"]
    sampled = _invoke("vectors", "--run", run_id, "--per-attribute", "10", "--device", "cpu")
    assert sampled["vectors"]["Male"]["positives"] == 10
    listed = _invoke("vectors", "list", "--run", run_id)["vector_sets"]
    assert [s["vector_set_id"] for s in listed] == [plain["vector_set_id"],
                                                    kept["vector_set_id"],
                                                    sampled["vector_set_id"]]

    grid = _invoke("grid", "--run", run_id, "--images", "000001.jpg,000002.jpg",
                   "--attributes", "Smiling,-Male", "--out", str(root / "grid.png"))
    assert grid["vector_set_id"] == plain["vector_set_id"]  # the newest plain set
    assert Image.open(grid["out"]).size == (90 + 4 * 98 + 2, 22 + 2 * 98 + 2)
    assert [(e["add"], e["remove"]) for e in grid["edits"]] == [(["Smiling"], []), ([], ["Male"])]
    gif = _invoke("interpolate", "--run", run_id, "--image", "000003.jpg", "--add",
                  "Blond_Hair", "--frames", "6", "--out", str(root / "blond.gif"))
    assert Image.open(gif["out"]).n_frames == 6
    assert gif["vector_set_id"] == plain["vector_set_id"]
    # --keep picks the conditional set, as with edit and evaluate.
    kept_grid = _invoke("grid", "--run", run_id, "--images", "000001.jpg", "--attributes",
                        "Smiling", "--keep", "Male", "--out", str(root / "kept.png"))
    kept_gif = _invoke("interpolate", "--run", run_id, "--image", "000003.jpg", "--add",
                       "Smiling", "--keep", "Male", "--frames", "3",
                       "--out", str(root / "kept.gif"))
    assert kept_grid["vector_set_id"] == kept_gif["vector_set_id"] == kept["vector_set_id"]
    for refused_args, message in [
            (["--vectors", str(plain["vector_set_id"]), "--keep", "Male"],
             f"Vector set {plain['vector_set_id']} keeps nothing, not Male: drop --keep"),
            (["--attributes", "Smiling,smiling"], "lists +Smiling twice")]:
        refused = CliRunner().invoke(main, ["grid", "--run", run_id, "--images", "000001.jpg",
                                            "--attributes", "Smiling", *refused_args,
                                            "--out", str(root / "refused.png")])
        assert refused.exit_code in (1, 2) and message in refused.output
    # An output whose suffix names no format it can write is refused before any work.
    refused = CliRunner().invoke(main, ["grid", "--run", run_id, "--images", "000001.jpg",
                                        "--attributes", "Smiling", "--out", str(root / "g.txt")])
    assert refused.exit_code == 2 and "does not end in .png, .jpg, .jpeg" in refused.output
    pair = _invoke("interpolate", "--run", run_id, "--from", "000001.jpg", "--to", "000002.jpg",
                   "--frames", "5", "--out", str(root / "pair.gif"))
    assert Image.open(pair["out"]).n_frames == 5
    # Adaptive edits read the discriminant stored with each vector; sampled sets have none.
    adaptive = _invoke("grid", "--run", run_id, "--images", "000001.jpg", "--attributes",
                       "Smiling", "--margin", "1", "--out", str(root / "adaptive.png"))
    assert adaptive["edit"]["margin"] == 1.0
    for extra in (["--vectors", str(sampled["vector_set_id"])], ["--strength", "2"]):
        refused = CliRunner().invoke(main, ["grid", "--run", run_id, "--images", "000001.jpg",
                                            "--attributes", "Smiling", "--margin", "1",
                                            "--out", str(root / "no.png"), *extra])
        assert refused.exit_code == 1 and "--strength" in refused.output


def test_evaluate_reports_the_documented_keys(trained: dict) -> None:
    run_id, root = trained["run_id"], trained["root"]
    _invoke("vectors", "--run", run_id, "--keep", "Male", "--device", "cpu")
    # A classifier that claims to judge every attribute: this test is about the plumbing.
    judge = save_classifier(root / "judge.pt", Classifier(AttributeClassifier(), {
        name: 1.0 for name in ATTRIBUTES}), source="test")
    evaluate = ["evaluate", "--run", run_id, "--remove", "Eyeglasses", "--keep", "Male",
                "--split", "all", "--twin", str(root / "twin"), "--classifier", str(judge),
                "--device", "cpu"]
    unplaced = CliRunner().invoke(main, evaluate)
    assert unplaced.exit_code == 1 and "No Eyeglasses localiser" in unplaced.output
    assert "featurechanger localiser train --data SHARDS --attribute Eyeglasses" in \
        unplaced.output and "Traceback" not in unplaced.output
    localiser = _invoke("localiser", "train", "--data", trained["shards"], "--attribute",
                        "eyeglasses", "--epochs", "1", "--device", "cpu")["localisers"]
    assert list(localiser) == ["Eyeglasses"] and Path(localiser["Eyeglasses"]["path"]).is_file()
    unrefined = CliRunner().invoke(main, evaluate)
    assert unrefined.exit_code == 1 and "No Eyeglasses refiner" in unrefined.output
    assert f"featurechanger refiner train --run {run_id} --attribute Eyeglasses" in \
        unrefined.output and "Traceback" not in unrefined.output
    refiner = _invoke("refiner", "train", "--run", run_id, "--attribute", "eyeglasses",
                      "--epochs", "1", "--device", "cpu")["refiners"]
    assert list(refiner) == ["Eyeglasses"] and Path(refiner["Eyeglasses"]["path"]).is_file()
    assert set(refiner["Eyeglasses"]["band_error"]) == {"decoded", "refined"}
    report = _invoke(*evaluate, "--sheet", str(root / "sheet.png"))
    for key in ("n", "success", "preserved", "male_preserved", "reconstruction_preserved",
                "truth_psnr", "do_nothing_psnr", "band_truth_psnr", "band_blurred_psnr"):
        assert key in report
    assert report["n"] > 0 and report["keep"] == ["Male"]
    assert report["edit"]["margin"] == BANDED_REMOVAL_MARGIN  # a removal in its band
    flipped = report["flipped"]  # every other judged attribute
    assert set(flipped) == set(report["judged"]) - {"Eyeglasses"} == set(report["twin_flipped"])
    assert flipped["Male"] == pytest.approx(1 - report["male_preserved"], abs=1e-4)
    assert np.mean(list(flipped.values())) == pytest.approx(1 - report["preserved"], abs=1e-4)
    assert report["localisers"] == {"Eyeglasses": localiser["Eyeglasses"]["path"]}
    assert report["refiners"] == {"Eyeglasses": refiner["Eyeglasses"]["path"]}
    # The refiner belongs to the very checkpoint the edits were made with.
    assert report["refiners"]["Eyeglasses"] == str(
        refiner_path(Path(report["checkpoint"]), "Eyeglasses"))
    assert Image.open(report["sheet"]).size[0] > 3 * 160
    added = _invoke("evaluate", "--run", run_id, "--add", "Smiling", "--keep", "Male",
                    "--split", "all", "--classifier", str(judge), "--limit", "5",
                    "--device", "cpu")
    # An addition is not an object a band bounds.
    assert added["localisers"] == added["refiners"] == {}
    assert added["edit"]["margin"] == DEFAULT_MARGIN
    assert added["edit"]["margins"] == {"Smiling": ADDITION_DEFAULTS["Smiling"].margin}


def test_edit_images_edits_a_folder_of_aligned_photos_and_lists_the_others(
        trained: dict, tmp_path: Path) -> None:
    run_id, root = trained["run_id"], trained["root"]
    _invoke("vectors", "--run", run_id, "--device", "cpu")
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("000001.jpg", "000002.jpg"):
        shutil.copy(next((root / "data").rglob(name)), folder / name)
    Image.new("RGB", (100, 100)).save(folder / "square.png")
    Image.open(folder / "000002.jpg").save(folder / "000002.png")  # its edit's name is taken
    (folder / "notes.txt").write_text("not a photo")
    edit = ["edit", "--run", run_id, "--images", str(folder), "--remove", "Eyeglasses",
            "--out", str(tmp_path / "out"), "--json"]
    unplaced = CliRunner().invoke(main, edit)
    assert unplaced.exit_code == 1 and "localiser train" in unplaced.output
    _invoke("localiser", "train", "--data", trained["shards"], "--attribute", "Eyeglasses",
            "--epochs", "1", "--device", "cpu")
    _invoke("refiner", "train", "--run", run_id, "--attribute", "Eyeglasses", "--epochs", "1",
            "--device", "cpu")
    result = CliRunner().invoke(main, edit)
    assert result.exit_code == 2, result.output  # one photo could not be edited
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["done"] == 2
    assert report["edit"].endswith(f"to {abs(BANDED_REMOVAL_MARGIN):g} spreads short of the "
                                   "other class's mean")
    assert list(report["localisers"]) == list(report["refiners"]) == ["Eyeglasses"]
    assert report["refiners"]["Eyeglasses"] == str(
        refiner_path(Path(report["checkpoint"]), "Eyeglasses"))
    failed = {f["image_id"]: f["error"] for f in report["failed"]}
    assert set(failed) == {"square.png", "000002.png", "notes.txt"}
    assert "178x218" in failed["square.png"] and "as is the edit of 000002.jpg" in \
        failed["000002.png"] and "Not a .jpg" in failed["notes.txt"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["000001.png", "000002.png"]
    assert Image.open(tmp_path / "out" / "000001.png").size == (178, 218)
    both = CliRunner().invoke(main, [*edit, "--data", trained["shards"]])
    assert both.exit_code == 2 and "either --data SHARDS" in both.output
    square = (folder / "square.png").read_bytes()
    among = CliRunner().invoke(main, [*edit[:-3], "--out", str(folder)])
    assert among.exit_code == 1 and "is the folder of the photos being edited" in among.output
    assert (folder / "square.png").read_bytes() == square


def test_classifier_train_reports_balanced_accuracy(trained: dict) -> None:
    report = _invoke("classifier", "train", "--data", trained["shards"], "--epochs", "1",
                     "--width", "8", "--device", "cpu", "--precision", "fp32",
                     "--out", str(trained["root"] / "c.pt"))
    assert set(report["balanced_accuracy"]) == set(ATTRIBUTES)
    assert set(report["judged"]).isdisjoint(report["left_out"])
    assert (report["width"], report["precision"]) == (8, "fp32")
    loaded = load_classifier(report["path"])
    assert (loaded.model.width, loaded.precision) == (8, "fp32")


def test_evaluate_judges_with_the_classifier_decorrelated_from_the_edit(trained: dict) -> None:
    run_id, shards = trained["run_id"], trained["shards"]
    _invoke("vectors", "--run", run_id, "--device", "cpu")
    train = ["classifier", "train", "--data", shards, "--epochs", "1", "--device", "cpu"]
    plain = _invoke(*train)
    without = _invoke(*train, "--decorrelate", "eyeglasses")
    assert (plain["decorrelated"], without["decorrelated"]) == ([], ["Eyeglasses"])
    assert Path(plain["path"]).is_file() and without["path"] != plain["path"]
    for path in (plain["path"], without["path"]):  # 192 faces teach it little: let it judge all
        judge = load_classifier(path)
        save_classifier(path, replace(judge, balanced_accuracy=dict.fromkeys(ATTRIBUTES, 1.0)),
                        source="test")
    evaluate = ["evaluate", "--run", run_id, "--output", "residual", "--split", "all",
                "--limit", "3", "--device", "cpu"]
    removal = _invoke(*evaluate, "--remove", "Eyeglasses")
    assert (removal["judge"], removal["judge_decorrelated"]) == (without["path"], ["Eyeglasses"])
    addition = _invoke(*evaluate, "--add", "Smiling")  # no judge decorrelated from Smiling
    assert (addition["judge"], addition["judge_decorrelated"]) == (plain["path"], [])


def test_bad_names_and_missing_sets_are_one_line_errors(trained: dict) -> None:
    run_id = trained["run_id"]
    result = CliRunner().invoke(main, ["vectors", "--run", run_id, "--keep", "Eyeglass"])
    assert result.exit_code == 1 and "Did you mean 'Eyeglasses'" in result.output
    assert "Wearing_Necktie" in result.output and "Traceback" not in result.output
    missing = CliRunner().invoke(main, ["grid", "--run", run_id, "--images", "000001.jpg",
                                        "--attributes", "Smiling", "--out", "g.png"])
    assert missing.exit_code == 1 and f"featurechanger vectors --run {run_id}" in missing.output
    kept = _invoke("vectors", "--run", run_id, "--keep", "Male", "--device", "cpu")
    plain = CliRunner().invoke(main, ["grid", "--run", run_id, "--images", "000001.jpg",
                                      "--attributes", "Smiling", "--out", "g.png"])
    assert plain.exit_code == 1 and "no vector set without --keep" in plain.output
    assert f"set {kept['vector_set_id']} (mean, keeping Male)" in plain.output


def test_a_vector_set_of_an_older_checkpoint_is_refused_with_the_command_that_remakes_it(
        trained: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import featurechanger.latent.store as store
    from featurechanger.config import load_settings
    from featurechanger.errors import ConfigError

    run_id = int(trained["run_id"])
    kept = _invoke("vectors", "--run", str(run_id), "--keep", "Male", "--device", "cpu")
    monkeypatch.setattr(store, "_current_checkpoint", lambda settings, run: "a-newer-one.pt")
    with pytest.raises(ConfigError, match=f"is now at 'a-newer-one.pt'; recompute it with "
                                          f"`featurechanger vectors --run {run_id} --keep Male`"):
        store.vector_set_for_run(load_settings(), run_id, kept["vector_set_id"], ["Male"])
