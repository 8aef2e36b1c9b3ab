"""Measuring edits: intervals, the classifier, the eye band, and the whole protocol on a toy world
whose true edits (twins) are known."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from featurechanger.attributes import ATTRIBUTE_INDEX
from featurechanger.config import Settings
from featurechanger.editing.batch import decode_edit
from featurechanger.errors import DataError
from featurechanger.evaluation import intervals
from featurechanger.evaluation.classifier import (balanced_accuracy, default_classifier_path,
                                                  edit_judge_path, label_weights,
                                                  load_classifier, positive_weight,
                                                  predict_probabilities, save_classifier,
                                                  train_classifier, train_in_batches)
from featurechanger.evaluation.quality import (Scores, evaluate_edit, format_report, judge_view,
                                              summarise)
from featurechanger.evaluation.regions import eye_band
from featurechanger.latent.edits import EditSpec, edit_amount, edit_direction
from featurechanger.latent.vectors import VectorPlan, shard_stats, vectors_from_stats
from featurechanger.render.compose import compose
from tests.editing_world import CROP_BOX, EYES, GLASSES, identity_model, make_world, write_photos
from orchestrator.output import to_json
from tests.editing_world import one_thread  # noqa: F401 - a fixture

pytestmark = pytest.mark.usefixtures("one_thread")


def test_wilson_interval_matches_the_textbook_values() -> None:
    estimate = intervals.proportion(np.array([True] * 8 + [False] * 2))
    assert estimate.value == 0.8
    assert estimate.low == pytest.approx(0.4902, abs=1e-4)
    assert estimate.high == pytest.approx(0.9433, abs=1e-4)
    assert intervals.proportion(np.ones(50, dtype=bool)).high == 1.0


def test_mean_interval_narrows_with_more_samples() -> None:
    rng = np.random.default_rng(0)
    small, large = intervals.mean(rng.normal(20, 2, 100)), intervals.mean(rng.normal(20, 2, 10000))
    assert small.low < 20 < small.high and large.low < 20 < large.high
    assert large.high - large.low < (small.high - small.low) / 5


def test_mean_interval_of_shares_stays_within_0_and_1() -> None:
    shares = np.array([1.0] * 10 + [0.6, 0.7])  # few images, mostly all kept
    unbounded, bounded = intervals.mean(shares), intervals.mean(shares, bounds=(0.0, 1.0))
    assert unbounded.high > 1.0
    assert bounded.high == 1.0 and bounded.low == unbounded.low


def test_balanced_accuracy_weighs_both_classes_and_marks_absent_ones() -> None:
    labels = np.zeros((10, 40), dtype=np.uint8)
    labels[:2, 0] = 1  # 2 positives, 8 negatives
    predictions = np.zeros((10, 40), dtype=bool)  # always "no"
    accuracy = balanced_accuracy(predictions, labels)
    assert accuracy[0] == 0.5  # 100% of negatives, 0% of positives
    assert np.isnan(accuracy[1])  # no positives at all: cannot be judged


def test_label_weights_balance_classes_and_decorrelate_the_named_attributes() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random((4000, 40)) < 0.3).astype(np.uint8)
    glasses, male = ATTRIBUTE_INDEX["Eyeglasses"], ATTRIBUTE_INDEX["Male"]
    labels[:, male] = rng.random(4000) < np.where(labels[:, glasses] == 1, 0.8, 0.4)
    plain = np.where(labels == 1, positive_weight(labels).numpy(), 1.0)
    np.testing.assert_allclose(label_weights(labels), plain, rtol=1e-6)
    weights = label_weights(labels, ["eyeglasses"])
    # Weighted, Male says nothing of glasses: P(Male | glasses) = P(Male | no glasses) = 1/2,
    # and glasses keep their share of the data.
    weighted = np.array([[weights[(labels[:, glasses] == g) & (labels[:, male] == m), male]
                          .sum() for m in (0, 1)] for g in (0, 1)])
    np.testing.assert_allclose(weighted[:, 1] / weighted.sum(1), [0.5, 0.5], rtol=1e-5)
    assert weighted[1].sum() / weighted.sum() == pytest.approx(labels[:, glasses].mean())
    np.testing.assert_allclose(weights[:, glasses], plain[:, glasses], rtol=1e-6)
    constant = np.zeros((10, 40), np.uint8)  # no positives anywhere: nothing to balance
    assert (label_weights(constant, ["Eyeglasses"]) == 1).all()


def test_annealed_training_settles_while_a_constant_rate_keeps_stepping() -> None:
    def last_and_first_steps(anneal: bool) -> tuple[float, float]:
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 1)
        weights = [model.weight.detach().clone()]

        def batch_loss(rows: np.ndarray) -> torch.Tensor:
            weights.append(model.weight.detach().clone())
            return (model(torch.ones(len(rows), 2)) - 50).pow(2).mean()

        train_in_batches(model, batch_loss, 40, epochs=2, batch_size=4, lr=0.1,
                         generator=np.random.default_rng(0), desc="test", anneal=anneal)
        weights.append(model.weight.detach().clone())
        steps = [float((after - before).abs().max())
                 for before, after in zip(weights[1:], weights[2:])]
        return steps[-1], steps[0]

    last, first = last_and_first_steps(anneal=True)
    assert last < 0.02 * first  # the rate fell to about 0 along the cosine
    last, first = last_and_first_steps(anneal=False)
    assert last > 0.5 * first  # far from its target (50), Adam keeps stepping at the rate


def test_male_against_the_label_counts_the_judges_error_once() -> None:
    """Ten glasses wearers, all men. The judge calls face 0 a woman on the photo only and face 1
    on the edit only: against the photo's call both count as changed, against the label only
    face 1 does (the edit was judged wrong, the photo's miscall was not the edit's doing)."""
    glasses, male = ATTRIBUTE_INDEX["Eyeglasses"], ATTRIBUTE_INDEX["Male"]
    labels = np.zeros((10, 40), dtype=bool)
    labels[:, [glasses, male]] = True
    photo, edit = labels.copy(), labels.copy()
    edit[:, glasses] = False
    photo[0, male] = edit[1, male] = False
    scores = Scores(predictions={"photo": [photo], "edit": [edit]}, labels=[labels])
    judge = SimpleNamespace(judged=["Eyeglasses", "Male", "Smiling"], left_out={})
    report = summarise(scores, judge, EditSpec.parse(remove=["Eyeglasses"]))
    assert report["male_preserved"] == pytest.approx(0.8)
    assert report["male_label_preserved"] == pytest.approx(0.9)
    assert report["photo_male_label_preserved"] == pytest.approx(0.9)
    assert report["success"] == 1.0


def test_the_printed_report_says_n_a_where_nothing_could_be_measured() -> None:
    """One face: the distance's interval is infinite; Bald never drawn: no balanced accuracy.
    The same text from the report and from its --json (where those values are null)."""
    report = {"n": 1, "edit": EditSpec.parse(remove=["Eyeglasses"], strength=1.5).to_json(),
              "left_out": {"Bald": math.nan, "Young": 0.81},
              "success": 1.0, "success_ci": [0.207, 1.0],
              "truth_psnr": 30.0, "truth_psnr_ci": [-math.inf, math.inf]}
    printed = format_report(report)
    assert printed.startswith("1 faces, edit: remove Eyeglasses at strength 1.5\n")
    assert "success: 100.0% [20.7, 100.0]" in printed
    assert "truth_psnr: 30.0 dB [n/a, n/a]" in printed
    assert "Bald n/a, Young 0.81" in printed
    assert format_report(json.loads(to_json(report))) == printed


def test_the_judge_of_an_edit_is_the_decorrelated_classifier_else_the_plain_one(
        settings: Settings) -> None:
    shards = SimpleNamespace(path=Path("/data/shards"), label="shards-01234567")
    with pytest.raises(DataError, match="classifier train --data /data/shards --decorrelate "
                                        "Smiling`.*--classifier FILE"):
        edit_judge_path(settings, shards, ["Smiling"])
    plain = default_classifier_path(settings, shards)
    plain.parent.mkdir(parents=True)
    plain.touch()
    assert edit_judge_path(settings, shards, ["Smiling"]) == plain
    decorrelated = default_classifier_path(settings, shards, ["Smiling"])
    decorrelated.touch()
    assert edit_judge_path(settings, shards, ["Smiling"]) == decorrelated


def test_eye_band_spans_both_eyes_with_anthropometric_margins() -> None:
    landmarks = np.array([69, 111, 109, 111, 89, 135, 72, 152, 106, 152])
    left, top, right, bottom = eye_band(landmarks, 178, 218)
    assert (left, right) == (45, 133)  # 2.2 x 40 px centred on x = 89
    assert (top, bottom) == (95, 127)  # 0.8 x 40 px centred on y = 111


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A world on disk (photos, twins), its vectors plain and keeping Male, a classifier."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("toy")
    partitions = np.repeat(np.array([0, 1, 2], dtype=np.uint8), [300, 100, 200])
    world = make_world(600, partitions=partitions)
    data = write_photos(root / "data", world.photos, world.arrays.source_paths)
    twin = write_photos(root / "twin", world.twins, world.arrays.source_paths)
    for folder, changes in ((data, {}), (twin, {"Eyeglasses": 0})):
        (folder / "synthetic.json").write_text(json.dumps(
            {"count": 600, "seed": 0, "counterfactual": changes}))
    model = identity_model()
    stats = shard_stats(model, world.arrays, VectorPlan())  # the train split only
    views = np.stack([judge_view(photo, CROP_BOX) for photo in world.photos])
    train, val = partitions == 0, partitions == 1
    classifier = train_classifier(views[train], world.arrays.labels[train], views[val],
                                  world.arrays.labels[val], epochs=6, batch_size=32, lr=3e-3)
    test_arrays = world.arrays.select(partitions == 2)
    return {"world": world, "data": data, "twin": twin, "model": model, "test": test_arrays,
            "plain": vectors_from_stats(stats, VectorPlan()), "classifier": classifier,
            "kept": vectors_from_stats(stats, VectorPlan(), keep=["Male"]), "root": root}


def test_classifier_learns_the_drawn_attributes_and_round_trips(toy: dict, tmp_path: Path) -> None:
    classifier = toy["classifier"]
    assert {"Eyeglasses", "Male", "Smiling"} <= set(classifier.judged)
    assert "Bald" in classifier.left_out  # never drawn, never positive: not judged
    loaded = load_classifier(save_classifier(tmp_path / "c.pt", classifier, source="toy"))
    assert loaded.judged == classifier.judged and loaded.decorrelated == ()
    assert loaded.precision == classifier.precision
    views = np.stack([judge_view(p, CROP_BOX) for p in toy["world"].photos[:8]])
    np.testing.assert_allclose(predict_probabilities(loaded.model, views),
                               predict_probabilities(classifier.model, views), atol=1e-6)


def test_keeping_male_moves_the_male_score_less(toy: dict) -> None:
    """Judged on the model's own images, so that only the vectors differ."""
    arrays, model = toy["test"], toy["model"]
    wearers = arrays.select(arrays.labels[:, GLASSES] == 1)
    spec = EditSpec.parse(remove=["Eyeglasses"], strength=1.0)
    photos = toy["world"].photos[[int(i[:6]) - 1 for i in wearers.image_ids]]

    def male_score_change(vectors) -> float:  # noqa: ANN001 - VectorSet
        reconstructions, edits = decode_edit(model, wearers.images,
                                             edit_direction(vectors, spec), spec.strength)
        before = np.stack([judge_view(p, CROP_BOX) for p in photos])
        after = np.stack([judge_view(compose(p, CROP_BOX, r, e, "decoded"), CROP_BOX)
                          for p, r, e in zip(photos, reconstructions, edits)])
        male = ATTRIBUTE_INDEX["Male"]
        probabilities = [predict_probabilities(toy["classifier"].model, views)[:, male]
                         for views in (before, after)]
        return float(np.abs(probabilities[1] - probabilities[0]).mean())

    assert male_score_change(toy["kept"]) < male_score_change(toy["plain"]) / 2


def test_evaluation_reports_rates_and_beats_doing_nothing_against_twins(toy: dict) -> None:
    report, samples = evaluate_edit(
        toy["test"], model=toy["model"], vectors=toy["kept"],
        spec=EditSpec.parse(remove=["Eyeglasses"], strength=1.0), classifier=toy["classifier"],
        dataset_root=toy["data"], twin_root=toy["twin"], output="blend")
    wearers = int((toy["test"].labels[:, GLASSES] == 1).sum())
    assert report["n"] == wearers and len(samples) == min(8, wearers)
    for key in ("success", "preserved", "male_preserved", "reconstruction_preserved",
                "truth_psnr", "do_nothing_psnr"):
        low, high = report[f"{key}_ci"]
        assert low <= report[key] <= high
    assert report["success"] > 0.9 and report["male_preserved"] > 0.9
    assert report["twin_success"] > 0.9 and report["twin_male_preserved"] > 0.9  # the ceiling
    assert report["band_truth_psnr"] > report["band_do_nothing_psnr"] + 3
    assert report["band_truth_psnr"] > report["band_blurred_psnr"]


def test_the_default_adaptive_edit_removes_glasses_and_keeps_male(toy: dict) -> None:
    spec = EditSpec.parse((), ["Eyeglasses"], *edit_amount(None, None))
    assert spec.adaptive
    report, _ = evaluate_edit(toy["test"], model=toy["model"], vectors=toy["kept"], spec=spec,
                              classifier=toy["classifier"], dataset_root=toy["data"],
                              output="blend")
    assert report["success"] > 0.9 and report["male_preserved"] > 0.9


def test_a_twin_of_other_faces_or_another_change_is_refused(toy: dict, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "synthetic.json").write_text(json.dumps(
        {"count": 600, "seed": 1, "counterfactual": {"Eyeglasses": 0}}))
    with pytest.raises(DataError, match="--seed 0"):
        evaluate_edit(toy["test"], model=toy["model"], vectors=toy["plain"],
                      spec=EditSpec.parse(remove=["Eyeglasses"]), classifier=toy["classifier"],
                      dataset_root=toy["data"], twin_root=other)
    with pytest.raises(DataError, match="--counterfactual Smiling=1"):
        evaluate_edit(toy["test"], model=toy["model"], vectors=toy["plain"],
                      spec=EditSpec.parse(add=["Smiling"]), classifier=toy["classifier"],
                      dataset_root=toy["data"], twin_root=toy["twin"])


def test_eye_band_of_the_toy_world_covers_its_glasses() -> None:
    left, top, right, bottom = eye_band(np.array([*EYES, 0, 0, 0, 0, 0, 0]), 89, 109)
    assert top <= 44 and bottom >= 52 and left <= 20 and right >= 69
