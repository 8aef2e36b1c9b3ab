"""Loading what tasks share, once per worker process: the model of a checkpoint, a shard set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featurechanger.jobs.context import TaskContext

_loaded_models: dict[tuple[str, str], Any] = {}


def cached_model(checkpoint: Path, device: str) -> Any:
    """The checkpoint's model in eval mode, kept between the tasks this process runs."""
    from featurechanger.models.checkpoint import load_checkpoint

    key = (str(checkpoint), device)
    if key not in _loaded_models:
        _loaded_models.clear()  # one model at a time: a worker serves one job after another
        _loaded_models[key] = load_checkpoint(checkpoint, device)
    return _loaded_models[key]


def job_model(context: TaskContext) -> Any:
    """The model of the checkpoint the job recorded (`params["checkpoint"]`)."""
    checkpoint = context.settings.resolve(context.params["checkpoint"], "checkpoint")
    return cached_model(checkpoint, context.torch_device())


def job_shard_set(context: TaskContext) -> Any:
    """The shard set the job recorded (`params["data"]`), refused when it was rebuilt with
    another grouping since the job was planned (`params["grouping"]`): its task numbers would
    name other shards, and their images others than the plan chose."""
    from featurechanger.data.shards import open_shard_set
    from featurechanger.errors import DataError

    shard_set = open_shard_set(context.settings.resolve(context.params["data"], "data"))
    planned = context.params.get("grouping", shard_set.grouping)  # jobs planned before it
    if planned != shard_set.grouping:
        raise DataError(
            f"Shard set {str(shard_set.path)!r} was rebuilt (with --replace) since job "
            f"{context.job_id} was planned on it; it now holds shards of "
            f"{shard_set.shard_size} images, crop {shard_set.crop}, from "
            f"{shard_set.dataset_root}, so the job's shard numbers would name other images. "
            f"Submit the job again.")
    return shard_set
