"""Attribute vectors: one pass equals a direct computation, shards add up, sampling and
conditioning work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from featurechanger.attributes import ATTRIBUTES, ATTRIBUTE_INDEX
from featurechanger.errors import ConfigError
from featurechanger.latent.encoding import encode_images
from featurechanger.latent.vectors import (VectorPlan, VectorStats, accumulate_stats,
                                           plan_vectors, selection_masks, shard_stats,
                                           vectors_from_stats)
from tests.editing_world import GLASSES, MALE, identity_model, make_world


def _stats(world, plan: VectorPlan, pieces: int = 1) -> VectorStats:
    """Stats of the world's arrays, computed shard by shard over `pieces` shards."""
    model = identity_model()
    total = None
    for rows in np.array_split(np.arange(len(world.arrays)), pieces):
        part = shard_stats(model, world.arrays.select(np.isin(np.arange(len(world.arrays)), rows)),
                           plan, batch_size=64)
        total = part if total is None else total + part
    return total


def test_one_pass_vectors_equal_the_direct_mean_difference() -> None:
    world = make_world(300)
    latents = encode_images(identity_model(), world.arrays.images).astype(np.float64)
    vectors = vectors_from_stats(_stats(world, VectorPlan(), pieces=3), VectorPlan())
    for name in ("Eyeglasses", "Male", "Smiling"):
        column = world.arrays.labels[:, ATTRIBUTE_INDEX[name]] == 1
        direct = latents[column].mean(0) - latents[~column].mean(0)
        np.testing.assert_allclose(vectors.vector(name).values, direct, atol=1e-5)
        assert vectors.vector(name).positives == column.sum()
        assert vectors.vector(name).negatives == (~column).sum()


def test_shard_stats_add_up_to_the_stats_of_the_whole() -> None:
    world = make_world(120)
    whole, parts = _stats(world, VectorPlan()), _stats(world, VectorPlan(), pieces=4)
    for name in VectorStats.__dataclass_fields__:
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-9)


def test_stats_round_trip_through_a_file(tmp_path: Path) -> None:
    stats = _stats(make_world(50), VectorPlan())
    stats.save(tmp_path / "part.npz")
    loaded = VectorStats.load(tmp_path / "part.npz")
    for name in VectorStats.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(stats, name))


def test_attributes_without_positives_are_reported_not_silently_dropped() -> None:
    vectors = vectors_from_stats(_stats(make_world(80), VectorPlan()), VectorPlan())
    assert "Bald" not in vectors.vectors
    assert "no positives" in vectors.skipped["Bald"]
    with pytest.raises(ConfigError, match="Bald"):
        vectors.vector("Bald")


def test_vectors_only_use_the_requested_split() -> None:
    partitions = np.repeat(np.array([0, 2], dtype=np.uint8), 100)
    world = make_world(200, partitions=partitions)
    train_only = world.arrays.labels[partitions == 0]
    vectors = vectors_from_stats(_stats(world, VectorPlan()), VectorPlan())
    assert vectors.vector("Male").positives == (train_only[:, MALE] == 1).sum()
    assert vectors.images == 100


def test_sampling_takes_n_of_each_or_all_when_fewer_and_ignores_sharding() -> None:
    world = make_world(400)
    labels, ids = world.arrays.labels, world.arrays.image_ids
    plan = plan_vectors(labels, ids, per_attribute=30, seed=3)
    positive, negative = selection_masks(plan, labels, ids, world.arrays.partitions)
    glasses_available = (labels[:, GLASSES] == 1).sum()
    assert glasses_available < 80  # fewer than asked below, so "all of them" is exercised
    assert positive[:, MALE].sum() == 30 and negative[:, MALE].sum() == 30
    all_plan = plan_vectors(labels, ids, per_attribute=80, seed=3)
    all_positive, _ = selection_masks(all_plan, labels, ids, world.arrays.partitions)
    assert all_positive[:, GLASSES].sum() == glasses_available
    # The same sample whichever shard an image is in, and the mean over exactly those images.
    vectors = vectors_from_stats(_stats(world, plan, pieces=5), plan)
    latents = encode_images(identity_model(), world.arrays.images).astype(np.float64)
    direct = latents[positive[:, MALE]].mean(0) - latents[negative[:, MALE]].mean(0)
    np.testing.assert_allclose(vectors.vector("Male").values, direct, atol=1e-5)
    assert vectors.method == "sampled" and vectors.per_attribute == 30
    other_seed = plan_vectors(labels, ids, per_attribute=30, seed=4)
    assert not np.array_equal(selection_masks(other_seed, labels, ids,
                                              world.arrays.partitions)[0], positive)


def test_plan_round_trips_as_json() -> None:
    world = make_world(60)
    plan = plan_vectors(world.arrays.labels, world.arrays.image_ids, per_attribute=5, seed=1)
    assert VectorPlan.from_json(plan.to_json()) == plan


def test_keeping_male_removes_the_male_part_of_the_glasses_vector() -> None:
    """Latents z = a + g * glasses + m * male + noise: keep Male must recover g, not g + ~m."""
    rng = np.random.default_rng(0)
    count, dim = 4000, 6
    labels = np.zeros((count, 40), dtype=np.uint8)
    labels[:, MALE] = rng.random(count) < 0.5
    labels[:, GLASSES] = rng.random(count) < np.where(labels[:, MALE] == 1, 0.3, 0.05)
    g, m = np.eye(dim)[0], np.eye(dim)[1]
    latents = (labels[:, [GLASSES]] * g + labels[:, [MALE]] * m
               + 0.1 * rng.standard_normal((count, dim)))
    stats = accumulate_stats(latents, labels, labels == 1, labels == 0)
    plain = vectors_from_stats(stats, VectorPlan()).vector("Eyeglasses").values
    kept = vectors_from_stats(stats, VectorPlan(), keep=["male"])
    assert plain @ m > 0.4  # P(Male | glasses) - P(Male | no glasses) is about 0.55
    np.testing.assert_allclose(kept.vector("Eyeglasses").values, g, atol=0.03)
    assert kept.keep == ("Male",)
    # The kept attribute's own vector is its plain vector (it cannot hold itself fixed).
    np.testing.assert_allclose(kept.vector("Male").values,
                               vectors_from_stats(stats, VectorPlan()).vector("Male").values)


def test_standard_error_flags_vectors_that_are_mostly_noise() -> None:
    rng = np.random.default_rng(1)
    count = 2000
    labels = (rng.random((count, 40)) < 0.5).astype(np.uint8)
    latents = rng.standard_normal((count, 8)) + 3 * labels[:, [MALE]] * np.eye(8)[0]
    stats = accumulate_stats(latents, labels, labels == 1, labels == 0)
    vectors = vectors_from_stats(stats, VectorPlan())
    assert not vectors.vector("Male").weak
    assert vectors.vector("Smiling").weak  # unrelated to the latents: noise about its length


def test_keep_with_sampling_and_unknown_names_are_clear_errors() -> None:
    world = make_world(60)
    plan = plan_vectors(world.arrays.labels, world.arrays.image_ids, per_attribute=5)
    stats = _stats(world, plan)
    with pytest.raises(ConfigError, match="--per-attribute"):
        vectors_from_stats(stats, plan, keep=["Male"])
    with pytest.raises(ConfigError, match="Did you mean 'Eyeglasses'") as error:
        vectors_from_stats(stats, VectorPlan(), keep=["Eyeglass"])
    assert all(name in str(error.value) for name in ATTRIBUTES)


def test_discriminant_and_class_scores_equal_a_direct_computation() -> None:
    """w = Sigma^-1 v with Sigma the residual covariance of the fit; class means of w . z; the
    within-class spread of the score."""
    rng = np.random.default_rng(2)
    count, dim = 3000, 5
    labels = np.zeros((count, 40), dtype=np.uint8)
    labels[:, MALE] = rng.random(count) < 0.5
    labels[:, GLASSES] = rng.random(count) < np.where(labels[:, MALE] == 1, 0.3, 0.05)
    scale = np.array([0.3, 1.0, 1.0, 2.0, 0.5])  # anisotropic noise: w differs from v
    latents = (2 * labels[:, [GLASSES]] * np.array([1.0, 0, 0, 1.0, 0])
               + labels[:, [MALE]] * np.eye(dim)[1] + scale * rng.standard_normal((count, dim)))
    stats = accumulate_stats(latents, labels, labels == 1, labels == 0)
    glasses = labels[:, GLASSES] == 1
    for keep in ((), ("Male",)):
        vector = vectors_from_stats(stats, VectorPlan(), keep=keep).vector("Eyeglasses")
        design = np.column_stack([np.ones(count), labels[:, [GLASSES, *(
            [MALE] if keep else [])]]])
        residual = latents - design @ np.linalg.lstsq(design, latents, rcond=None)[0]
        covariance = residual.T @ residual / (count - design.shape[1])
        ridge = 1e-3 * np.trace(covariance) / dim
        expected = np.linalg.solve(covariance + ridge * np.eye(dim), vector.values)
        np.testing.assert_allclose(vector.discriminant, expected, rtol=1e-4)
        scores = latents @ vector.discriminant
        assert vector.positive_projection == pytest.approx(scores[glasses].mean(), rel=1e-4)
        assert vector.negative_projection == pytest.approx(scores[~glasses].mean(), rel=1e-4)
        assert vector.spread == pytest.approx(np.sqrt(expected @ covariance @ expected), rel=1e-4)
        # The glasses signal on the noisy axis 3 counts less than on the quiet axis 0.
        assert vector.discriminant[0] > 5 * vector.discriminant[3]


def test_sampled_vectors_have_no_discriminant() -> None:
    world = make_world(200)
    plan = plan_vectors(world.arrays.labels, world.arrays.image_ids, per_attribute=20)
    vector = vectors_from_stats(_stats(world, plan), plan).vector("Male")
    assert vector.discriminant is None and np.isnan(vector.spread)
