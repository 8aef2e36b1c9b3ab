"""The interpolate job: GIFs in bulk. Either one GIF per selected image, the edit of an
attribute growing from nothing to its strength (one task per shard, selected as an edit job
selects), or one GIF per pair of images listed in a file, morphing the first into the second
(tasks of PAIRS_PER_TASK pairs). Outputs go to OUT/<id>.gif or OUT/<a>_to_<b>.gif.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featurechanger.config import Settings
from featurechanger.errors import ConfigError, DataError
from featurechanger.jobs.context import Plan, PlannedTask, TaskContext, TaskOutcome
from featurechanger.jobs.edit import choose_edit, run_checkpoint, selected_images
from featurechanger.jobs.loading import job_model, job_shard_set
from featurechanger.jobs.per_image import process_items
from featurechanger.jobs.selection import parse_where, plan_shards, shard_set_id

PAIRS_PER_TASK = 64


def plan(settings: Settings, params: dict[str, Any]) -> Plan:
    """params: run, data (default: the run's shard set), out, frames, and either pairs (a file
    of "ID_A ID_B" lines) or the edit of an attribute (add, remove, strength or margin, keep,
    vectors) with where and split."""
    from featurechanger.editing.inputs import run_shard_set
    from featurechanger.render.gif import DEFAULT_FRAMES

    frames = params.get("frames", DEFAULT_FRAMES)
    if not isinstance(frames, int) or frames < 2:
        raise ConfigError(f"--frames must be a whole number of at least 2, not {frames!r}.")
    if Path(params["out"]).is_file():
        raise ConfigError(f"--out {params['out']!r} is a file; an interpolate job writes a "
                          f"folder of GIFs (<id>.gif) there.")
    run_id, checkpoint = run_checkpoint(settings, params["run"])
    shard_set = run_shard_set(settings, run_id, params.get("data"))
    stored = {"run": run_id, "checkpoint": checkpoint, "frames": frames,
              "data": settings.relative(shard_set.path, "data"), "grouping": shard_set.grouping,
              "out": settings.relative(params["out"], "output")}
    records = {"run_id": run_id, "shard_set_id": shard_set_id(settings, shard_set)}
    if params.get("pairs"):
        pairs = read_pairs(Path(params["pairs"]), shard_set)
        tasks = [PlannedTask(item, len(pairs[start:start + PAIRS_PER_TASK]))
                 for item, start in enumerate(range(0, len(pairs), PAIRS_PER_TASK))]
        return Plan(params={**stored, "pairs": pairs}, tasks=tasks, **records)
    spec, vectors = choose_edit(settings, run_id, params)
    split, where = params.get("split", "all"), parse_where(params.get("where", ()))
    stored.update({"vectors": vectors.id, "spec": spec.to_json(), "edit": spec.describe(),
                   "split": split, "where": where})
    return Plan(params=stored, tasks=plan_shards(shard_set, split, where),
                vector_set_id=vectors.id, **records)


def read_pairs(path: Path, shard_set: Any) -> list[list[str]]:
    """[[id_a, id_b], ...] from a file of "ID_A ID_B" lines (or "ID_A,ID_B"; # comments)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise DataError(f"Cannot read the pairs file {str(path)!r}: {error}.") from error
    pairs = []
    for number, line in enumerate(lines, start=1):
        fields = line.split("#")[0].replace(",", " ").split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DataError(f"{str(path)!r} line {number}: expected two image ids "
                            f"(e.g. 000001.jpg 000002.jpg), found {line.strip()!r}.")
        pairs.append(fields)
    if not pairs:
        raise DataError(f"The pairs file {str(path)!r} lists no pairs of image ids.")
    known = {i for index in range(shard_set.num_shards)
             for i in shard_set.shard(index, shard_set.sizes[0]).image_ids}
    missing = sorted({i for pair in pairs for i in pair} - known)
    if missing:
        raise DataError(f"{len(missing)} image ids of {str(path)!r} are not in "
                        f"{str(shard_set.path)!r}, e.g. {missing[0]!r}.")
    return pairs


def make_gifs(context: TaskContext) -> TaskOutcome:
    """The GIFs of one task: pairs when the job lists pairs, else one per selected image."""
    if "pairs" in context.params:
        return _pair_gifs(context)
    return _attribute_gifs(context)


def _attribute_gifs(context: TaskContext) -> TaskOutcome:
    from featurechanger.editing.batch import interpolate_shard
    from featurechanger.editing.inputs import take
    from featurechanger.latent.edits import EditSpec
    from featurechanger.latent.store import load_vector_set

    settings, params = context.settings, context.params
    model = job_model(context)
    arrays = selected_images(context, model.resolution)
    vectors = load_vector_set(settings, params["vectors"])
    spec = EditSpec.from_json(params["spec"])

    def gifs(rows: list[int]) -> list:
        return interpolate_shard(take(arrays, rows), model=model, vectors=vectors, spec=spec,
                                 out_dir=settings.resolve(params["out"], "output"),
                                 frames=params["frames"], device=context.torch_device())

    return process_items(context, arrays.image_ids, gifs, f"shard-{context.item:05d}.json",
                         chunk=32)


def _pair_gifs(context: TaskContext) -> TaskOutcome:
    from featurechanger.editing.batch import interpolate_pairs
    from featurechanger.editing.inputs import images_by_id

    settings, params = context.settings, context.params
    start = context.item * PAIRS_PER_TASK
    pairs = [tuple(pair) for pair in params["pairs"][start:start + PAIRS_PER_TASK]]
    model = job_model(context)
    arrays = images_by_id(job_shard_set(context), model.resolution,
                          [image_id for pair in pairs for image_id in pair])
    images = dict(zip(arrays.image_ids, arrays.images))

    def gifs(rows: list[int]) -> list:
        return interpolate_pairs([pairs[row] for row in rows], images, model=model,
                                 out_dir=settings.resolve(params["out"], "output"),
                                 frames=params["frames"], device=context.torch_device())

    # The library names a pair's GIF "<a>_to_<b>" (image ids without their suffix).
    names = [f"{Path(first).stem}_to_{Path(second).stem}" for first, second in pairs]
    return process_items(context, names, gifs, f"pairs-{context.item:05d}.json", chunk=32)
