"""Records of training runs, their checkpoints and per-epoch metrics."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from featurechanger.db.base import Base, utcnow


class RunRecord(Base):
    """One training run of a model; resuming continues the same run."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(16))  # dcae | pgae
    state: Mapped[str] = mapped_column(String(16), default="running")
    model_config: Mapped[dict] = mapped_column(JSON)
    train_config: Mapped[dict] = mapped_column(JSON)  # loss, lr, batch size, seed, schedule ...
    vgg_weights: Mapped[str | None] = mapped_column(String(1024))  # path, or "random"
    shard_set_id: Mapped[int | None] = mapped_column(ForeignKey("shard_sets.id"), index=True)
    data_path: Mapped[str] = mapped_column(String(1024))
    checkpoint: Mapped[str | None] = mapped_column(String(1024))  # latest, relative to root
    step: Mapped[int] = mapped_column(Integer, default=0)
    images_seen: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()


class CheckpointRecord(Base):
    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RunMetricRecord(Base):
    """Validation metrics at the end of an epoch (or phase) of a run."""

    __tablename__ = "run_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    resolution: Mapped[int] = mapped_column(Integer)
    train_loss: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float] = mapped_column(Float)
    val_psnr: Mapped[float] = mapped_column(Float)
    val_ssim: Mapped[float] = mapped_column(Float)
    sheet: Mapped[str | None] = mapped_column(String(1024))  # reconstruction sheet PNG
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
