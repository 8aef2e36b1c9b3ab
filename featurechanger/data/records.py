"""SQL records of datasets and shard sets (featurechanger.db.datasets), kept current by upsert."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from featurechanger.config import Settings
from featurechanger.data.shards import ShardSet
from featurechanger.db.datasets import DatasetRecord, ShardSetRecord


def record_shard_set(session: Session, settings: Settings, shard_set: ShardSet) -> ShardSetRecord:
    """Insert or update the rows of `shard_set` and of the dataset it was built from.

    A dataset is identified by its fingerprint and root, and a shard set by its path (both
    stored relative to the data root), so recording a rebuilt set updates its row instead of
    adding one, and a copy of a dataset elsewhere is a row of its own.
    """
    splits = shard_set.split_counts()
    root = settings.relative(shard_set.dataset_root, "data")
    dataset = session.scalar(select(DatasetRecord).filter_by(fingerprint=shard_set.fingerprint,
                                                            root=root))
    if dataset is None:
        dataset = DatasetRecord(fingerprint=shard_set.fingerprint, root=root)
        session.add(dataset)
    dataset.layout = shard_set.layout
    dataset.images = sum(splits.values()) + len(shard_set.excluded)
    session.flush()

    path = settings.relative(shard_set.path, "data")
    record = session.scalar(select(ShardSetRecord).filter_by(path=path))
    if record is None:
        record = ShardSetRecord(path=path)
        session.add(record)
    record.dataset_id = dataset.id
    record.sizes = list(shard_set.sizes)
    record.crop = shard_set.crop
    record.shard_size = shard_set.shard_size
    record.shards = shard_set.num_shards
    record.images = shard_set.num_images
    record.excluded = len(shard_set.excluded)
    session.flush()
    return record
