"""Edits: the spec users write, z + s * v, and the batch edit that writes full-resolution photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from featurechanger.attributes import ATTRIBUTES
from featurechanger.editing.bands import is_banded
from featurechanger.editing.batch import (decode_edit, edit_image_folder, edit_shard,
                                          interpolate_pairs, interpolate_shard, output_name)
from featurechanger.errors import ConfigError
from featurechanger.latent.edits import (ADDITION_DEFAULTS, BANDED_REMOVAL_MARGIN,
                                         DEFAULT_MARGIN, DEFAULT_STRENGTH, EditSpec, apply_edit,
                                         edit_amount, edit_direction, edit_latents,
                                         keeps_faint_changes)
from featurechanger.latent.vectors import AttributeVector, VectorSet
from featurechanger.models import build_model
from tests.editing_world import HEIGHT, WIDTH, identity_model, make_world, write_photos


def _vector_set(dim: int, names: tuple[str, ...] = ("Eyeglasses", "Smiling")) -> VectorSet:
    rng = np.random.default_rng(0)
    return VectorSet(vectors={name: AttributeVector(name, rng.standard_normal(dim).astype(
        np.float32), 10, 10, 0.1) for name in names}, method="mean")


def test_spec_parses_names_case_insensitively_and_combines_directions() -> None:
    spec = EditSpec.parse(add=["smiling"], remove=["EYEGLASSES"], strength=2)
    assert spec.add == ("Smiling",) and spec.remove == ("Eyeglasses",)
    vectors = _vector_set(5)
    expected = vectors.vector("Smiling").values - vectors.vector("Eyeglasses").values
    np.testing.assert_allclose(edit_direction(vectors, spec), expected)
    latents = np.zeros((3, 5), dtype=np.float32)
    np.testing.assert_allclose(apply_edit(latents, expected, 2.0), np.tile(2 * expected, (3, 1)))
    assert EditSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize("arguments, message", [
    ({"add": ["Eyeglases"]}, "Did you mean 'Eyeglasses'"),
    ({}, "Nothing to edit"),
    ({"add": ["Smiling"], "remove": ["smiling"]}, "both added and removed"),
    ({"add": ["Smiling"], "strength": -1.0}, "--strength"),
])
def test_bad_edit_specs_are_clear_errors(arguments: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        EditSpec.parse(**arguments)
    if "Did you mean" in message:
        assert all(name in str(error.value) for name in ATTRIBUTES)


def _axis_vectors() -> VectorSet:
    """Glasses along e0 with discriminant 2 * e0 (negatives score 0, positives 4, spread 1);
    Smiling along e1 + e2 with discriminant e1 (negatives score -1, positives 1, spread 0.5)."""
    def vector(name: str, values: list[float], discriminant: list[float], negative: float,
               positive: float, spread: float) -> AttributeVector:
        return AttributeVector(name, np.array(values, dtype=np.float32), 10, 10, 0.1,
                               positive_projection=positive, negative_projection=negative,
                               spread=spread, discriminant=np.array(discriminant, np.float32))
    return VectorSet(vectors={
        "Eyeglasses": vector("Eyeglasses", [2, 0, 0], [2, 0, 0], 0.0, 4.0, 1.0),
        "Smiling": vector("Smiling", [0, 2, 2], [0, 1, 0], -1.0, 1.0, 0.5)}, method="mean")


def test_adaptive_edit_moves_each_face_along_the_vector_to_the_margin_past_the_other_class(
        ) -> None:
    latents = np.array([[3.0, 0.0, 7.0], [1.0, 0.0, 7.0], [-2.0, 0.0, 7.0]], dtype=np.float32)
    spec = EditSpec.parse(remove=["Eyeglasses"], margin=1.0)
    edited = edit_latents(latents, _axis_vectors(), spec)
    # Target score 0 - 1 * 1, i.e. z0 = -0.5: the first two move there, the third is already
    # beyond and stays.
    np.testing.assert_allclose(edited[:, 0], [-0.5, -0.5, -2.0])
    np.testing.assert_allclose(edited[:, 1:], latents[:, 1:])  # nothing else moves
    # Adding Smiling moves along its vector (e1 + e2) until the score z1 reaches 1 + 0.
    both = EditSpec.parse(add=["Smiling"], remove=["Eyeglasses"], margin=0.0)
    np.testing.assert_allclose(edit_latents(latents, _axis_vectors(), both),
                               [[0.0, 1.0, 8.0], [0.0, 1.0, 8.0], [-2.0, 1.0, 8.0]], atol=1e-6)
    assert EditSpec.from_json(spec.to_json()) == spec
    assert spec.describe() == "remove Eyeglasses to 1 spreads past the other class's mean"
    # A negative margin stops short of the class mean: at -1 the target score is 0 + 1, z0 = 0.5.
    short = EditSpec.parse(remove=["Eyeglasses"], margin=-1.0)
    np.testing.assert_allclose(edit_latents(latents, _axis_vectors(), short)[:, 0],
                               [0.5, 0.5, -2.0])
    assert short.describe().endswith("to 1 spreads short of the other class's mean")


def test_an_added_attribute_moves_by_its_own_margin_and_the_others_by_the_common_one() -> None:
    latents = np.array([[3.0, 0.0, 7.0]], dtype=np.float32)
    spec = EditSpec.parse(add=["smiling"], remove=["Eyeglasses"], margin=0.0,
                          addition_margins={"Smiling": 1.0, "Blond_Hair": 3.0})
    assert spec.margins == (("Smiling", 1.0),)  # Blond_Hair is not added: ignored
    # Eyeglasses to score 0 (z0 = 0); Smiling to 1 + 1 * 0.5: z1 = 1.5, z2 = 7 + 1.5.
    np.testing.assert_allclose(edit_latents(latents, _axis_vectors(), spec),
                               [[0.0, 1.5, 8.5]], atol=1e-6)
    assert EditSpec.from_json(spec.to_json()) == spec
    assert spec.describe() == ("remove Eyeglasses to 0 spreads past the other class's mean, "
                               "add Smiling to 1 spreads past the other class's mean")
    with pytest.raises(ConfigError, match="finite"):
        EditSpec.parse(add=["Smiling"], margin=0.0, addition_margins={"Smiling": float("nan")})


def test_only_additions_marked_so_keep_the_decoders_faint_changes() -> None:
    marked = [name for name, default in ADDITION_DEFAULTS.items() if default.faint_changes]
    assert marked and "Mustache" not in ADDITION_DEFAULTS
    assert keeps_faint_changes(EditSpec.parse(add=marked))
    assert keeps_faint_changes(EditSpec.parse(add=[*marked, "Mustache"]))
    assert not keeps_faint_changes(EditSpec.parse(add=["Mustache"]))
    # a removal's faint changes would keep a ghost of the removed object
    assert not keeps_faint_changes(EditSpec.parse(add=marked, remove=["Eyeglasses"]))


def test_adaptive_edit_without_class_spreads_asks_for_recomputed_vectors() -> None:
    with pytest.raises(ConfigError, match="--strength"):
        edit_latents(np.zeros((1, 5)), _vector_set(5),
                     EditSpec.parse(remove=["Eyeglasses"], margin=1.0))


def test_strength_and_margin_options_resolve_to_one_kind_of_edit() -> None:
    assert edit_amount(2.0, None) == (2.0, None, {})
    assert edit_amount(None, 0.5)[1] == 0.5
    with pytest.raises(ConfigError, match="not both"):
        edit_amount(2.0, 0.5)


def test_a_removal_composed_in_its_band_moves_less_by_default() -> None:
    assert edit_amount(None, None) == (DEFAULT_STRENGTH, DEFAULT_MARGIN, {
        name: default.margin for name, default in ADDITION_DEFAULTS.items()})
    banded = edit_amount(None, None, banded_removal=True)[1]
    assert banded == BANDED_REMOVAL_MARGIN < DEFAULT_MARGIN
    assert edit_amount(None, 3.0, banded_removal=True)[1] == 3.0  # an explicit margin wins
    assert is_banded("blend", (), ["Eyeglasses"])
    assert not is_banded("residual", (), ["Eyeglasses"])
    assert not is_banded("blend", ["Smiling"], ["Eyeglasses"])
    assert not is_banded(None, (), ["Eyeglasses"])  # pictures at the model's resolution


def test_strength_zero_returns_the_reconstruction() -> None:
    torch.manual_seed(0)
    model = build_model("dcae", latent_dim=16).eval()
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    direction = np.ones(16, dtype=np.float32)
    reconstructions, edits = decode_edit(model, images, direction, 0.0)
    np.testing.assert_array_equal(edits, reconstructions)
    _, moved = decode_edit(model, images, direction, 1.5)
    assert np.abs(moved - reconstructions).max() > 1e-3


def test_edit_shard_writes_full_resolution_photos_and_reports_a_missing_one(tmp_path: Path) -> None:
    world = make_world(6)
    root = write_photos(tmp_path / "data", world.photos, world.arrays.source_paths)
    (root / world.arrays.source_paths[2]).unlink()
    out = tmp_path / "out"
    outcomes = edit_shard(world.arrays, model=identity_model(), vectors=_vector_set(192),
                          spec=EditSpec.parse(remove=["Eyeglasses"]), dataset_root=root,
                          out_dir=out, output="blend")
    assert [o.image_id for o in outcomes] == world.arrays.image_ids
    assert outcomes[2].output_path is None and "missing" in outcomes[2].error
    assert world.arrays.source_paths[2] in outcomes[2].error
    for outcome in outcomes[:2] + outcomes[3:]:
        assert outcome.error is None
        assert outcome.output_path == out / output_name(outcome.image_id)
        assert Image.open(outcome.output_path).size == (WIDTH, HEIGHT)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        output_name(i) for k, i in enumerate(world.arrays.image_ids) if k != 2)


def test_a_shard_at_the_wrong_resolution_is_refused(tmp_path: Path) -> None:
    world = make_world(2)
    with pytest.raises(ConfigError, match="--size 32"):
        edit_shard(world.arrays, model=build_model("dcae", latent_dim=8), vectors=_vector_set(8),
                   spec=EditSpec.parse(add=["Smiling"]), dataset_root=tmp_path, out_dir=tmp_path)


def test_image_folder_edits_aligned_photos_and_explains_the_others(tmp_path: Path) -> None:
    world = make_world(3)
    folder = tmp_path / "photos"
    write_photos(folder, world.photos, ["a.png", "b.jpg", "c.png"])
    Image.new("RGB", (100, 100)).save(folder / "square.png")
    (folder / "notes.txt").write_text("not a photo")
    outcomes = edit_image_folder(folder, model=identity_model(), vectors=_vector_set(192),
                                 spec=EditSpec.parse(add=["Smiling"]), out_dir=tmp_path / "out")
    by_name = {outcome.image_id: outcome for outcome in outcomes}
    assert set(by_name) == {"a.png", "b.jpg", "c.png", "square.png", "notes.txt"}
    assert "178x218" in by_name["square.png"].error
    assert by_name["notes.txt"].error == "Not a .jpg, .jpeg or .png photo."
    assert Image.open(by_name["b.jpg"].output_path).size == (WIDTH, HEIGHT)


def test_interpolations_write_one_looping_gif_per_image_and_per_pair(tmp_path: Path) -> None:
    world = make_world(3)
    model, spec = identity_model(), EditSpec.parse(add=["Smiling"], strength=2.0)
    outcomes = interpolate_shard(world.arrays, model=model, vectors=_vector_set(192), spec=spec,
                                 out_dir=tmp_path, frames=5)
    gif = Image.open(outcomes[0].output_path)
    assert gif.n_frames == 5 and gif.size == (256, 256) and gif.info["loop"] == 0
    images = dict(zip(world.arrays.image_ids, world.arrays.images))
    pairs = interpolate_pairs([("000001.jpg", "000002.jpg"), ("000001.jpg", "999999.jpg")],
                              images, model=model, out_dir=tmp_path, frames=4)
    assert Image.open(pairs[0].output_path).n_frames == 4
    assert pairs[0].output_path.name == "000001_to_000002.gif"
    assert "999999.jpg" in pairs[1].error
