"""Finding what an edit works on: a run's shard set, images picked by id, and the photos an
edit must not write over."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from featurechanger.config import Settings
from featurechanger.data.celeba import layout_by_name
from featurechanger.data.shards import ShardArrays, ShardSet, iter_shards, open_shard_set
from featurechanger.errors import ConfigError
from featurechanger.training.runs import get_run


def run_shard_set(settings: Settings, run_id: int, data: Path | str | None = None) -> ShardSet:
    """The shard set at `data`, or by default the one run `run_id` was trained on."""
    if data is None:
        data = settings.resolve(get_run(settings, run_id).data_path, "data")
    return open_shard_set(data)


def check_output_folder(out: Path | str, photo_folders: Sequence[Path]) -> None:
    """Refuse to write edits into a folder of the photos they edit: outputs are named after
    their photos (<id>.png), so a PNG photo there would be overwritten by its own edit."""
    out = Path(out).resolve()
    if any(Path(folder).resolve() == out for folder in photo_folders):
        raise ConfigError(f"--out {str(out)!r} is the folder of the photos being edited; their "
                          f"edits could overwrite them. Choose another folder.")


def dataset_photo_folders(shard_set: ShardSet) -> list[Path]:
    """Where the photos of a shard set's dataset may be, in either CelebA layout."""
    return [shard_set.dataset_root / folder
            for folder in layout_by_name(shard_set.layout).image_dirs]


def images_by_id(shard_set: ShardSet, size: int, image_ids: Sequence[str]) -> ShardArrays:
    """The rows of these image ids at `size` px, in the order given."""
    wanted = list(set(image_ids))
    found = concatenate([arrays.select(np.isin(arrays.image_ids, wanted))
                         for _, arrays in iter_shards(shard_set, size)])
    row_of = {image_id: row for row, image_id in enumerate(found.image_ids)}
    missing = [image_id for image_id in image_ids if image_id not in row_of]
    if missing:
        more = f" (nor {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ConfigError(f"Image {missing[0]!r} is not in the shard set "
                          f"{str(shard_set.path)!r}{more}; its ids look like "
                          f"{shard_set.shard(0, size).image_ids[0]!r}.")
    return take(found, [row_of[image_id] for image_id in image_ids])


def take(arrays: ShardArrays, rows: Sequence[int]) -> ShardArrays:
    """The given rows, in that order (repeats allowed)."""
    rows = np.asarray(rows, dtype=np.int64)
    return ShardArrays(
        images=arrays.images[rows], labels=arrays.labels[rows],
        partitions=arrays.partitions[rows], image_ids=[arrays.image_ids[i] for i in rows],
        source_paths=[arrays.source_paths[i] for i in rows], crop_boxes=arrays.crop_boxes[rows],
        landmarks=None if arrays.landmarks is None else arrays.landmarks[rows])


def concatenate(parts: Sequence[ShardArrays]) -> ShardArrays:
    """One ShardArrays holding the rows of `parts` in order."""
    landmarks = [p.landmarks for p in parts]
    return ShardArrays(
        images=np.concatenate([p.images for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        partitions=np.concatenate([p.partitions for p in parts]),
        image_ids=[i for p in parts for i in p.image_ids],
        source_paths=[s for p in parts for s in p.source_paths],
        crop_boxes=np.concatenate([p.crop_boxes for p in parts]),
        landmarks=None if any(m is None for m in landmarks) else np.concatenate(landmarks))
