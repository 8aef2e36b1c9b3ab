"""`data info`: a JSON-ready description of a dataset folder or a shard set.

Both give at least {"images", "splits": {"train", "val", "test"}, "prevalence": {attribute:
share}, "excluded": [{"image_id", "reason"}]}, so scripts can rely on the same keys.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from featurechanger.attributes import ATTRIBUTES, SPLITS
from featurechanger.data.celeba import CelebA, open_celeba
from featurechanger.data.images import cannot_read, decode_aligned
from featurechanger.data.parallel import ordered_map, progress_bar, resolve_workers
from featurechanger.data.shards import MANIFEST, open_shard_set
from featurechanger.errors import DataError

VERIFY_CHUNK = 256  # images per task when decoding every image to find corrupt ones
VERIFY_SIZE = 8  # decode at the smallest JPEG scale: every byte is still read and checked


def describe(path: Path | str, verify: bool = False, workers: int | None = None,
             progress: bool = True) -> dict:
    """Describe the dataset folder or shard set (a folder with a manifest) at `path`.

    For a dataset folder, `verify` decodes every image over `workers` processes so that corrupt
    files are excluded and reported too (without it only missing files are); a shard set already
    lists the images its build could not decode.
    """
    path = Path(path).absolute()
    if (path / MANIFEST).is_file():
        return _describe_shard_set(path)
    dataset = open_celeba(path)
    excluded = list(dataset.excluded)
    readable = np.ones(len(dataset), dtype=bool)
    if verify:
        for row, reason in _unreadable_images(dataset, resolve_workers(workers), progress):
            readable[row] = False
            excluded.append((dataset.image_ids[row], reason))
    return {
        "kind": "dataset", "path": str(path), "layout": dataset.layout,
        "fingerprint": dataset.fingerprint, "verified": verify,
        **_summary(dataset.labels[readable], dataset.partitions[readable]),
        "excluded": [{"image_id": i, "reason": r} for i, r in excluded],
    }


def _unreadable_images(dataset: CelebA, workers: int,
                       progress: bool) -> list[tuple[int, str]]:
    """(row, reason) of every image that cannot be decoded, in dataset order."""
    paths = [str(dataset.image_dir / image_id) for image_id in dataset.image_ids]
    chunks = [paths[i:i + VERIFY_CHUNK] for i in range(0, len(paths), VERIFY_CHUNK)]
    unreadable: list[tuple[int, str]] = []
    with progress_bar(len(paths), "verifying images", progress) as bar:
        results = ordered_map(_check_chunk, chunks, max(1, min(workers, len(chunks))))
        for start, reasons in zip(range(0, len(paths), VERIFY_CHUNK), results):
            unreadable += [(start + offset, reason)
                           for offset, reason in enumerate(reasons) if reason]
            bar.update(len(reasons))
    return unreadable


def _check_chunk(paths: list[str]) -> list[str | None]:
    """Runs in a worker: None for each image that decodes, else why it does not."""
    reasons: list[str | None] = []
    for path in paths:
        try:
            decode_aligned(Path(path).read_bytes(), VERIFY_SIZE, name=Path(path).name)
            reasons.append(None)
        except OSError as error:
            reasons.append(cannot_read(path, error))
        except DataError as error:
            reasons.append(str(error))
    return reasons


def _describe_shard_set(path: Path) -> dict:
    shard_set = open_shard_set(path)
    size = shard_set.sizes[0]
    shards = [shard_set.shard(i, size) for i in range(shard_set.num_shards)]
    labels = np.concatenate([s.labels for s in shards]) if shards else np.zeros((0, 40), np.uint8)
    partitions = np.concatenate([s.partitions for s in shards]) if shards else np.zeros(0, np.uint8)
    return {
        "kind": "shard_set", "path": str(path), "dataset_root": str(shard_set.dataset_root),
        "layout": shard_set.layout, "fingerprint": shard_set.fingerprint,
        "sizes": list(shard_set.sizes), "crop": shard_set.crop,
        "shard_size": shard_set.shard_size, "shards": shard_set.num_shards,
        **_summary(labels, partitions), "excluded": shard_set.excluded,
    }


def _summary(labels: np.ndarray, partitions: np.ndarray) -> dict:
    shares = labels.mean(axis=0) if len(labels) else np.zeros(len(ATTRIBUTES))
    return {
        "images": int(len(labels)),
        "splits": {name: int((partitions == code).sum()) for name, code in SPLITS.items()},
        "prevalence": {name: round(float(share), 4) for name, share in zip(ATTRIBUTES, shares)},
    }
