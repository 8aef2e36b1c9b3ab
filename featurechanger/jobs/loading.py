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
    """The shard set the job recorded (`params["data"]`)."""
    from featurechanger.data.shards import open_shard_set

    return open_shard_set(context.settings.resolve(context.params["data"], "data"))
