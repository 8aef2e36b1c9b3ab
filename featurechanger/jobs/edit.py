"""The edit job: a dataset-wide attribute edit ("remove Eyeglasses"), one task per shard, then a
before/after contact sheet of a sample of the results.

The plan fixes exactly what the job uses: the run's checkpoint at submit time (not whatever the
run reaches later), the vector set, the shard set and the selection. A task edits the selected
images of its shard (see featurechanger.jobs.per_image: a rerun does only what is missing, and
each shard gets a manifest); the editing library writes each output under a temporary name and
renames it; the task's results are written in one statement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featurechanger.config import Settings
from featurechanger.jobs.context import Plan, TaskContext, TaskOutcome
from featurechanger.jobs.loading import job_model, job_shard_set
from featurechanger.jobs.per_image import process_items
from featurechanger.jobs.selection import parse_where, plan_shards, selected, shard_set_id

SHEET_PAIRS = 8  # before/after rows on the contact sheet
SHEET_NAME = "contact_sheet.png"


def plan(settings: Settings, params: dict[str, Any]) -> Plan:
    """params: run, data, add, remove, strength, keep, vectors (id, optional), where (ATTR=0|1
    strings), split (default all), output (default blend), out. A blended removal also fixes
    the localisers of the run's training shards that place the removed objects and the
    refiners of the run's checkpoint that fill their bands."""
    from featurechanger.data.shards import open_shard_set
    from featurechanger.editing.bands import removal_parts
    from featurechanger.editing.inputs import (check_output_folder, dataset_photo_folders,
                                               run_shard_set)
    from featurechanger.render.compose import check_output_mode

    output = params.get("output", "blend")
    check_output_mode(output)
    run_id, checkpoint = run_checkpoint(settings, params["run"])
    spec, vectors = choose_edit(settings, run_id, params, output)
    shard_set = open_shard_set(params["data"])
    check_output_folder(params["out"], dataset_photo_folders(shard_set))
    split, where = params.get("split", "all"), parse_where(params.get("where", ()))
    tasks = plan_shards(shard_set, split, where)
    # The refiners of the very checkpoint the job keeps, not a second lookup of the latest.
    parts = removal_parts(settings, run_shard_set(settings, run_id),
                          settings.resolve(checkpoint, "checkpoint"), run_id, spec, output)
    stored = {
        "run": run_id, "checkpoint": checkpoint, "vectors": vectors.id,
        "spec": spec.to_json(), "edit": spec.describe(),
        "data": settings.relative(shard_set.path, "data"), "grouping": shard_set.grouping,
        "dataset_root": settings.relative(shard_set.dataset_root, "data"),
        "split": split, "where": where, "output": output,
        **{kind: {name: settings.relative(path, "checkpoint") for name, path in paths.items()}
           for kind, paths in parts.items()},  # localisers, refiners
        "out": settings.relative(params["out"], "output"),
    }
    return Plan(params=stored, tasks=tasks, run_id=run_id,
                vector_set_id=vectors.id, shard_set_id=shard_set_id(settings, shard_set))


def run_checkpoint(settings: Settings, run_id: int) -> tuple[int, str]:
    """The run's id and its latest checkpoint as stored (relative to the checkpoint root): a
    job keeps the checkpoint it was submitted with, whatever the run reaches later."""
    from featurechanger.training.runs import get_run, run_checkpoint_path

    run = get_run(settings, run_id)
    return run.id, settings.relative(run_checkpoint_path(settings, run), "checkpoint")


def choose_edit(settings: Settings, run_id: int, params: dict[str, Any],
                output: str | None = None) -> tuple[Any, Any]:
    """The EditSpec of params add/remove/strength or margin (neither: the default edit for
    `output`, None for pictures at the model's resolution), and the vector set (params
    vectors, or the run's newest matching params keep) that has a vector for each of its
    attributes."""
    from featurechanger.editing.bands import is_banded
    from featurechanger.latent.edits import EditSpec, edit_amount
    from featurechanger.latent.store import vector_set_for_run

    add, remove = params.get("add", ()), params.get("remove", ())
    spec = EditSpec.parse(add, remove, *edit_amount(
        params.get("strength"), params.get("margin"),
        banded_removal=is_banded(output, add, remove)))
    vectors = vector_set_for_run(settings, run_id, params.get("vectors"),
                                 tuple(params.get("keep", ())))
    for name in spec.attributes:
        vectors.vector(name)  # a ConfigError now, rather than in every task
    return spec, vectors


def edit_shard(context: TaskContext) -> TaskOutcome:
    """Edit the selected images of shard `context.item` that have no output yet."""
    from featurechanger.editing.batch import edit_shard as edit_images
    from featurechanger.editing.inputs import take
    from featurechanger.editing.bands import load_removal
    from featurechanger.latent.edits import EditSpec
    from featurechanger.latent.store import load_vector_set

    settings, params = context.settings, context.params
    model = job_model(context)
    arrays = selected_images(context, model.resolution)
    vectors = load_vector_set(settings, params["vectors"])
    spec = EditSpec.from_json(params["spec"])
    removal = load_removal({kind: {name: settings.resolve(path, "checkpoint")
                                   for name, path in params.get(kind, {}).items()}
                            for kind in ("localisers", "refiners")}, params["run"])

    def edit(rows: list[int]) -> list:
        return edit_images(take(arrays, rows), model=model, vectors=vectors, spec=spec,
                           dataset_root=settings.resolve(params["dataset_root"], "data"),
                           out_dir=settings.resolve(params["out"], "output"),
                           output=params["output"], removal=removal,
                           device=context.torch_device())

    return process_items(context, arrays.image_ids, edit, f"shard-{context.item:05d}.json")


def contact_sheet(context: TaskContext) -> TaskOutcome:
    """A sheet of before/after pairs for a sample of the job's edited images."""
    from featurechanger.editing.batch import read_photo
    from featurechanger.jobs.store import sample_results
    from featurechanger.render.sheet import labelled_sheet, save_sheet

    settings, params = context.settings, context.params
    made = {"out": params["out"]}
    sample = sample_results(settings.database_url, context.job_id, SHEET_PAIRS)
    if not sample:
        return TaskOutcome(done=0, outputs=made)
    shard_set = job_shard_set(context)
    dataset_root = settings.resolve(params["dataset_root"], "data")
    rows, labels = [], []
    for item, image_id, output in sample:
        arrays = shard_set.shard(item, shard_set.sizes[0])
        source = arrays.source_paths[arrays.image_ids.index(image_id)]
        rows.append([read_photo(dataset_root / source),
                     read_photo(settings.resolve(output, "output"))])
        labels.append(Path(image_id).stem)
    path = settings.resolve(params["out"], "output") / SHEET_NAME
    save_sheet(labelled_sheet(rows, ["before", "after"], labels, cell=128), path)
    return TaskOutcome(done=0, outputs={**made, "contact_sheet": settings.relative(path, "output")})


def selected_images(context: TaskContext, resolution: int) -> Any:
    """The images of the task's shard that the job selected (params split and where)."""
    arrays = job_shard_set(context).shard(context.item, resolution)
    return arrays.select(selected(arrays, context.params["split"], context.params["where"]))
