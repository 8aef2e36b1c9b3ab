"""Writing a synthetic CelebA-format dataset (the embedded default): images plus annotations.

The faces come from featurechanger.data.faces. Image i shows identity i // 20 + 1, and the
official-style partitions are blocks of image ids: the first 80 % train, the next 10 % val, the
rest test (so at most the two identities at a boundary straddle two splits).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featurechanger.data.celeba import LAYOUTS, layout_by_name, write_annotations
from featurechanger.data.faces import (IMAGES_PER_IDENTITY, bbox, check_counterfactual,
                                       draw_face, encode, landmarks, with_attributes)
from featurechanger.data.parallel import ordered_map, progress_bar, resolve_workers
from featurechanger.errors import ConfigError, DataError

MARKER = "synthetic.json"  # written into every generated folder; a rerun may replace the folder
SPLIT_FRACTIONS = (0.8, 0.1)  # train, val; the rest is test (CelebA: 80.3 / 9.8 / 9.9 %)
CHUNK = 64  # images per task sent to a worker process
# What write_synthetic puts at the top of its folder, in either layout: all a redraw deletes.
_WRITTEN = {MARKER} | {name for layout in LAYOUTS.values() for name in (
    layout.image_dirs[0].split("/")[0], layout.attributes, layout.partitions, layout.bboxes,
    layout.landmarks, layout.identities) if name}


@dataclass(frozen=True)
class _Chunk:
    seed: int
    count: int
    start: int
    stop: int
    image_dir: Path
    counterfactual: dict[str, int]


def image_id(index: int, count: int) -> str:
    """CelebA's naming: 000001.jpg for index 0, wider only past 999,999 images."""
    return f"{index + 1:0{max(6, len(str(count)))}d}.jpg"


def partition_of(index: int, count: int) -> int:
    train, val = SPLIT_FRACTIONS
    if index < round(train * count):
        return 0
    return 1 if index < round((train + val) * count) else 2


def write_synthetic(out: Path | str, count: int, seed: int = 0, layout: str = "kaggle",
                    counterfactual: dict[str, int] | None = None, workers: int | None = None,
                    progress: bool = True, replace: bool = False) -> Path:
    """Write `count` synthetic faces in `layout` into `out`; returns `out`.

    The same (count, seed) gives the same files with any number of workers; `counterfactual`
    (e.g. {"Eyeglasses": 0}) gives the same faces with those drawn attributes set.
    Refuses a non-empty folder unless an earlier run of this generator wrote it, and an earlier
    synthetic dataset drawn otherwise unless `replace`: shard sets built from it point to its
    photos.
    """
    out = Path(out)
    if not isinstance(count, int) or count < 1:
        raise ConfigError(f"Count must be a positive number of images, not {count!r}.")
    layout_files = layout_by_name(layout)
    changes = check_counterfactual(counterfactual)
    workers = resolve_workers(workers)
    drawn = {"generator": "featurechanger.data.synth", "count": count, "seed": seed,
             "layout": layout, "counterfactual": changes}
    _prepare(out, drawn, replace)
    image_dir = out / layout_files.image_dirs[0]
    image_dir.mkdir(parents=True)

    chunks = [_Chunk(seed, count, start, min(start + CHUNK, count), image_dir, changes)
              for start in range(0, count, CHUNK)]
    labels = np.zeros((count, 40), dtype=np.uint8)
    marks = np.zeros((count, 10), dtype=np.int32)
    boxes = np.zeros((count, 4), dtype=np.int32)
    with progress_bar(count, "synthesising faces", progress) as bar:
        for chunk, (chunk_labels, chunk_marks, chunk_boxes) in zip(
                chunks, ordered_map(_write_chunk, chunks, min(workers, len(chunks)))):
            labels[chunk.start:chunk.stop] = chunk_labels
            marks[chunk.start:chunk.stop] = chunk_marks
            boxes[chunk.start:chunk.stop] = chunk_boxes
            bar.update(chunk.stop - chunk.start)

    ids = [image_id(i, count) for i in range(count)]
    partitions = np.array([partition_of(i, count) for i in range(count)], dtype=np.uint8)
    identities = np.arange(count, dtype=np.int32) // IMAGES_PER_IDENTITY + 1
    write_annotations(out, layout, ids, labels, partitions, marks, boxes, identities)
    (out / MARKER).write_text(json.dumps(drawn, indent=2) + "\n")
    return out


def _prepare(out: Path, drawn: dict, replace: bool) -> None:
    """Make `out` an empty folder, replacing only an earlier synthetic dataset: one drawn the
    same way (redrawing it gives the same files) or, with `replace`, any; and only when it
    holds nothing else, so that no file of the user's is deleted with it."""
    if out.exists() and not out.is_dir():
        raise DataError(f"Output {str(out)!r} is a file; choose a folder path.")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise DataError(
                f"Output folder {str(out)!r} is not empty and was not written by `data synth` "
                f"(no {MARKER}); choose an empty or new folder."
            )
        earlier = _read_marker(out)
        if earlier != drawn and not replace:
            raise DataError(
                f"{str(out)!r} holds another synthetic dataset ({_describe_drawn(earlier)}); "
                f"choose a new folder, or pass --replace to draw over it (shard sets built "
                f"from it would no longer match its photos).")
        entries = list(out.iterdir())
        foreign = sorted(entry.name for entry in entries if entry.name not in _WRITTEN)
        if foreign:
            raise DataError(
                f"{str(out)!r} holds {foreign[0]!r}, which `data synth` did not write; drawing "
                f"the dataset again would delete it. Move it out, or choose another folder.")
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _read_marker(out: Path) -> dict:
    try:
        return json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return {}  # a damaged marker describes no drawing: only --replace draws over it


def _describe_drawn(drawn: dict) -> str:
    if not drawn:
        return f"its {MARKER} is unreadable"
    changed = ", ".join(f"{name}={value}"
                        for name, value in drawn.get("counterfactual", {}).items())
    return (f"{drawn.get('count')} faces, seed {drawn.get('seed')}, {drawn.get('layout')} layout"
            + (f", counterfactual {changed}" if changed else ""))


def _write_chunk(chunk: _Chunk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render and save one chunk of images; returns their labels, landmarks and boxes."""
    size = chunk.stop - chunk.start
    labels = np.zeros((size, 40), dtype=np.uint8)
    marks = np.zeros((size, 10), dtype=np.int32)
    boxes = np.zeros((size, 4), dtype=np.int32)
    for row, index in enumerate(range(chunk.start, chunk.stop)):
        face = draw_face(chunk.seed, index)
        if chunk.counterfactual:
            face = with_attributes(face, chunk.counterfactual)
        (chunk.image_dir / image_id(index, chunk.count)).write_bytes(encode(face))
        labels[row], marks[row], boxes[row] = face.labels, landmarks(face), bbox(face)
    return labels, marks, boxes
