"""Records of attribute-vector sets and their vectors."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from featurechanger.db.base import Base, utcnow


class VectorSetRecord(Base):
    """All attribute vectors computed from one encoding pass of a run's model."""

    __tablename__ = "vector_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    checkpoint: Mapped[str] = mapped_column(String(1024))
    shard_set_id: Mapped[int | None] = mapped_column(ForeignKey("shard_sets.id"), index=True)
    method: Mapped[str] = mapped_column(String(32))  # mean | sampled
    keep: Mapped[list] = mapped_column(JSON, default=list)  # held fixed: conditional vectors
    per_attribute: Mapped[int | None] = mapped_column(Integer)  # sampled: N per class
    seed: Mapped[int | None] = mapped_column(Integer)  # sampled: the sample's seed
    split: Mapped[str] = mapped_column(String(8), default="train")
    images: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[dict] = mapped_column(JSON, default=dict)  # attribute -> why it has no vector
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VectorRecord(Base):
    __tablename__ = "vectors"
    __table_args__ = (UniqueConstraint("vector_set_id", "attribute"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vector_set_id: Mapped[int] = mapped_column(ForeignKey("vector_sets.id"), index=True)
    attribute: Mapped[str] = mapped_column(String(32))
    positives: Mapped[int] = mapped_column(Integer)
    negatives: Mapped[int] = mapped_column(Integer)
    norm: Mapped[float] = mapped_column(Float)
    stderr: Mapped[float] = mapped_column(Float)  # standard error of the vector (same units)
    values: Mapped[list] = mapped_column(JSON)  # the vector, D floats
    # What an adaptive edit needs (NULL for sampled sets and sets from before revision 0006):
    # the linear discriminant w (D floats), the mean score w . z of the positives and of the
    # negatives, and the within-class standard deviation of the score.
    positive_projection: Mapped[float | None] = mapped_column(Float)
    negative_projection: Mapped[float | None] = mapped_column(Float)
    spread: Mapped[float | None] = mapped_column(Float)
    discriminant: Mapped[list | None] = mapped_column(JSON)
