"""SQL records of training runs: create and update them, find them, and load their models.

A run's files live in `settings.checkpoint_root / run-<id>/` (checkpoints and reconstruction
sheets); SQL stores their paths relative to the checkpoint root, so workers may mount it
elsewhere. This module imports no torch until a model is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from featurechanger.config import Settings
from featurechanger.data.records import record_shard_set
from featurechanger.data.shards import ShardSet
from featurechanger.db.migrate import ensure_schema
from featurechanger.db.runs import CheckpointRecord, RunMetricRecord, RunRecord
from featurechanger.db.session import session_scope, shown_url
from featurechanger.errors import ConfigError, DataError

if TYPE_CHECKING:  # torch is imported only where a model is loaded: job submission stays light
    import torch

    from featurechanger.models import Autoencoder

# running -> completed | stopped (time budget) | interrupted (Ctrl-C, SIGTERM) | failed
RESUMABLE_STATES = ("running", "stopped", "interrupted", "failed")


def run_dir(settings: Settings, run_id: int) -> Path:
    return settings.checkpoint_root / f"run-{run_id}"


def create_run(settings: Settings, *, model: str, model_config: dict[str, Any],
               train_config: dict[str, Any], vgg_weights: str | None,
               shard_set: ShardSet) -> int:
    """A new run in state "running", linked to the (upserted) record of its shard set."""
    with session_scope(settings.database_url) as session:
        shard_record = record_shard_set(session, settings, shard_set)
        run = RunRecord(model=model, state="running", model_config=model_config,
                        train_config=train_config, vgg_weights=vgg_weights,
                        data_path=shard_record.path, shard_set_id=shard_record.id,
                        step=0, images_seen=0)
        session.add(run)
        session.flush()
        return run.id


def update_run(settings: Settings, run_id: int, **values: Any) -> None:
    with session_scope(settings.database_url) as session:
        run = session.get(RunRecord, run_id)
        for key, value in values.items():
            setattr(run, key, value)


def record_checkpoint(settings: Settings, run_id: int, step: int, images_seen: int,
                      path: Path) -> None:
    stored = settings.relative(path, "checkpoint")
    with session_scope(settings.database_url) as session:
        session.add(CheckpointRecord(run_id=run_id, step=step, path=stored))
        run = session.get(RunRecord, run_id)
        run.checkpoint, run.step, run.images_seen = stored, step, images_seen


def record_evaluation(settings: Settings, run_id: int, *, epoch: int, step: int,
                      resolution: int, train_loss: float | None, val_loss: float,
                      val_psnr: float, val_ssim: float, sheet: Path | None) -> None:
    with session_scope(settings.database_url) as session:
        session.add(RunMetricRecord(
            run_id=run_id, epoch=epoch, step=step, resolution=resolution, train_loss=train_loss,
            val_loss=val_loss, val_psnr=val_psnr, val_ssim=val_ssim,
            sheet=settings.relative(sheet, "checkpoint") if sheet else None))


def forget_after(settings: Settings, run_id: int, step: int) -> None:
    """Drop records a resumed run will redo: metrics and checkpoints after `step`."""
    with session_scope(settings.database_url) as session:
        for table in (RunMetricRecord, CheckpointRecord):
            session.execute(delete(table).where(table.run_id == run_id, table.step > step))


def get_run(settings: Settings, run_id: int) -> RunRecord:
    """The run `run_id`, or a DataError saying how to list the runs."""
    ensure_schema(settings.database_url)
    with session_scope(settings.database_url) as session:
        run = session.get(RunRecord, run_id)
    if run is None:
        raise DataError(f"No training run with id {run_id!r} in "
                        f"{shown_url(settings.database_url)!r}. `featurechanger runs list` shows "
                        f"the runs.")
    return run


def list_runs(settings: Settings) -> list[RunRecord]:
    ensure_schema(settings.database_url)
    with session_scope(settings.database_url) as session:
        return list(session.scalars(select(RunRecord).order_by(RunRecord.id)))


def run_metrics(settings: Settings, run_id: int) -> list[RunMetricRecord]:
    """The run's evaluations, oldest first."""
    with session_scope(settings.database_url) as session:
        query = (select(RunMetricRecord).where(RunMetricRecord.run_id == run_id)
                 .order_by(RunMetricRecord.step, RunMetricRecord.id))
        return list(session.scalars(query))


def run_checkpoint_path(settings: Settings, run: RunRecord) -> Path:
    """Where the run's latest checkpoint is on this machine."""
    if run.checkpoint is None:
        raise DataError(f"Run {run.id} ({run.state}) has no checkpoint yet; wait for its first "
                        f"one, or see `featurechanger runs show {run.id}`.")
    return settings.resolve(run.checkpoint, "checkpoint")


def latest_checkpoint(settings: Settings, run_id: int) -> Path:
    """Run `run_id`'s latest checkpoint file. Look it up once per command and load everything
    from that file: the run may write a newer one meanwhile."""
    return run_checkpoint_path(settings, get_run(settings, run_id))


def load_run_model(settings: Settings, run_id: int,
                   device: str | torch.device = "cpu") -> Autoencoder:
    """The model from run `run_id`'s latest checkpoint, in eval mode on `device`."""
    from featurechanger.models.checkpoint import load_checkpoint

    return load_checkpoint(latest_checkpoint(settings, run_id), device)


def check_resumable(run: RunRecord) -> None:
    if run.state not in RESUMABLE_STATES:
        raise ConfigError(f"Run {run.id} is {run.state!r} at step {run.step}; only runs that are "
                          f"{', '.join(RESUMABLE_STATES)} can be resumed.")
