"""The vectors job: attribute vectors from one encoding pass, fanned out over shards.

Each task encodes the split's images of one shard and saves the partial sums (per-attribute
latent sums and counts, see featurechanger.latent.vectors.VectorStats) under the output root;
the final step adds them up, turns them into vectors and records the vector set. The partials
live on the shared storage, so any worker can run the reduce.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featurechanger.config import Settings
from featurechanger.errors import ConfigError, DataError
from featurechanger.jobs.context import Plan, PlannedTask, TaskContext, TaskOutcome
from featurechanger.jobs.loading import job_model, job_shard_set
from featurechanger.jobs.selection import shard_set_id

DEFAULT_BATCH = 256  # images per encoder call


def plan(settings: Settings, params: dict[str, Any]) -> Plan:
    """params: run, data (default: the run's shard set), split (train), per_attribute, seed,
    keep, batch_size (images per encoder call, default 256)."""
    from featurechanger.editing.inputs import run_shard_set
    from featurechanger.latent.vectors import (check_keep, normalise_keep, plan_for_shard_set,
                                               shards_to_read)
    from featurechanger.training.runs import get_run, run_checkpoint_path

    keep = normalise_keep(params.get("keep", ()))
    check_keep(keep, params.get("per_attribute"))
    batch_size = params.get("batch_size", DEFAULT_BATCH)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"--batch-size must be a positive number of images, not "
                          f"{batch_size!r}.")
    run = get_run(settings, params["run"])
    checkpoint = run_checkpoint_path(settings, run)
    shard_set = run_shard_set(settings, run.id, params.get("data"))
    split = params.get("split", "train")
    vector_plan = plan_for_shard_set(shard_set, split=split,
                                     per_attribute=params.get("per_attribute"),
                                     seed=params.get("seed", 0))
    tasks = [PlannedTask(item, _images_of_split(shard_set.shards[item], split))
             for item in shards_to_read(shard_set, split)]
    if not tasks:
        raise DataError(f"Shard set {str(shard_set.path)!r} has no {split} images to compute "
                        "vectors from.")
    stored = {"run": run.id, "checkpoint": settings.relative(checkpoint, "checkpoint"),
              "data": settings.relative(shard_set.path, "data"), "grouping": shard_set.grouping,
              "plan": vector_plan.to_json(), "keep": list(keep), "batch_size": batch_size}
    return Plan(params=stored, tasks=tasks, run_id=run.id,
                shard_set_id=shard_set_id(settings, shard_set))


def encode_shard(context: TaskContext) -> TaskOutcome:
    """Encode one shard's images of the split; save their partial sums for the reduce."""
    from featurechanger.latent.vectors import VectorPlan, shard_stats

    model = job_model(context)
    arrays = job_shard_set(context).shard(context.item, model.resolution)
    stats = shard_stats(model, arrays, VectorPlan.from_json(context.params["plan"]),
                        device=context.torch_device(),
                        batch_size=context.params.get("batch_size", DEFAULT_BATCH))
    path = _partial_path(context, context.item)
    path.parent.mkdir(parents=True, exist_ok=True)
    stats.save(path)
    return TaskOutcome(done=context.total)


def reduce_vectors(context: TaskContext) -> TaskOutcome:
    """Add up every shard's partial sums, make the vectors, and record the vector set."""
    from featurechanger.latent.store import save_vector_set
    from featurechanger.latent.vectors import VectorPlan, VectorStats, vectors_from_stats

    settings, params = context.settings, context.params
    partials = [VectorStats.load(_partial_path(context, item)) for item in context.items_of_job]
    vector_set = vectors_from_stats(sum(partials[1:], partials[0]),
                                    VectorPlan.from_json(params["plan"]), params["keep"])
    vector_set_id = save_vector_set(settings, params["run"], vector_set,
                                    checkpoint=settings.resolve(params["checkpoint"], "checkpoint"),
                                    shard_set_id=context.records["shard_set_id"])
    for item in context.items_of_job:
        _partial_path(context, item).unlink()
    return TaskOutcome(done=0, outputs={"vector_set_id": vector_set_id,
                                        "skipped": dict(vector_set.skipped)},
                       records={"vector_set_id": vector_set_id})


def _images_of_split(shard_info: dict, split: str) -> int:
    return shard_info["images"] if split == "all" else shard_info["splits"][split]


def _partial_path(context: TaskContext, item: int) -> Path:
    return (context.settings.output_root / "jobs" / f"job-{context.job_id}"
            / f"vector-stats-{item:05d}.npz")
