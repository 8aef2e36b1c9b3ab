"""Pictures: full-resolution composition, the feature grid and GIFs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from featurechanger.errors import ConfigError
from featurechanger.render.compose import compose
from featurechanger.render.gif import write_gif
from featurechanger.render.images import resize
from featurechanger.render.sheet import feature_grid, save_sheet

BOX = (0, 20, 178, 198)  # CelebA's centre square


def _reconstruction() -> np.ndarray:
    return np.random.default_rng(1).random((32, 32, 3)).astype(np.float32)


@pytest.fixture
def photo() -> np.ndarray:
    """A photo the model reconstructs well: its crop is the reconstruction plus fine detail."""
    rng = np.random.default_rng(0)
    photo = rng.random((218, 178, 3)) * 255
    photo[20:198] = resize(_reconstruction(), 178, 178) * 255 + rng.normal(0, 8, (178, 178, 3))
    return np.clip(photo, 0, 255).astype(np.uint8)


def _decodes(change: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A reconstruction, and an edit that changes only its 8x8 top-left corner."""
    reconstruction = _reconstruction()
    edited = reconstruction.copy()
    edited[:8, :8] = np.clip(edited[:8, :8] + change, 0, 1)
    return reconstruction, edited


def test_residual_equals_the_original_where_the_edit_changes_nothing(photo: np.ndarray) -> None:
    reconstruction, edited = _decodes()
    untouched = compose(photo, BOX, reconstruction, reconstruction, "residual")
    np.testing.assert_array_equal(untouched, photo)
    composed = compose(photo, BOX, reconstruction, edited, "residual")
    far = (slice(20 + 100, 198), slice(100, 178))  # far from the changed corner
    np.testing.assert_array_equal(composed[far], photo[far])
    assert np.abs(composed[20:40, :20].astype(int) - photo[20:40, :20]).mean() > 20


def test_blend_keeps_the_photo_where_nothing_changes_and_takes_large_changes(
        photo: np.ndarray) -> None:
    reconstruction, edited = _decodes()
    np.testing.assert_array_equal(compose(photo, BOX, reconstruction, reconstruction, "blend"),
                                  photo)
    composed = compose(photo, BOX, reconstruction, edited, "blend")
    decoded = np.clip(resize(edited, 178, 178) * 255 + 0.5, 0, 255)
    inside = (slice(20 + 5, 20 + 35), slice(5, 35))  # well inside the changed corner
    decoded_inside = decoded[5:35, 5:35]
    assert np.abs(composed[inside] - decoded_inside).mean() < 8  # the model's pixels
    far = (slice(20 + 100, 198), slice(100, 178))
    np.testing.assert_array_equal(composed[far], photo[far])


def test_the_blend_keeps_faint_changes_when_asked(photo: np.ndarray) -> None:
    """A change below the model's reconstruction error (8 levels of noise, a change of 5): the
    blend keeps the photo there, unless asked to keep faint changes, which it then adds as
    residual does; a large change is the model's pixels either way."""
    inside = (slice(20 + 5, 20 + 35), slice(5, 35))
    reconstruction, faint = _decodes(change=0.02)
    kept = compose(photo, BOX, reconstruction, faint, "blend").astype(float)
    added = compose(photo, BOX, reconstruction, faint, "blend", faint_changes=True).astype(float)
    residual = compose(photo, BOX, reconstruction, faint, "residual").astype(float)
    assert np.abs(kept[inside] - photo[inside]).mean() < 1.5
    assert np.abs(added[inside] - residual[inside]).mean() < 1.5
    assert (added[inside] - photo[inside]).mean() > 3.5
    _, large = _decodes()
    composed = compose(photo, BOX, reconstruction, large, "blend", faint_changes=True)
    decoded = np.clip(resize(large, 178, 178) * 255 + 0.5, 0, 255)
    assert np.abs(composed[inside] - decoded[5:35, 5:35]).mean() < 8


def test_decoded_pastes_the_model_image_into_the_crop_box_only(photo: np.ndarray) -> None:
    reconstruction, edited = _decodes()
    composed = compose(photo, BOX, reconstruction, edited, "decoded")
    np.testing.assert_array_equal(composed[:20], photo[:20])
    np.testing.assert_array_equal(composed[198:], photo[198:])
    expected = np.clip(resize(edited, 178, 178), 0, 1) * 255
    assert np.abs(composed[20:198].astype(float) - expected).max() <= 1


def test_unknown_output_mode_lists_the_valid_ones(photo: np.ndarray) -> None:
    reconstruction, edited = _decodes()
    with pytest.raises(ConfigError, match="blend, residual, decoded"):
        compose(photo, BOX, reconstruction, edited, "sharp")


def test_feature_grid_has_a_cell_per_image_and_column(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    edits = {"+Smiling": images, "+Blond_Hair": images, "-Eyeglasses": images}
    sheet = feature_grid(images, images, edits, ["000001.jpg", "000002.jpg", "000003.jpg"])
    path = save_sheet(sheet, tmp_path / "grid.png")
    width, height = Image.open(path).size
    columns, rows = 2 + len(edits), 3
    assert width == 90 + columns * (96 + 2) + 2 and height == 22 + rows * (96 + 2) + 2


def test_gif_has_every_frame_enlarged_and_loops(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).random((7, 32, 32, 3)).astype(np.float32)
    path = write_gif(frames, tmp_path / "lerp.gif", size=128)
    gif = Image.open(path)
    assert gif.n_frames == 7 and gif.size == (128, 128) and gif.info["loop"] == 0
    assert gif.info["duration"] == 100
    assert not list(tmp_path.glob(".*tmp*"))


def test_blend_removes_a_sharp_object_the_model_draws_blurred_and_keeps_detail_beside_it() -> None:
    """A 2 px dark frame on skin, and a sharp dark dot (an eye) away from it: the model sees
    both blurred at 32 px; its edit removes the frame. The blend must remove the frame far
    better than the residual does, and leave the eye as sharp as it was."""
    skin = np.full((178, 178, 3), 0.7, dtype=np.float32)
    truth = skin.copy()
    truth[60:66, 100:106] = 0.1  # the eye
    photo = truth.copy()
    photo[80:82, 40:140] = 0.05  # the frame
    reconstruction, edited = resize(photo, 32, 32), resize(truth, 32, 32)
    as_photo = np.zeros((218, 178, 3), dtype=np.uint8)
    as_photo[20:198] = (photo * 255).round()
    frame = (slice(20 + 80, 20 + 82), slice(50, 130))
    eye = (slice(20 + 60, 20 + 66), slice(100, 106))
    blend = compose(as_photo, BOX, reconstruction, edited, "blend").astype(float) / 255
    residual = compose(as_photo, BOX, reconstruction, edited, "residual").astype(float) / 255
    ghost_blend = np.abs(blend[frame] - 0.7).mean()
    ghost_residual = np.abs(residual[frame] - 0.7).mean()
    assert ghost_blend < ghost_residual / 3
    np.testing.assert_allclose(blend[eye], 0.1, atol=0.025)  # the residual adds the blur here


def test_a_removal_confines_the_blend_to_the_removed_objects_band(photo: np.ndarray) -> None:
    """Given the removed object's band and its fill, the blend changes nothing outside the
    band and takes the fill inside it."""
    reconstruction, edited = _decodes()
    edited[:, 16:] = np.clip(edited[:, 16:] - 0.4, 0, 1)  # a side effect on the right half

    def left_half(crop: np.ndarray, decoded: np.ndarray,
                  model_pixel: float) -> tuple[np.ndarray, np.ndarray]:
        band = np.zeros(crop.shape[:2] + (1,), dtype=np.float32)
        band[:, : crop.shape[1] // 2] = 1
        return band, 1 - decoded  # a fill that differs from the decoded edit everywhere

    composed = compose(photo, BOX, reconstruction, edited, "blend", left_half)
    np.testing.assert_array_equal(composed[:, 89:], photo[:, 89:])
    unbanded = compose(photo, BOX, reconstruction, edited, "blend")
    assert np.abs(unbanded[20:198, 100:].astype(int) - photo[20:198, 100:]).mean() > 20
    fill = np.clip((1 - resize(edited, 178, 178)) * 255 + 0.5, 0, 255)
    inside = (slice(20 + 5, 20 + 35), slice(5, 35))
    assert np.abs(composed[inside] - fill[5:35, 5:35]).mean() < 1

def test_two_writers_of_one_file_write_under_names_of_their_own(tmp_path: Path) -> None:
    """Two jobs editing into one folder wrote the same temporary file, and one rename failed."""
    from featurechanger.render.images import write_atomically

    seen: list[Path] = []

    def nested(temporary: Path) -> None:  # the second writer starts before the first renames
        seen.append(temporary)
        temporary.write_text("first")
        write_atomically(tmp_path / "x.png", lambda other: (seen.append(other),
                                                            other.write_text("second")))

    write_atomically(tmp_path / "x.png", nested)
    assert seen[0] != seen[1] and (tmp_path / "x.png").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]
