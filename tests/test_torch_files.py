"""Damaged files of every kind featurechanger loads with torch give one clear error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from featurechanger.editing.localiser import load_localiser
from featurechanger.editing.refiner import load_refiner
from featurechanger.errors import DataError
from featurechanger.evaluation.classifier import load_classifier
from featurechanger.losses import vgg19_features
from featurechanger.models.checkpoint import load_checkpoint

LOADERS: dict[str, Callable[[Path], object]] = {
    "a featurechanger checkpoint": load_checkpoint,
    "an attribute classifier": load_classifier,
    "a featurechanger localiser": lambda path: load_localiser(path, "Eyeglasses"),
    "a featurechanger refiner": lambda path: load_refiner(path, "Eyeglasses", run_id=1),
    "VGG19 weights": lambda path: vgg19_features(str(path)),
}


@pytest.mark.parametrize("what", LOADERS)
@pytest.mark.parametrize("content", [b"garbage\n", b"PK\x03\x04" + b"\x00" * 64])
def test_a_damaged_file_is_named_with_what_it_should_be_and_no_unsafe_advice(
        tmp_path: Path, what: str, content: bytes) -> None:
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(content)
    with pytest.raises(DataError) as error:
        LOADERS[what](damaged)
    message = str(error.value)
    assert f"Cannot read {str(damaged)!r} as {what}" in message
    assert "weights_only" not in message and "\n" not in message
