"""Reading and writing CelebA-format datasets in both public layouts, with integrity checks.

Kaggle layout: ``img_align_celeba/img_align_celeba/*.jpg`` and CSVs with a header
(``list_attr_celeba.csv`` with +-1 values, ``list_eval_partition.csv``, ``list_bbox_celeba.csv``,
``list_landmarks_align_celeba.csv``).
Original layout: ``img_align_celeba/*.jpg`` and whitespace-aligned text files
(``list_attr_celeba.txt`` = count line, the 40 names, rows; ``list_eval_partition.txt`` without a
header; ``list_bbox_celeba.txt`` and ``list_landmarks_align_celeba.txt`` = count line, header,
rows; ``identity_CelebA.txt`` without a header), flat or in the ``Anno/``, ``Eval/`` and
``Img/`` folders of the original download.

Every annotation file is checked before use: a malformed one raises DataError naming the file,
the line and the expected layouts. A listed image that is not on disk is excluded and reported;
it never stops the others from loading.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featurechanger.attributes import ATTRIBUTES
from featurechanger.errors import ConfigError, DataError

LANDMARK_COLUMNS: tuple[str, ...] = (
    "lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y",
    "leftmouth_x", "leftmouth_y", "rightmouth_x", "rightmouth_y",
)
BBOX_COLUMNS: tuple[str, ...] = ("x_1", "y_1", "width", "height")


@dataclass(frozen=True)
class Layout:
    """Where one public layout keeps its files, relative to the dataset root."""

    name: str
    image_dirs: tuple[str, ...]  # candidates, first existing wins
    attributes: str
    partitions: str
    bboxes: str
    landmarks: str
    identities: str | None
    annotation_dirs: tuple[str, ...]  # folders the annotation files may sit in

    def describe(self) -> str:
        return f"{self.name} ({self.image_dirs[0]}/*.jpg, {self.attributes}, {self.partitions})"


KAGGLE = Layout(
    name="kaggle",
    image_dirs=("img_align_celeba/img_align_celeba", "img_align_celeba"),
    attributes="list_attr_celeba.csv", partitions="list_eval_partition.csv",
    bboxes="list_bbox_celeba.csv", landmarks="list_landmarks_align_celeba.csv",
    identities=None, annotation_dirs=(".",),
)
ORIGINAL = Layout(
    name="original",
    image_dirs=("img_align_celeba", "Img/img_align_celeba"),
    attributes="list_attr_celeba.txt", partitions="list_eval_partition.txt",
    bboxes="list_bbox_celeba.txt", landmarks="list_landmarks_align_celeba.txt",
    identities="identity_CelebA.txt", annotation_dirs=(".", "Anno", "Eval"),
)
LAYOUTS: dict[str, Layout] = {KAGGLE.name: KAGGLE, ORIGINAL.name: ORIGINAL}
EXPECTED_LAYOUTS = "Expected layouts: " + "; or ".join(l.describe() for l in LAYOUTS.values()) + "."


@dataclass
class CelebA:
    """A CelebA-format dataset as read from disk; only images present on disk are listed.

    labels: (N, 40) uint8 0/1 in ATTRIBUTES order; partitions: (N,) uint8 0 train, 1 val,
    2 test; landmarks: (N, 10) int32 in LANDMARK_COLUMNS order; bboxes: (N, 4) int32
    (x_1, y_1, width, height); identities: (N,) int32. Optional arrays are None when their file
    is absent. excluded: (image_id, reason) for listed images that could not be used.
    """

    root: Path
    layout: str
    image_dir: Path
    image_ids: list[str]
    labels: np.ndarray
    partitions: np.ndarray
    landmarks: np.ndarray | None
    bboxes: np.ndarray | None
    identities: np.ndarray | None
    fingerprint: str
    excluded: list[tuple[str, str]]

    def __len__(self) -> int:
        return len(self.image_ids)

    def source_path(self, image_id: str) -> str:
        """The image's path relative to the dataset root, as stored in shards."""
        return f"{self.image_dir.relative_to(self.root).as_posix()}/{image_id}"


def detect_layout(root: Path) -> Layout:
    """The layout whose attribute file is in `root`; errors name the folder and both layouts."""
    if not root.is_dir():
        raise DataError(f"Dataset folder {str(root)!r} does not exist. {EXPECTED_LAYOUTS}")
    found = [layout for layout in LAYOUTS.values() if _find_file(root, layout, layout.attributes)]
    if not found:
        raise DataError(f"No CelebA attribute file in {str(root)!r}. {EXPECTED_LAYOUTS}")
    if len(found) > 1:
        raise DataError(
            f"{str(root)!r} holds both {KAGGLE.attributes!r} and {ORIGINAL.attributes!r}; keep "
            f"the files of one layout only. {EXPECTED_LAYOUTS}"
        )
    return found[0]


def open_celeba(root: Path | str) -> CelebA:
    """Read and check a CelebA-format dataset folder in either layout."""
    root = Path(root).absolute()
    layout = detect_layout(root)
    attributes_path = _require_file(root, layout, layout.attributes)
    image_ids, labels = _read_attributes(attributes_path, layout)
    order = {image_id: position for position, image_id in enumerate(image_ids)}
    partitions = _read_aligned(root, layout, layout.partitions, order, attributes_path,
                               required=True, allowed=(0, 1, 2))[:, 0].astype(np.uint8)
    landmarks = _read_aligned(root, layout, layout.landmarks, order, attributes_path)
    bboxes = _read_aligned(root, layout, layout.bboxes, order, attributes_path)
    identities = (_read_aligned(root, layout, layout.identities, order, attributes_path)
                  if layout.identities else None)
    fingerprint = dataset_fingerprint(image_ids, labels, partitions)

    image_dir = _image_dir(root, layout)
    present = _present_mask(image_dir, image_ids, attributes_path)
    prefix = image_dir.relative_to(root).as_posix()
    excluded = [(image_id, f"missing file {prefix}/{image_id}")
                for image_id, ok in zip(image_ids, present) if not ok]

    def keep(array: np.ndarray | None) -> np.ndarray | None:
        return None if array is None else np.ascontiguousarray(array[present])

    return CelebA(
        root=root, layout=layout.name, image_dir=image_dir,
        image_ids=[image_id for image_id, ok in zip(image_ids, present) if ok],
        labels=keep(labels), partitions=keep(partitions),
        landmarks=keep(landmarks), bboxes=keep(bboxes),
        identities=None if identities is None else keep(identities[:, 0]),
        fingerprint=fingerprint, excluded=excluded,
    )


def dataset_fingerprint(image_ids: Sequence[str], labels: np.ndarray,
                        partitions: np.ndarray) -> str:
    """SHA-256 of the ids, labels and partitions: the same for both layouts of one dataset."""
    digest = hashlib.sha256()
    digest.update("\n".join(image_ids).encode())
    digest.update(np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    digest.update(np.ascontiguousarray(partitions, dtype=np.uint8).tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Reading


def _find_file(root: Path, layout: Layout, name: str) -> Path | None:
    for folder in layout.annotation_dirs:
        candidate = root / folder / name
        if candidate.is_file():
            return candidate
    return None


def _require_file(root: Path, layout: Layout, name: str) -> Path:
    path = _find_file(root, layout, name)
    if path is None:
        raise DataError(
            f"Missing {name!r} in {str(root)!r} (detected the {layout.name} layout from its "
            f"attribute file). {EXPECTED_LAYOUTS}"
        )
    return path


def _image_dir(root: Path, layout: Layout) -> Path:
    for candidate in layout.image_dirs:
        if (root / candidate).is_dir() and not (root / candidate / "img_align_celeba").is_dir():
            return root / candidate
    nested = next((candidate for candidate in layout.image_dirs
                   if (root / candidate / "img_align_celeba").is_dir()), None)
    if nested is not None:  # e.g. an archive unzipped into a folder of its own name
        raise DataError(
            f"The {layout.name} layout's images belong in {nested!r} of {str(root)!r}, which "
            f"holds another 'img_align_celeba' folder instead; move that folder's images up "
            f"one level. {EXPECTED_LAYOUTS}")
    raise DataError(
        f"Missing image folder {layout.image_dirs[0]!r} in {str(root)!r}. {EXPECTED_LAYOUTS}"
    )


def _fail(path: Path, line: int, problem: str) -> DataError:
    return DataError(f"{path}:{line}: {problem}. {EXPECTED_LAYOUTS}")


def _rows(path: Path, layout: Layout, columns: Sequence[str], *, count_line: bool,
          header: bool) -> tuple[list[str], list[list[str]], list[int]]:
    """Split a table file into ids and value tokens, checking its header and column count.

    Returns (ids, rows, line number of each row). Kaggle files are CSVs with an ``image_id``
    header; original files are whitespace-separated with an optional count line.
    """
    lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()  # BOM or not
    kaggle = layout is KAGGLE
    position = 0
    declared = None
    if not kaggle and count_line:
        if not lines or not lines[0].strip().isdigit():
            found = lines[0].strip() if lines else "an empty file"
            raise _fail(path, 1, f"expected the image count on the first line, found {found!r}")
        declared = int(lines[0])
        position = 1
    if kaggle or header:
        expected = (["image_id"] if kaggle else []) + list(columns)
        found = _split(lines[position], kaggle) if position < len(lines) else []
        if not kaggle and found and found[0] == "image_id":
            expected = ["image_id"] + list(columns)
        if found != expected:
            raise _fail(path, position + 1, _header_problem(expected, found))
        position += 1
    width = len(columns) + 1
    ids, rows, numbers = [], [], []
    for number, line in enumerate(lines[position:], start=position + 1):
        tokens = _split(line, kaggle)
        if not tokens:
            continue
        if len(tokens) != width:
            raise _fail(path, number, f"expected {width} columns (image id + {len(columns)}), "
                                      f"found {len(tokens)}")
        ids.append(tokens[0])
        rows.append(tokens[1:])
        numbers.append(number)
    if not ids:
        raise _fail(path, position + 1, "no rows")
    if declared is not None and declared != len(ids):
        raise _fail(path, 1, f"the count line says {declared} images but the file has "
                             f"{len(ids)} rows")
    return ids, rows, numbers


def _split(line: str, kaggle: bool) -> list[str]:
    if kaggle:
        return line.strip().split(",") if line.strip() else []
    return line.split()


def _header_problem(expected: Sequence[str], found: Sequence[str]) -> str:
    for position, (want, got) in enumerate(zip(expected, found), start=1):
        if want != got:
            return f"column {position} of the header is {got!r}, expected {want!r}"
    return (f"the header has {len(found)} columns, expected {len(expected)} "
            f"({', '.join(expected[:3])}, ...)")


def _read_attributes(path: Path, layout: Layout) -> tuple[list[str], np.ndarray]:
    """Image ids and (N, 40) uint8 0/1 labels; ids must be unique and values +-1."""
    ids, rows, numbers = _rows(path, layout, ATTRIBUTES, count_line=True, header=True)
    values = np.array(rows)
    bad = ~np.isin(values, ("1", "-1"))
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise _fail(path, numbers[row], f"unknown value {str(values[row, column])!r} for "
                                        f"{ATTRIBUTES[column]} (expected 1 or -1)")
    first_line: dict[str, int] = {}
    for image_id, number in zip(ids, numbers):
        if image_id in first_line:
            raise _fail(path, number, f"image id {image_id!r} is listed twice (first on line "
                                      f"{first_line[image_id]})")
        first_line[image_id] = number
    return ids, (values == "1").astype(np.uint8)


_TABLES: dict[str, tuple[tuple[str, ...], bool, bool]] = {
    # file key -> (value columns, has a count line, has a header) in the original layout
    "partitions": (("partition",), False, False),
    "landmarks": (LANDMARK_COLUMNS, True, True),
    "bboxes": (BBOX_COLUMNS, True, True),
    "identities": (("identity",), False, False),
}


def _read_aligned(root: Path, layout: Layout, name: str, order: dict[str, int],
                  attributes_path: Path, required: bool = False,
                  allowed: tuple[int, ...] | None = None) -> np.ndarray | None:
    """Read an integer table and put its rows in the attribute file's order.

    Its ids must be exactly the attribute file's; the error names the first that differs.
    `allowed` lists the only values a single-column table may hold (partitions: 0, 1, 2).
    """
    path = _require_file(root, layout, name) if required else _find_file(root, layout, name)
    if path is None:
        return None
    key = next(k for k in _TABLES if getattr(layout, k) == name)
    columns, count_line, header = _TABLES[key]
    ids, rows, numbers = _rows(path, layout, columns, count_line=count_line, header=header)
    positions = np.array([order.get(image_id, -1) for image_id in ids])
    if (positions < 0).any():
        row = int(np.argmax(positions < 0))
        raise _fail(path, numbers[row], f"image id {ids[row]!r} is not in {attributes_path.name}")
    repeated = np.flatnonzero(np.bincount(positions, minlength=len(order)) > 1)
    if len(repeated):
        row = int(np.flatnonzero(positions == repeated[0])[1])
        raise _fail(path, numbers[row], f"image id {ids[row]!r} is listed twice")
    in_file = _integers(path, rows, numbers)
    if allowed is not None and not np.isin(in_file[:, 0], allowed).all():
        row = int(np.argmax(~np.isin(in_file[:, 0], allowed)))
        raise _fail(path, numbers[row], f"unknown value {rows[row][0]!r} (expected one of "
                                        f"{', '.join(map(str, allowed))}: 0 train, 1 val, 2 test)")
    if len(ids) < len(order):
        seen = np.zeros(len(order), dtype=bool)
        seen[positions] = True
        missing = next(image_id for image_id, position in order.items() if not seen[position])
        raise DataError(f"{path}: image id {missing!r} of {attributes_path.name} has no row. "
                        f"{EXPECTED_LAYOUTS}")
    values = np.empty((len(order), len(columns)), dtype=np.int32)
    values[positions] = in_file
    return values


def _integers(path: Path, rows: list[list[str]], numbers: list[int]) -> np.ndarray:
    """The table's values as int32; the error names the first row that is not all integers."""
    try:
        return np.array(rows).astype(np.int32)
    except ValueError:
        for tokens, number in zip(rows, numbers):
            if not all(token.lstrip("-").isdigit() for token in tokens):
                raise _fail(path, number,
                            f"expected integers, found {' '.join(tokens)!r}") from None
        raise


def _present_mask(image_dir: Path, image_ids: list[str], attributes_path: Path) -> np.ndarray:
    with os.scandir(image_dir) as entries:
        on_disk = {entry.name for entry in entries if entry.is_file()}  # not a dangling link
    present = np.array([image_id in on_disk for image_id in image_ids], dtype=bool)
    if not present.any():
        raise DataError(
            f"None of the {len(image_ids)} images listed in {attributes_path.name} is in "
            f"{str(image_dir)!r} (the first listed is {image_ids[0]!r}). {EXPECTED_LAYOUTS}"
        )
    return present


# ---------------------------------------------------------------------------------------------
# Writing (the synthetic generator uses this; the format is the one the readers check)


def write_annotations(root: Path, layout_name: str, image_ids: Sequence[str], labels: np.ndarray,
                      partitions: np.ndarray, landmarks: np.ndarray | None = None,
                      bboxes: np.ndarray | None = None,
                      identities: np.ndarray | None = None) -> None:
    """Write the annotation files of `layout_name` into `root`, as CelebA's own look."""
    layout = layout_by_name(layout_name)
    count = len(image_ids)
    ids_column = [[image_id] for image_id in image_ids]
    signs = np.where(labels > 0, "1", "-1")
    tables: list[tuple[str, Sequence[str] | None, list[list[str]], bool]] = [
        # (file, header columns, rows, original-layout count line)
        (layout.attributes, ATTRIBUTES, [i + list(s) for i, s in zip(ids_column, signs)], True),
        (layout.partitions, ("partition",) if layout is KAGGLE else None,
         [i + [str(p)] for i, p in zip(ids_column, partitions)], False),
    ]
    if landmarks is not None:
        tables.append((layout.landmarks, LANDMARK_COLUMNS,
                       [i + [str(v) for v in row] for i, row in zip(ids_column, landmarks)], True))
    if bboxes is not None:
        tables.append((layout.bboxes, ("image_id",) + BBOX_COLUMNS if layout is ORIGINAL
                       else BBOX_COLUMNS,
                       [i + [str(v) for v in row] for i, row in zip(ids_column, bboxes)], True))
    if identities is not None and layout.identities:
        tables.append((layout.identities, None,
                       [i + [str(v)] for i, v in zip(ids_column, identities)], False))
    for name, header, rows, count_line in tables:
        if layout is KAGGLE:
            lines = [",".join(["image_id", *header])] + [",".join(row) for row in rows]
        else:
            lines = ([str(count)] if count_line else []) + ([" ".join(header) + " "] if header
                                                           else [])
            lines += [" ".join(row) for row in rows]
        (root / name).write_text("\n".join(lines) + "\n")


def layout_by_name(name: str) -> Layout:
    if name not in LAYOUTS:
        raise ConfigError(f"Unknown layout {name!r}. Valid values are {{{', '.join(LAYOUTS)}}}.")
    return LAYOUTS[name]
