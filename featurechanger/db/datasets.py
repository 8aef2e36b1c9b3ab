"""Records of datasets read from disk and the shard sets built from them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from featurechanger.db.base import Base, utcnow


class DatasetRecord(Base):
    """A CelebA-format folder: its fingerprint (attribute and partition files) and where it is,
    so that two copies of one dataset are two rows, each with its own root and layout."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("fingerprint", "root", name="uq_datasets_fingerprint_root"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    root: Mapped[str] = mapped_column(String(1024))  # relative to the data root where possible
    layout: Mapped[str] = mapped_column(String(16))  # kaggle | original
    fingerprint: Mapped[str] = mapped_column(String(64))
    images: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ShardSetRecord(Base):
    """A folder of shards: each image decoded once into uint8 arrays per resolution."""

    __tablename__ = "shard_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    path: Mapped[str] = mapped_column(String(1024), unique=True)
    sizes: Mapped[list] = mapped_column(JSON)  # resolutions, e.g. [32, 64]
    crop: Mapped[str] = mapped_column(String(32))
    shard_size: Mapped[int] = mapped_column(Integer)
    shards: Mapped[int] = mapped_column(Integer)
    images: Mapped[int] = mapped_column(Integer)
    excluded: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
