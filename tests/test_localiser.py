"""The localiser: where a removed object lies, learned from image labels alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from featurechanger.attributes import ATTRIBUTE_INDEX
from featurechanger.editing.localiser import (TOP_SHARE, Localiser, load_localiser,
                                              save_localiser, train_localiser)
from featurechanger.errors import ConfigError, DataError
from tests.editing_world import one_thread  # noqa: F401 - a fixture

GLASSES = ATTRIBUTE_INDEX["Eyeglasses"]
BAR = (8, 20)  # height, width of the object


def _faces(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, list]:
    """64 px noisy skin; half the faces wear a dark bar somewhere (the object)."""
    rng = np.random.default_rng(seed)
    images = np.clip(rng.normal(150, 25, (count, 64, 64, 3)), 0, 255)
    labels = np.zeros((count, 40), dtype=np.uint8)
    labels[: count // 2, GLASSES] = 1
    places = []
    for image in images[: count // 2]:
        top, left = rng.integers(4, 64 - 4 - BAR[0]), rng.integers(4, 64 - 4 - BAR[1])
        image[top:top + BAR[0], left:left + BAR[1]] = 30
        places.append((top, left))
    return images.astype(np.uint8), labels, places


@pytest.fixture(scope="module")
def localiser(one_thread: None):  # noqa: F811 - the fixture
    images, labels, _ = _faces(256, seed=0)
    val_images, val_labels, _ = _faces(64, seed=1)
    return train_localiser("eyeglasses", images, labels, val_images, val_labels, epochs=3)


def test_a_localiser_learns_where_the_object_is_from_image_labels(localiser) -> None:
    assert localiser.attribute == "Eyeglasses" and localiser.balanced_accuracy > 0.9
    images, _, places = _faces(16, seed=2)
    covered, spill = [], []
    for image, (top, left) in zip(images, places):
        band = localiser.band(image.astype(np.float32) / 255, model_pixel=2.0)[..., 0]
        assert band.shape == (64, 64) and band.min() >= 0 and band.max() <= 1
        object_pixels = np.zeros((64, 64), dtype=bool)
        object_pixels[top:top + BAR[0], left:left + BAR[1]] = True
        covered.append(band[object_pixels].mean())
        spill.append(band[~object_pixels].mean())
    assert np.mean(covered) > 0.8  # the object is in the band
    assert np.mean(spill) < 3 * TOP_SHARE  # and little else is


def test_a_saved_localiser_loads_as_it_was_and_refuses_other_attributes(
        localiser, tmp_path: Path) -> None:
    path = save_localiser(tmp_path / "Eyeglasses.pt", localiser, source="test")
    loaded = load_localiser(path, "Eyeglasses")
    crop = np.random.default_rng(0).random((90, 90, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.band(crop, 3.0), localiser.band(crop, 3.0))
    assert loaded.balanced_accuracy == localiser.balanced_accuracy
    assert loaded.precision == localiser.precision
    with pytest.raises(DataError, match="localises Eyeglasses, not Wearing_Hat"):
        load_localiser(path, "Wearing_Hat")
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="broken.pt. as a featurechanger localiser"):
        load_localiser(tmp_path / "broken.pt", "Eyeglasses")


class TwoBlobs(torch.nn.Module):
    """A localiser net that scores glasses and, less, a mustache that correlates with them."""
    top_share = 0.05

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = -1 - torch.rand(1, 64, 64, generator=torch.Generator().manual_seed(0))
        logits[0, 20:28, 16:32] = 5.0  # the glasses: 128 px, the peak
        logits[0, 50:54, 24:40] = 4.0  # a mustache: 64 px, also in the top 5% (204 px)
        return logits


def test_the_band_is_the_region_around_the_strongest_evidence_only() -> None:
    """Glasses are one object; top pixels elsewhere (a mustache that correlates with them)
    are left out of the band."""
    band = Localiser("Eyeglasses", TwoBlobs(), 1.0).band(np.zeros((64, 64, 3), np.float32),
                                                          model_pixel=1.0)[..., 0]
    assert band[20:28, 16:32].mean() > 0.9 and band[50:54, 24:40].max() < 0.01
    assert band.mean() < 2 * 128 / 64**2  # the stray top pixels are left out too


def test_a_band_is_grown_by_four_localiser_pixels_at_least_whatever_the_model() -> None:
    """A 64 px model's band covers the object's soft edges as a 32 px model's does: both are
    grown by four of the localiser's pixels (a 16 px model's pixel, here); a coarser model's
    by its own pixel."""
    localiser = Localiser("Eyeglasses", TwoBlobs(), 1.0)
    crop = np.zeros((128, 128, 3), np.float32)  # two photo pixels per localiser pixel
    at_64, at_32, at_16, at_8 = (localiser.band(crop, model_pixel=128 / side)
                                 for side in (64, 32, 16, 8))
    np.testing.assert_array_equal(at_64, at_16)
    np.testing.assert_array_equal(at_32, at_16)
    assert at_8.sum() > at_16.sum()


def test_a_localiser_needs_faces_with_and_without_the_attribute() -> None:
    images, labels, _ = _faces(8, seed=0)
    labels[:, GLASSES] = 0
    with pytest.raises(DataError, match="needs training images with and without Eyeglasses"):
        train_localiser("Eyeglasses", images, labels, images, labels)
    with pytest.raises(ConfigError, match="Unknown attribute 'Eyeglass'.*Did you mean"):
        train_localiser("Eyeglass", images, labels, images, labels)
