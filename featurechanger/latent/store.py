"""Vector sets as SQL records: save one after a computation, load it by id for edits."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from featurechanger.config import Settings
from featurechanger.db.migrate import ensure_schema
from featurechanger.db.runs import RunRecord
from featurechanger.db.session import session_scope
from featurechanger.db.vectors import VectorRecord, VectorSetRecord
from featurechanger.errors import ConfigError
from featurechanger.latent.vectors import AttributeVector, VectorSet, normalise_keep


def save_vector_set(settings: Settings, run_id: int, vector_set: VectorSet, *,
                    checkpoint: Path | str, shard_set_id: int | None = None) -> int:
    """Record the set and its vectors; sets `vector_set.id` and returns it."""
    ensure_schema(settings.database_url)
    with session_scope(settings.database_url) as session:
        if session.get(RunRecord, run_id) is None:
            raise ConfigError(f"Run {run_id!r} does not exist; `featurechanger runs list` shows "
                              "the runs.")
        record = VectorSetRecord(
            run_id=run_id, checkpoint=settings.relative(checkpoint, "checkpoint"),
            shard_set_id=shard_set_id, method=vector_set.method, keep=list(vector_set.keep),
            per_attribute=vector_set.per_attribute, seed=vector_set.seed, split=vector_set.split,
            images=vector_set.images, skipped=dict(vector_set.skipped))
        session.add(record)
        session.flush()
        session.add_all(VectorRecord(
            vector_set_id=record.id, attribute=vector.attribute, positives=vector.positives,
            negatives=vector.negatives, norm=vector.norm, stderr=vector.stderr,
            values=[float(value) for value in vector.values],
            positive_projection=_or_null(vector.positive_projection),
            negative_projection=_or_null(vector.negative_projection),
            spread=_or_null(vector.spread),
            discriminant=None if vector.discriminant is None
            else [float(value) for value in vector.discriminant])
            for vector in vector_set.vectors.values())
        vector_set.id = record.id
    return vector_set.id


def load_vector_set(settings: Settings, vector_set_id: int) -> VectorSet:
    ensure_schema(settings.database_url)
    with session_scope(settings.database_url) as session:
        record = session.get(VectorSetRecord, vector_set_id)
        if record is None:
            raise ConfigError(f"Vector set {vector_set_id!r} does not exist; `featurechanger "
                              "vectors list --run RUN` shows a run's vector sets.")
        rows = session.scalars(select(VectorRecord).where(
            VectorRecord.vector_set_id == vector_set_id)).all()
        vectors = {row.attribute: AttributeVector(row.attribute,
                                                  np.asarray(row.values, dtype=np.float32),
                                                  row.positives, row.negatives, row.stderr,
                                                  *map(_or_nan, (row.positive_projection,
                                                                 row.negative_projection,
                                                                 row.spread)),
                                                  _array_or_none(row.discriminant))
                   for row in rows}
        return VectorSet(vectors=vectors, method=record.method, keep=tuple(record.keep),
                         per_attribute=record.per_attribute, seed=record.seed, split=record.split,
                         images=record.images, skipped=dict(record.skipped), id=record.id)


def list_vector_sets(settings: Settings, run_id: int) -> list[dict]:
    """A summary per vector set of the run, oldest first."""
    ensure_schema(settings.database_url)
    with session_scope(settings.database_url) as session:
        records = session.scalars(select(VectorSetRecord).where(
            VectorSetRecord.run_id == run_id).order_by(VectorSetRecord.id)).all()
        counts = dict(session.execute(
            select(VectorRecord.vector_set_id, func.count()).join(VectorSetRecord)
            .where(VectorSetRecord.run_id == run_id).group_by(VectorRecord.vector_set_id)).all())
        return [{"vector_set_id": r.id, "run_id": r.run_id, "method": r.method,
                 "keep": list(r.keep), "per_attribute": r.per_attribute, "seed": r.seed,
                 "split": r.split, "images": r.images, "vectors": counts.get(r.id, 0),
                 "skipped": dict(r.skipped), "checkpoint": r.checkpoint,
                 "created_at": r.created_at.isoformat(timespec="seconds")} for r in records]


def _vectors_command(run_id: int, keep: Iterable[str]) -> str:
    """The command that computes a run's vector set keeping `keep`."""
    return f"featurechanger vectors --run {run_id}" + "".join(f" --keep {name}" for name in keep)


def _describe_set(listed: dict) -> str:
    """A listed vector set in a few words, for an error message: "set 3 (mean, keeping Male)"."""
    keep = f", keeping {', '.join(listed['keep'])}" if listed["keep"] else ""
    return f"set {listed['vector_set_id']} ({listed['method']}{keep})"


def vector_set_for_run(settings: Settings, run_id: int, vector_set_id: int | None = None,
                       keep: Iterable[str] = ()) -> VectorSet:
    """Vector set `vector_set_id` (whose kept labels must then be `keep`, when given), else the
    run's newest plain set with exactly `keep`.

    The set must come from the run's current checkpoint: vectors only make sense in the latent
    space of the weights that encoded them.
    """
    keep = normalise_keep(keep)
    current = _current_checkpoint(settings, run_id)
    sets = list_vector_sets(settings, run_id)
    if vector_set_id is None:
        matches = [s for s in sets if s["method"] == "mean" and tuple(s["keep"]) == tuple(keep)
                   and s["checkpoint"] == current]
        if not matches:
            kept = f" keeping {', '.join(keep)}" if keep else " without --keep"
            others = [_describe_set(s) for s in sets if s["checkpoint"] == current]
            instead = (f", or pass --vectors ID to use one of its sets for this checkpoint: "
                       f"{', '.join(others)}" if others else "")
            raise ConfigError(f"Run {run_id!r} has no vector set{kept} for its current "
                              f"checkpoint; compute one with `{_vectors_command(run_id, keep)}`"
                              f"{instead}.")
        return load_vector_set(settings, matches[-1]["vector_set_id"])
    chosen = next((s for s in sets if s["vector_set_id"] == vector_set_id), None)
    if chosen is None:
        raise ConfigError(f"Run {run_id!r} has no vector set {vector_set_id!r}; "
                          f"`featurechanger vectors list --run {run_id}` shows its sets.")
    if keep and tuple(chosen["keep"]) != tuple(keep):
        raise ConfigError(f"Vector set {vector_set_id!r} keeps "
                          f"{', '.join(chosen['keep']) or 'nothing'}, not {', '.join(keep)}: "
                          f"drop --keep, or drop --vectors to use the newest set keeping "
                          f"{', '.join(keep)}.")
    if chosen["checkpoint"] != current:
        raise ConfigError(f"Vector set {vector_set_id!r} was computed with checkpoint "
                          f"{chosen['checkpoint']!r}, but run {run_id!r} is now at {current!r}; "
                          f"recompute it with `{_vectors_command(run_id, chosen['keep'])}`.")
    return load_vector_set(settings, vector_set_id)


def _current_checkpoint(settings: Settings, run_id: int) -> str:
    """The run's latest checkpoint as stored (relative to the checkpoint root)."""
    ensure_schema(settings.database_url)
    with session_scope(settings.database_url) as session:
        run = session.get(RunRecord, run_id)
        if run is None:
            raise ConfigError(f"Run {run_id!r} does not exist; `featurechanger runs list` shows "
                              "the runs.")
        if run.checkpoint is None:
            raise ConfigError(f"Run {run_id!r} has no checkpoint yet, so it has no vectors; wait "
                              f"for its first checkpoint (`featurechanger runs show {run_id}`).")
        return run.checkpoint


def _or_null(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _array_or_none(values: list | None) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=np.float32)
