"""The refiner: the detail a run's decoder blurs, restored inside a removed object's band; and
what a blended removal needs (a localiser and a refiner per removed attribute)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from featurechanger.data.shards import ShardSet, build_shards
from featurechanger.data.synth import write_synthetic
from featurechanger.editing.bands import (load_removal, localiser_path, refiner_path,
                                          removal_parts)
from featurechanger.editing.localiser import Localiser, LocaliserNet, save_localiser
from featurechanger.editing.occluders import draw_spectacles
from featurechanger.editing.refiner import (Refiner, RefinerNet, _band_error, _edge_loss,
                                            _training_views, load_refiner, save_refiner,
                                            train_refiner)
from featurechanger.errors import ConfigError, DataError
from featurechanger.latent.edits import EditSpec
from tests.editing_world import one_thread  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow


class BlurringModel(torch.nn.Module):
    """A stand-in autoencoder at 32 px that reconstructs each image from its 8 px version: a
    decoder that blurs, as a real one does."""

    resolution = 32

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 4).flatten(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return F.interpolate(z.view(-1, 3, 8, 8), size=32, mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> ShardSet:
    root = tmp_path_factory.mktemp("refiner")
    write_synthetic(root / "data", 240, seed=0, workers=1, progress=False)
    return build_shards(root / "data", root / "shards", sizes=(32, 64), shard_size=120,
                        workers=1, progress=False)


@pytest.fixture(scope="module")
def refiner(faces: ShardSet, one_thread: None) -> Refiner:  # noqa: F811 - the fixture
    return train_refiner(BlurringModel(), faces, "eyeglasses", epochs=8, batch_size=8)


def test_a_refiner_restores_the_detail_its_decoder_blurs(refiner: Refiner) -> None:
    """On validation faces, the refined band is closer to the photo than the decoder's."""
    assert refiner.attribute == "Eyeglasses"
    assert refiner.band_error["refined"] < 0.9 * refiner.band_error["decoded"]


def test_a_fill_is_crop_sized_and_a_saved_refiner_loads_as_it_was(
        refiner: Refiner, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    crop, decoded = (rng.random((90, 90, 3)).astype(np.float32) for _ in range(2))
    band = np.zeros((90, 90, 1), np.float32)
    band[30:50, 10:80] = 1
    fill = refiner.fill(crop, decoded, band)
    assert fill.shape == (90, 90, 3) and np.isfinite(fill).all()
    path = save_refiner(tmp_path / "Eyeglasses.pt", refiner, source="test")
    loaded = load_refiner(path, "Eyeglasses", run_id=1)
    np.testing.assert_array_equal(loaded.fill(crop, decoded, band), fill)
    assert loaded.band_error == refiner.band_error
    assert loaded.precision == refiner.precision
    with pytest.raises(DataError, match="refines Eyeglasses, not Wearing_Hat"):
        load_refiner(path, "Wearing_Hat", run_id=1)
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="broken.pt. as a featurechanger refiner"):
        load_refiner(tmp_path / "broken.pt", "Eyeglasses", run_id=1)


def test_a_refiner_needs_64_px_images_and_an_object_it_can_place(
        faces: ShardSet, tmp_path: Path) -> None:
    small = build_shards(faces.dataset_root, tmp_path / "small", sizes=(32,), workers=1,
                         progress=False)
    with pytest.raises(DataError, match="--size 32 --size 64"):
        train_refiner(BlurringModel(), small, "Eyeglasses")
    with pytest.raises(ConfigError, match="only for Eyeglasses, not Wearing_Hat; remove "
                                          "Wearing_Hat with --output residual or decoded"):
        train_refiner(BlurringModel(), faces, "wearing_hat")


def test_a_blended_removal_needs_a_localiser_and_a_refiner_and_other_edits_do_not(
        refiner: Refiner, settings, tmp_path: Path) -> None:
    class Shards:  # what localiser_path reads from a shard set
        path, label = tmp_path / "shards", "shards-01234567"

    checkpoint = tmp_path / "run-3" / "step-000100.pt"
    removal = EditSpec.parse(remove=["Eyeglasses"])

    def parts(spec: EditSpec = removal, output: str = "blend") -> dict:
        return removal_parts(settings, Shards, checkpoint, 3, spec, output)

    with pytest.raises(DataError, match="featurechanger localiser train --data SHARDS "
                                        "--attribute Eyeglasses"):
        parts()
    assert parts(output="residual") == {"localisers": {}, "refiners": {}}
    assert parts(EditSpec.parse(add=["Smiling"], remove=["Eyeglasses"])) == {
        "localisers": {}, "refiners": {}}
    torch.manual_seed(0)
    localiser = Localiser("Eyeglasses", LocaliserNet().eval(), 1.0)
    save_localiser(localiser_path(settings, Shards, "Eyeglasses"), localiser, source="test")
    with pytest.raises(DataError, match="featurechanger refiner train --run 3 --attribute "
                                        "Eyeglasses"):
        parts()
    save_refiner(refiner_path(checkpoint, "Eyeglasses"), refiner, source="test")
    found = parts()
    assert found["refiners"]["Eyeglasses"].parent.name == "step-000100"  # one per checkpoint
    composition = load_removal(found, run_id=3)
    assert composition.attributes == ["Eyeglasses"]
    rng = np.random.default_rng(0)
    crop, decoded = (rng.random((90, 90, 3)).astype(np.float32) for _ in range(2))
    share, fill = composition(crop, decoded, 3.0)
    band = localiser.band(crop, 3.0)
    np.testing.assert_array_equal(share, band)
    np.testing.assert_array_equal(fill, refiner.fill(crop, decoded, band))
    assert load_removal({"localisers": {}, "refiners": {}}, run_id=3) is None
    with pytest.raises(DataError, match="no refiner for Eyeglasses: it was planned by an "
                                        "earlier featurechanger"):
        load_removal({"localisers": found["localisers"]}, run_id=3)  # a job queued before


def test_the_edge_term_charges_blur_and_not_a_change_of_brightness() -> None:
    """The refiner's extra loss term compares neighbouring-pixel differences: a blurred copy
    of an image with edges costs, the same image made uniformly brighter does not."""
    image = torch.zeros(1, 3, 16, 16)
    image[..., 4:12, 4:12] = 1.0  # a square: four sharp edges
    weight = torch.ones(1, 1, 16, 16)
    blurred = F.avg_pool2d(image, 3, 1, 1, count_include_pad=False)
    assert _edge_loss(image, image, weight) == 0
    assert _edge_loss(image + 0.2, image, weight) < 1e-6
    assert _edge_loss(blurred, image, weight) > 0.05


def test_spectacles_are_drawn_around_the_eyes_only_and_repeat_with_their_seed() -> None:
    photos = torch.rand(64, 3, 64, 64)
    eyes = torch.tensor([[[40.0, 28.0], [22.0, 30.0]]]).repeat(64, 1, 1)  # right eye first
    drawn = draw_spectacles(photos, eyes, torch.Generator().manual_seed(1))
    again = draw_spectacles(photos, eyes, torch.Generator().manual_seed(1))
    torch.testing.assert_close(drawn, again)
    changed = (drawn - photos).abs().amax(1) > 1e-6  # (B, H, W)
    faces = changed.flatten(1).any(1)
    assert 0.6 < faces.float().mean() < 0.95  # OCCLUDED_SHARE of the faces, not all
    rows, columns = changed.any(0).nonzero(as_tuple=True)
    # Rims at most half the eye distance (18 px) wide and high around each eye, arms at most
    # 0.7 of it beyond: nothing below the nose or above the brows.
    assert rows.min() >= 28 - 18 - 2 and rows.max() <= 30 + 18 + 2
    assert columns.min() >= 22 - 9 - 13 - 2 and columns.max() <= 40 + 9 + 13 + 2


def test_a_see_through_refiner_keeps_what_the_spectacles_leave_uncovered(
        faces: ShardSet, refiner: Refiner, one_thread: None,  # noqa: F811 - the fixture
        tmp_path: Path) -> None:
    """Shown the photo under drawn spectacles, it restores the band better than the refiner
    that sees only the decoder's image there, and it loads as what it is."""
    seeing = train_refiner(BlurringModel(), faces, "Eyeglasses", epochs=8, batch_size=8,
                           see_through=True)
    assert seeing.net.see_through and not refiner.net.see_through
    assert seeing.band_error["refined"] < refiner.band_error["refined"]
    loaded = load_refiner(save_refiner(tmp_path / "Eyeglasses.pt", seeing, source="test"),
                          "Eyeglasses", run_id=1)
    assert loaded.net.see_through
    rng = np.random.default_rng(0)
    crop, decoded = (rng.random((90, 90, 3)).astype(np.float32) for _ in range(2))
    band = np.zeros((90, 90, 1), np.float32)
    band[30:50, 10:80] = 1
    np.testing.assert_array_equal(loaded.fill(crop, decoded, band),
                                  seeing.fill(crop, decoded, band))


def test_an_occluded_refiner_trains_on_reconstructions_of_faces_wearing_spectacles(
        faces: ShardSet, one_thread: None, tmp_path: Path) -> None:  # noqa: F811
    """The model encodes the faces with spectacles drawn on, the photos around the band show
    them, the target is the face without them; the refiner learns to fill such bands, and
    loads as what it is."""
    model = BlurringModel()
    views = _training_views(model, faces, "val", "Eyeglasses", np.random.default_rng(1), "cpu",
                            torch.Generator().manual_seed(1))
    clean = _training_views(model, faces, "val", "Eyeglasses", np.random.default_rng(1), "cpu")
    photos, shown, coarse = views.photos, views.shown, views.coarse
    drawn = (shown != photos).flatten(1).any(1)
    assert 0.5 < drawn.float().mean() < 1  # OCCLUDED_SHARE of the faces wear spectacles
    torch.testing.assert_close(photos, clean.photos)  # the target: the faces without them
    changed = (coarse != clean.coarse).flatten(1).any(1)  # the model encoded what was drawn
    assert changed[drawn].all() and not changed[~drawn].any()
    occluded = train_refiner(model, faces, "Eyeglasses", epochs=8, batch_size=8, occluded=True)
    # Its validation bands are those views: the drawn spectacles count in the decoder's error.
    assert occluded.band_error["decoded"] == pytest.approx(
        _band_error(RefinerNet(), *views, seed=2, draw=False)["decoded"])
    assert occluded.band_error["decoded"] > 1.1 * _band_error(
        RefinerNet(), *clean, seed=2, draw=False)["decoded"]
    assert occluded.band_error["refined"] < occluded.band_error["decoded"]
    loaded = load_refiner(save_refiner(tmp_path / "Eyeglasses.pt", occluded, source="test"),
                          "Eyeglasses", run_id=1)
    assert loaded.occluded and not loaded.net.see_through
    assert loaded.band_error == occluded.band_error
