"""`data info`: a JSON-ready description of a dataset folder or a shard set.

Both give at least {"images", "splits": {"train", "val", "test"}, "prevalence": {attribute:
share}, "excluded": [{"image_id", "reason"}]}, so scripts can rely on the same keys.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from featurechanger.attributes import ATTRIBUTES, SPLITS
from featurechanger.data.celeba import open_celeba
from featurechanger.data.shards import MANIFEST, open_shard_set


def describe(path: Path | str) -> dict:
    """Describe the dataset folder or shard set (a folder with a manifest) at `path`."""
    path = Path(path).absolute()
    if (path / MANIFEST).is_file():
        return _describe_shard_set(path)
    dataset = open_celeba(path)
    return {
        "kind": "dataset", "path": str(path), "layout": dataset.layout,
        "fingerprint": dataset.fingerprint,
        **_summary(dataset.labels, dataset.partitions),
        "excluded": [{"image_id": i, "reason": r} for i, r in dataset.excluded],
    }


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
