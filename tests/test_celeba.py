"""CelebA readers: both layouts load from tiny fixtures, and every malformed input is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from featurechanger.attributes import ATTRIBUTES
from featurechanger.data.celeba import open_celeba
from featurechanger.errors import DataError

IDS = ["000001.jpg", "000002.jpg", "000003.jpg"]
LABELS = np.array([[(i + j) % 2 for j in range(40)] for i in range(3)], dtype=np.uint8)
PARTITIONS = [0, 1, 2]
LANDMARKS = [[69 + i, 109, 106, 113, 77, 142, 73, 152, 108, 154] for i in range(3)]
BBOXES = [[95, 71, 226, 313], [72, 94, 221, 306], [216, 59, 91, 126]]
IDENTITIES = [2880, 2937, 8692]


def write_original(root: Path, subfolders: bool = False) -> Path:
    """CelebA's own text files, whitespace-aligned as in the download."""
    anno, evaluation = (root / "Anno", root / "Eval") if subfolders else (root, root)
    images = root / ("Img/img_align_celeba" if subfolders else "img_align_celeba")
    for folder in (anno, evaluation, images):
        folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{i} " + " ".join(f"{1 if v else -1:2d}" for v in row) for i, row in zip(IDS, LABELS)]
    (anno / "list_attr_celeba.txt").write_text("3\n" + " ".join(ATTRIBUTES) + " \n" + "\n".join(rows) + "\n")
    (evaluation / "list_eval_partition.txt").write_text(
        "".join(f"{i} {p}\n" for i, p in zip(IDS, PARTITIONS)))
    (anno / "list_landmarks_align_celeba.txt").write_text(
        "3\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y "
        "rightmouth_x rightmouth_y\n"
        + "".join(f"{i} " + " ".join(f"{v:4d}" for v in row) + "\n" for i, row in zip(IDS, LANDMARKS)))
    (anno / "list_bbox_celeba.txt").write_text(
        "3\nimage_id x_1 y_1 width height\n"
        + "".join(f"{i}    " + " ".join(f"{v:4d}" for v in row) + "\n" for i, row in zip(IDS, BBOXES)))
    (anno / "identity_CelebA.txt").write_text(
        "".join(f"{i} {n}\n" for i, n in zip(IDS, IDENTITIES)))
    _write_images(images)
    return root


def write_kaggle(root: Path) -> Path:
    """The Kaggle mirror: CSVs with an image_id header, images one folder deeper."""
    images = root / "img_align_celeba" / "img_align_celeba"
    images.mkdir(parents=True)
    header = "image_id," + ",".join(ATTRIBUTES)
    rows = [f"{i}," + ",".join("1" if v else "-1" for v in row) for i, row in zip(IDS, LABELS)]
    (root / "list_attr_celeba.csv").write_text("\n".join([header, *rows]) + "\n")
    (root / "list_eval_partition.csv").write_text(
        "image_id,partition\n" + "".join(f"{i},{p}\n" for i, p in zip(IDS, PARTITIONS)))
    (root / "list_landmarks_align_celeba.csv").write_text(
        "image_id,lefteye_x,lefteye_y,righteye_x,righteye_y,nose_x,nose_y,leftmouth_x,"
        "leftmouth_y,rightmouth_x,rightmouth_y\n"
        + "".join(f"{i}," + ",".join(map(str, row)) + "\n" for i, row in zip(IDS, LANDMARKS)))
    (root / "list_bbox_celeba.csv").write_text(
        "image_id,x_1,y_1,width,height\n"
        + "".join(f"{i}," + ",".join(map(str, row)) + "\n" for i, row in zip(IDS, BBOXES)))
    _write_images(images)
    return root


def _write_images(folder: Path) -> None:
    for n, image_id in enumerate(IDS):
        Image.new("RGB", (178, 218), (40 * n, 90, 160)).save(folder / image_id, quality=90)


def _expect_complete(dataset, layout: str) -> None:
    assert dataset.layout == layout
    assert dataset.image_ids == IDS
    np.testing.assert_array_equal(dataset.labels, LABELS)
    assert dataset.labels.dtype == np.uint8
    np.testing.assert_array_equal(dataset.partitions, PARTITIONS)
    np.testing.assert_array_equal(dataset.landmarks, LANDMARKS)
    np.testing.assert_array_equal(dataset.bboxes, BBOXES)
    assert dataset.excluded == []


def test_kaggle_layout_loads(tmp_path: Path) -> None:
    dataset = open_celeba(write_kaggle(tmp_path))
    _expect_complete(dataset, "kaggle")
    assert dataset.identities is None  # the Kaggle mirror has no identity file
    assert dataset.source_path("000002.jpg") == "img_align_celeba/img_align_celeba/000002.jpg"


@pytest.mark.parametrize("subfolders", [False, True], ids=["flat", "Anno-Eval-Img"])
def test_original_layout_loads(tmp_path: Path, subfolders: bool) -> None:
    dataset = open_celeba(write_original(tmp_path, subfolders))
    _expect_complete(dataset, "original")
    np.testing.assert_array_equal(dataset.identities, IDENTITIES)


def test_both_layouts_of_one_dataset_share_a_fingerprint(tmp_path: Path) -> None:
    kaggle = open_celeba(write_kaggle(tmp_path / "k"))
    original = open_celeba(write_original(tmp_path / "o"))
    assert kaggle.fingerprint == original.fingerprint
    (tmp_path / "k" / "list_eval_partition.csv").write_text(
        "image_id,partition\n000001.jpg,0\n000002.jpg,0\n000003.jpg,2\n")
    assert open_celeba(tmp_path / "k").fingerprint != original.fingerprint


def test_missing_and_corrupt_images_do_not_stop_the_others(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path)
    (root / "img_align_celeba/img_align_celeba/000002.jpg").unlink()
    dataset = open_celeba(root)
    assert dataset.image_ids == ["000001.jpg", "000003.jpg"]
    np.testing.assert_array_equal(dataset.labels, LABELS[[0, 2]])
    np.testing.assert_array_equal(dataset.partitions, [0, 2])
    assert dataset.excluded == [
        ("000002.jpg", "missing file img_align_celeba/img_align_celeba/000002.jpg")]


def test_a_dangling_link_or_a_folder_in_place_of_an_image_is_missing(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path)
    images = root / "img_align_celeba/img_align_celeba"
    (images / "000002.jpg").unlink()
    (images / "000002.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (images / "000003.jpg").unlink()
    (images / "000003.jpg").mkdir()
    assert [image_id for image_id, _ in open_celeba(root).excluded] == ["000002.jpg",
                                                                         "000003.jpg"]


@pytest.mark.parametrize("layout", ["kaggle", "original"])
def test_annotation_files_may_start_with_a_byte_order_mark(tmp_path: Path, layout: str) -> None:
    root = write_kaggle(tmp_path) if layout == "kaggle" else write_original(tmp_path)
    for path in root.glob("list_*"):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    _expect_complete(open_celeba(root), layout)


def _replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def _move_down(folder: Path) -> None:
    """Put `folder` inside a new folder of the same name, as unzipping into it does."""
    folder.rename(folder.with_name("moving"))
    folder.mkdir()
    folder.with_name("moving").rename(folder / folder.name)


def _attribute_row(image_id: str, values: list[str], sep: str = " ") -> str:
    return sep.join([image_id, *values])


# (layout, how to break the fixture, text the error must contain)
BAD_INPUTS = {
    "attribute row too short (original)": (
        "original", lambda r: _replace_line(r / "list_attr_celeba.txt", 4,
                                            _attribute_row("000002.jpg", ["1"] * 39)),
        "list_attr_celeba.txt:4: expected 41 columns (image id + 40), found 40"),
    "attribute row too long (kaggle)": (
        "kaggle", lambda r: _replace_line(r / "list_attr_celeba.csv", 2,
                                          _attribute_row("000001.jpg", ["1"] * 41, ",")),
        "list_attr_celeba.csv:2: expected 41 columns (image id + 40), found 42"),
    "unknown attribute value": (
        "kaggle", lambda r: _replace_line(r / "list_attr_celeba.csv", 3,
                                          _attribute_row("000002.jpg", ["1"] * 5 + ["0"] + ["1"] * 34, ",")),
        "list_attr_celeba.csv:3: unknown value '0' for Bangs (expected 1 or -1)"),
    "misspelled attribute header": (
        "original", lambda r: _replace_line(r / "list_attr_celeba.txt", 2,
                                            " ".join(ATTRIBUTES).replace("Smiling", "Smile")),
        "list_attr_celeba.txt:2: column 32 of the header is 'Smile', expected 'Smiling'"),
    "kaggle attribute file without header": (
        "kaggle", lambda r: _replace_line(r / "list_attr_celeba.csv", 1,
                                          _attribute_row("000009.jpg", ["1"] * 40, ",")),
        "list_attr_celeba.csv:1: column 1 of the header is '000009.jpg', expected 'image_id'"),
    "count line disagrees": (
        "original", lambda r: _replace_line(r / "list_attr_celeba.txt", 1, "202599"),
        "list_attr_celeba.txt:1: the count line says 202599 images but the file has 3 rows"),
    "count line missing": (
        "original", lambda r: (r / "list_attr_celeba.txt").write_text(
            "\n".join((r / "list_attr_celeba.txt").read_text().splitlines()[1:]) + "\n"),
        "list_attr_celeba.txt:1: expected the image count on the first line, found '5_o_Clock_Shadow"),
    "partition of an unknown image": (
        "original", lambda r: _replace_line(r / "list_eval_partition.txt", 2, "000009.jpg 1"),
        "list_eval_partition.txt:2: image id '000009.jpg' is not in list_attr_celeba.txt"),
    "partition row missing": (
        "kaggle", lambda r: _replace_line(r / "list_eval_partition.csv", 4, ""),
        "list_eval_partition.csv: image id '000003.jpg' of list_attr_celeba.csv has no row"),
    "unknown partition": (
        "kaggle", lambda r: _replace_line(r / "list_eval_partition.csv", 3, "000002.jpg,3"),
        "list_eval_partition.csv:3: unknown value '3' (expected one of 0, 1, 2"),
    "landmark that is not a number": (
        "original", lambda r: _replace_line(r / "list_landmarks_align_celeba.txt", 3,
                                            "000001.jpg 69 109 106 113 77 x 73 152 108 154"),
        "list_landmarks_align_celeba.txt:3: expected integers"),
    "image listed twice": (
        "kaggle", lambda r: _replace_line(r / "list_attr_celeba.csv", 3,
                                          _attribute_row("000001.jpg", ["1"] * 40, ",")),
        "list_attr_celeba.csv:3: image id '000001.jpg' is listed twice (first on line 2)"),
    "no partition file": (
        "original", lambda r: (r / "list_eval_partition.txt").unlink(),
        "Missing 'list_eval_partition.txt'"),
    "no image folder": (
        "kaggle", lambda r: (r / "img_align_celeba").rename(r / "images"),
        "Missing image folder 'img_align_celeba/img_align_celeba'"),
    "images a folder too deep": (
        "original", lambda r: _move_down(r / "img_align_celeba"),
        "images belong in 'img_align_celeba' of"),
    "no listed image on disk": (
        "original", lambda r: [p.rename(p.with_name("x" + p.name))
                               for p in (r / "img_align_celeba").iterdir()],
        "None of the 3 images listed in list_attr_celeba.txt is in"),
    "no attribute file": (
        "kaggle", lambda r: (r / "list_attr_celeba.csv").unlink(),
        "No CelebA attribute file in"),
    "files of both layouts": (
        "kaggle", lambda r: (r / "list_attr_celeba.txt").write_text("0\n"),
        "holds both 'list_attr_celeba.csv' and 'list_attr_celeba.txt'"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_named_with_file_line_and_layouts(tmp_path: Path, case: str) -> None:
    layout, damage, expected = BAD_INPUTS[case]
    root = (write_kaggle if layout == "kaggle" else write_original)(tmp_path)
    damage(root)
    with pytest.raises(DataError) as error:
        open_celeba(root)
    assert expected in str(error.value)
    assert "Expected layouts: kaggle (img_align_celeba/img_align_celeba/*.jpg" in str(error.value)
    assert "original (img_align_celeba/*.jpg, list_attr_celeba.txt" in str(error.value)


def test_missing_dataset_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"Dataset folder '.*nowhere' does not exist\. Expected layouts"):
        open_celeba(tmp_path / "nowhere")
