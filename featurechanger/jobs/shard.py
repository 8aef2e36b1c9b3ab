"""The shard job: decode a CelebA-format dataset into a shard set on a worker.

One task runs featurechanger.data.shards.build_shards, which spreads the decoding over the
worker machine's cores and is incremental: a retried job skips the shards already built. It
reports its images done after each shard, and a cancelled job stops between shards. Images that
cannot be used (missing or corrupt) are the job's failed items, each with its reason.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from featurechanger.config import Settings
from featurechanger.data.celeba import open_celeba
from featurechanger.data.images import check_crop, check_size
from featurechanger.data.options import DEFAULT_CROP, DEFAULT_SHARD_SIZE
from featurechanger.data.shards import check_shard_output
from featurechanger.errors import ConfigError
from featurechanger.jobs.context import (ItemResult, Plan, PlannedTask, TaskContext, TaskOutcome,
                                         TaskStopped)
from featurechanger.jobs.selection import shard_set_id


def plan(settings: Settings, params: dict[str, Any]) -> Plan:
    """params: dataset, out (paths), sizes (default [32, 64]), shard_size (default
    DEFAULT_SHARD_SIZE), crop, workers (decoding processes; default every core), replace
    (rebuild a shard set of another dataset in out; default false)."""
    sizes = sorted({check_size(size) for size in params.get("sizes") or (32, 64)})
    crop = check_crop(params.get("crop") or DEFAULT_CROP)
    shard_size = params.get("shard_size", DEFAULT_SHARD_SIZE)
    if not isinstance(shard_size, int) or shard_size < 1:
        raise ConfigError(f"Shard size must be a positive number of images, not {shard_size!r}.")
    workers = params.get("workers")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"--workers must be a positive number of processes, not {workers!r}.")
    dataset = open_celeba(params["dataset"])
    replace = bool(params.get("replace", False))
    check_shard_output(Path(params["out"]).absolute(), dataset.fingerprint, sizes, crop,
                       shard_size, replace)
    stored = {"dataset": settings.relative(dataset.root, "data"),
              "out": settings.relative(params["out"], "data"),
              "sizes": sizes, "shard_size": shard_size, "crop": crop, "workers": workers,
              "replace": replace}
    return Plan(params=stored,
                tasks=[PlannedTask(item=0, total=len(dataset) + len(dataset.excluded))])


def build_shards(context: TaskContext) -> TaskOutcome:
    from featurechanger.data.shards import build_shards as build

    params, settings = context.params, context.settings
    # A Celery pool process is a daemon and may not start processes: decode in it alone there
    # (the worker's other pool processes are the parallelism); in-process, use every core.
    workers = 1 if multiprocessing.current_process().daemon else params.get("workers")

    def on_shard(images: int) -> None:  # the job's progress; a cancel stops between shards
        context.progress(images, 0)
        if context.should_stop():
            raise TaskStopped(f"task {context.task_id} was cancelled or given to another "
                              f"worker after {images} images; a rerun skips their shards")

    shard_set = build(settings.resolve(params["dataset"], "data"),
                      settings.resolve(params["out"], "data"), sizes=params["sizes"],
                      shard_size=params["shard_size"], crop=params["crop"], workers=workers,
                      progress=context.progress_bars, replace=params.get("replace", False),
                      on_shard=on_shard)
    excluded = [ItemResult(item["image_id"], None, item["reason"]) for item in shard_set.excluded]
    return TaskOutcome(done=shard_set.num_images, failed=len(excluded), results=excluded,
                       outputs={"shard_set": params["out"], "shards": shard_set.num_shards},
                       records={"shard_set_id": shard_set_id(settings, shard_set)})
