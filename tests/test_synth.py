"""Synthetic faces: deterministic, CelebA-like labels, drawn features that follow the labels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from featurechanger.attributes import ATTRIBUTE_INDEX, ATTRIBUTES
from featurechanger.data.celeba import open_celeba
from featurechanger.data.faces import (HAIR_COLOURS, HAIR_RGB, STATS, Face, check_counterfactual,
                                       draw_face, finish, landmarks, place, render,
                                       with_attributes)
from featurechanger.data.synth import write_synthetic
from featurechanger.errors import ConfigError, DataError


def _column(labels: np.ndarray, name: str) -> np.ndarray:
    return labels[:, ATTRIBUTE_INDEX[name]].astype(bool)


@pytest.fixture(scope="module")
def sampled_labels() -> np.ndarray:
    """Labels of 20,000 faces (1,000 identities): enough for prevalences within about 1 %."""
    return np.stack([draw_face(7, index).labels for index in range(20_000)])


PERSON_LEVEL = {"Male", "Young", "Pale_Skin", "Bald", "Black_Hair", "Blond_Hair", "Brown_Hair",
                "Gray_Hair"}  # drawn once per identity of 20 images


def _tolerance(name: str, prevalence: float, faces: int) -> float:
    """Three standard errors (of identities for person-level attributes), plus 1 % slack."""
    samples = faces // 20 if name in PERSON_LEVEL else faces
    return 3 * math.sqrt(prevalence * (1 - prevalence) / samples) + 0.01


def test_prevalences_follow_celeba(sampled_labels: np.ndarray) -> None:
    shares = sampled_labels.mean(axis=0)
    expected = {name: stats.prevalence for name, stats in STATS.items()}
    expected |= {"Male": 0.417, "Young": 0.774, "No_Beard": 0.835, "Goatee": 0.063,
                 "Mouth_Slightly_Open": 0.483, "High_Cheekbones": 0.455, "Heavy_Makeup": 0.384}
    assert len(expected) == 40
    for name, prevalence in expected.items():
        tolerance = _tolerance(name, prevalence, len(sampled_labels))
        assert abs(shares[ATTRIBUTE_INDEX[name]] - prevalence) < tolerance, name


def test_correlations_that_make_editing_hard(sampled_labels: np.ndarray) -> None:
    labels = sampled_labels
    male, glasses = _column(labels, "Male"), _column(labels, "Eyeglasses")
    assert abs(male[glasses].mean() - 0.78) < 0.05
    assert _column(labels, "Young")[glasses].mean() < 0.55 < _column(labels, "Young").mean()
    assert not (_column(labels, "Mustache") & ~male).any()
    assert not (_column(labels, "Goatee") & ~male).any()
    assert male[_column(labels, "Blond_Hair")].mean() < 0.12
    smiling, open_mouth = _column(labels, "Smiling"), _column(labels, "Mouth_Slightly_Open")
    assert open_mouth[smiling].mean() > 0.65 > 0.3 > open_mouth[~smiling].mean()
    beard = _column(labels, "Goatee") | _column(labels, "Mustache")
    assert not (beard & _column(labels, "No_Beard")).any()
    colours = labels[:, [ATTRIBUTE_INDEX[c] for c in
                         ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Bald")]]
    assert colours.sum(axis=1).max() == 1  # one hair colour at most, and none when bald


def test_same_seed_same_files_with_any_worker_count(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "one", 70, seed=3, workers=1, progress=False)
    write_synthetic(tmp_path / "two", 70, seed=3, workers=2, progress=False)
    write_synthetic(tmp_path / "other", 70, seed=4, workers=1, progress=False)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*")
                   if p.is_file())
    assert len(files) == 70 + 5  # images, 4 annotation files, the synthetic.json marker
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    image = Path("img_align_celeba/img_align_celeba/000001.jpg")
    assert (tmp_path / "one" / image).read_bytes() != (tmp_path / "other" / image).read_bytes()


def test_written_annotations_are_the_drawn_faces(tmp_path: Path) -> None:
    write_synthetic(tmp_path, 50, seed=2, layout="original", workers=1, progress=False)
    dataset = open_celeba(tmp_path)
    faces = [draw_face(2, index) for index in range(50)]
    assert dataset.layout == "original" and len(dataset) == 50
    np.testing.assert_array_equal(dataset.labels, [face.labels for face in faces])
    np.testing.assert_array_equal(dataset.landmarks, [landmarks(face) for face in faces])
    np.testing.assert_array_equal(dataset.identities, [face.identity for face in faces])
    np.testing.assert_array_equal(np.bincount(dataset.partitions), [40, 5, 5])


def test_landmarks_sit_on_the_drawn_eyes_and_mouth() -> None:
    for index in range(40):
        face = with_attributes(draw_face(5, index), {"Eyeglasses": 0, "Blurry": 0})
        pixels = np.asarray(render(face), dtype=int)
        marks = landmarks(face).reshape(5, 2)
        for x, y in marks[:2]:  # the pupils are near-black
            assert pixels[y, x].sum() < 3 * 90, (index, x, y)
        lips = pixels[marks[3, 1], marks[3, 0] + 2]
        skin = pixels[marks[2, 1] - 12, marks[2, 0] + 10]
        assert np.abs(lips - skin).sum() > 30, index  # the mouth corner is not bare skin


# Where each attribute is drawn, in face coordinates (origin between the eyes, y down, unscaled).
REGIONS = {
    "Eyeglasses": (-56, 56, -18, 16),
    "Smiling": (-26, 26, 24, 80),
    "Mouth_Slightly_Open": (-24, 24, 30, 64),
    "Wearing_Lipstick": (-24, 24, 30, 64),
    "Mustache": (-26, 26, 24, 46),
    "Goatee": (-16, 16, 44, 84),
    "Bangs": (-50, 50, -42, -8),
    "Wearing_Hat": (-82, 82, -80, -18),
}


def _to_photo(face: Face, x: float, y: float) -> tuple[int, int]:
    """(row, column) of the photo pixel at face coordinates (x, y)."""
    column, row = place(face.look, np.array([[x, y]]))[0]
    return int(row), int(column)


def test_hair_and_skin_colours_follow_the_labels() -> None:
    checked = 0
    for index in range(0, 4000, 20):  # one face per identity
        face = draw_face(17, index)
        if face.has("Wearing_Hat") or face.has("Blurry"):
            continue
        pixels = np.asarray(render(face), dtype=int)
        cheek = pixels[_to_photo(face, 30, 15)]
        assert (cheek[2] > 195) == face.has("Pale_Skin"), index
        if face.has("Bald"):
            continue
        hair = pixels[_to_photo(face, 0, -50)]
        nearest = min(HAIR_RGB, key=lambda name: np.abs(hair - HAIR_RGB[name]).sum())
        labelled = next((c for c in HAIR_COLOURS if face.has(c)), None)
        assert nearest == labelled, (index, hair, labelled)
        checked += 1
    assert checked > 150


def _to_face_coordinates(face: Face, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    turn = math.radians(face.look.angle)
    offset = np.stack([xs + 0.5 - face.look.centre[0], ys + 0.5 - face.look.centre[1]], axis=1)
    inverse = np.array([[math.cos(turn), math.sin(turn)], [-math.sin(turn), math.cos(turn)]])
    return offset @ inverse.T / face.look.scale


@pytest.mark.parametrize("attribute", list(REGIONS))
def test_twins_differ_only_where_the_attribute_is_drawn(attribute: str) -> None:
    changed = 0
    for index in range(12):
        face = with_attributes(draw_face(11, index), {"Blurry": 0, "Wearing_Hat": 0})
        with_it = finish(face, render(with_attributes(face, {attribute: 1})))
        without = finish(face, render(with_attributes(face, {attribute: 0})))
        ys, xs = np.nonzero((with_it != without).any(axis=2))
        points = _to_face_coordinates(face, ys, xs)
        left, right, top, bottom = REGIONS[attribute]
        inside = ((points[:, 0] >= left) & (points[:, 0] <= right)
                  & (points[:, 1] >= top) & (points[:, 1] <= bottom))
        assert inside.all(), (index, points[~inside][:5])
        assert len(ys) > 60, index  # visibly drawn: at least a few pixels at 32x32
        changed += len(ys)
    assert changed > 12 * 100


@pytest.mark.parametrize("attribute", ["Male", "Young", "Pale_Skin", "Blond_Hair", "Gray_Hair",
                                       "Black_Hair", "Brown_Hair", "Bald", "Blurry"])
def test_whole_face_attributes_change_the_head_and_not_the_background(attribute: str) -> None:
    for index in range(6):
        face = with_attributes(draw_face(13, index), {"Blurry": 0})
        with_it = finish(face, render(with_attributes(face, {attribute: 1})))
        without = finish(face, render(with_attributes(face, {attribute: 0})))
        ys, xs = np.nonzero((with_it != without).any(axis=2))
        assert len(ys) > 300, index
        if attribute != "Blurry":  # blur softens the whole picture
            points = _to_face_coordinates(face, ys, xs)  # long hair reaches the shoulders
            assert (np.abs(points[:, 0]) < 80).all() and (points[:, 1] > -80).all(), index
            assert (points[:, 1] < 130).all(), index  # the neck ends 125 below the eyes


def test_counterfactual_dataset_renders_the_same_faces(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "real", 200, seed=1, workers=1, progress=False)
    write_synthetic(tmp_path / "twin", 200, seed=1, counterfactual={"eyeglasses": 0},
                    workers=1, progress=False)
    real, twin = open_celeba(tmp_path / "real"), open_celeba(tmp_path / "twin")
    glasses = _column(real.labels, "Eyeglasses")
    assert 3 <= glasses.sum() <= 40 and not _column(twin.labels, "Eyeglasses").any()
    others = [i for i, name in enumerate(ATTRIBUTES) if name != "Eyeglasses"]
    np.testing.assert_array_equal(real.labels[:, others], twin.labels[:, others])
    for image_id, wears in zip(real.image_ids, glasses):
        same = ((real.image_dir / image_id).read_bytes() == (twin.image_dir / image_id).read_bytes())
        assert same != wears, image_id


def test_setting_a_hair_colour_replaces_the_old_one() -> None:
    face = next(f for f in (draw_face(0, i * 20) for i in range(50)) if f.has("Black_Hair"))
    blond = with_attributes(face, {"Blond_Hair": 1})
    assert blond.has("Blond_Hair") and not blond.has("Black_Hair")
    shaved = with_attributes(next(f for f in (draw_face(0, i) for i in range(500))
                                  if f.has("Goatee") and not f.has("Mustache")), {"Goatee": 0})
    assert shaved.has("No_Beard") != (shaved.look.full_beard < 0.253)


@pytest.mark.parametrize("changes, message", [
    ({"Attractive": 0}, "Cannot set 'Attractive' in a counterfactual: only drawn attributes"),
    ({"No_Beard": 1}, "No_Beard follows Goatee and Mustache"),
    ({"Eyeglasses": 2}, "Counterfactual value for 'Eyeglasses' must be 0 or 1, not 2"),
    ({"Eyeglass": 0}, "Unknown attribute 'Eyeglass'. Did you mean 'Eyeglasses'?"),
])
def test_bad_counterfactual_is_named(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("?", r"\?")):
        check_counterfactual(changes)


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="is not empty and was not written by `data synth`"):
        write_synthetic(tmp_path, 3, workers=1, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    faces = write_synthetic(tmp_path / "faces", 3, workers=1, progress=False)
    write_synthetic(faces, 3, workers=1, progress=False)  # drawn the same way: drawn again
    with pytest.raises(DataError, match="holds another synthetic dataset \\(3 faces, seed 0, "
                                        "kaggle layout\\).*--replace"):
        write_synthetic(faces, 2, layout="original", workers=1, progress=False)
    assert len(open_celeba(faces)) == 3
    write_synthetic(faces, 2, layout="original", workers=1, progress=False, replace=True)
    assert len(open_celeba(faces)) == 2
    (faces / "shards").mkdir()  # e.g. a shard set built inside the dataset
    with pytest.raises(DataError, match="holds 'shards', which `data synth` did not write"):
        write_synthetic(faces, 2, layout="original", workers=1, progress=False, replace=True)
    assert (faces / "shards").is_dir()


@pytest.mark.parametrize("kwargs, message", [
    ({"count": 0}, "Count must be a positive number of images, not 0"),
    ({"count": 3, "layout": "zip"}, "Unknown layout 'zip'. Valid values are {kaggle, original}"),
    ({"count": 3, "workers": 0}, "Workers must be at least 1, not 0"),
])
def test_bad_arguments_are_named(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        write_synthetic(tmp_path / "x", progress=False, **kwargs)
