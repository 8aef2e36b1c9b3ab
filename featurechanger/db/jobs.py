"""Records of jobs, their shard tasks, one result per input image, and the online workers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from featurechanger.db.base import Base, utcnow


class JobRecord(Base):
    """A unit of work a user submitted: train, vectors, edit, interpolate or shard."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    params: Mapped[dict] = mapped_column(JSON)
    queue: Mapped[str | None] = mapped_column(String(32))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    vector_set_id: Mapped[int | None] = mapped_column(ForeignKey("vector_sets.id"))
    shard_set_id: Mapped[int | None] = mapped_column(ForeignKey("shard_sets.id"))
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    command_line: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    outputs: Mapped[dict] = mapped_column(JSON, default=dict)  # what it made: sheet, run, vectors
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class JobTaskRecord(Base):
    """One task of a job (usually one shard); the database, not Redis, owns its state."""

    __tablename__ = "job_tasks"
    __table_args__ = (UniqueConstraint("job_id", "item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    item: Mapped[int] = mapped_column(Integer)  # shard index, or position in the job's plan
    step: Mapped[str] = mapped_column(String(32))  # which handler runs it, e.g. edit_shard
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    celery_id: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)


class ResultRecord(Base):
    """What became of one input image of a job: its output file, or why it failed."""

    __tablename__ = "results"
    __table_args__ = (UniqueConstraint("job_id", "image_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("job_tasks.id"), index=True)
    image_id: Mapped[str] = mapped_column(String(255))
    output_path: Mapped[str | None] = mapped_column(String(1024))  # relative to the output root
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkerRecord(Base):
    """A Celery worker that is (or lately was) online: which queues it consumes, when it last
    proved itself alive. Submitting checks here that some worker consumes the chosen queue."""

    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), unique=True)  # Celery's node name
    queues: Mapped[list] = mapped_column(JSON)
    concurrency: Mapped[int] = mapped_column(Integer)
    pid: Mapped[int] = mapped_column(Integer)
    heartbeat_s: Mapped[float] = mapped_column(Float)  # its beat; silent for 6 beats = offline
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
