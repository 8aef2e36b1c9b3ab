"""`featurechanger edit`: a dataset-wide attribute edit, as a job, or an edit of a folder of
photos.

With a broker the job is queued to the workers and the command prints its id at once; without
one it runs here, with the same job code, and returns when it is done. A folder (`--images`)
has no shards to fan out over: it is always edited here.
"""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.commands.vectors import keep_option, vectors_option
from orchestrator.output import RECORD_ID, emit, settings_from_context
from orchestrator.submit import submit_job, submit_options

SPLITS = ("all", "train", "val", "test")


@click.command()
@click.option("--run", "run_id", type=RECORD_ID, required=True,
              help="Training run whose checkpoint encodes and decodes (`featurechanger runs "
                   "list`). The job keeps the checkpoint it had at submit time.")
@click.option("--data", type=click.Path(file_okay=False),
              help="Shard set of the images to edit (`featurechanger data shard`).")
@click.option("--images", type=click.Path(file_okay=False), metavar="DIR",
              help="Instead of --data: edit every photo directly in DIR (.jpg, .jpeg, .png; no "
                   "attribute file needed), here rather than as a job. Photos must be aligned "
                   "and cropped like CelebA's: aspect 178:218 (within 2%), any size from the "
                   "model's resolution up; others are skipped and listed.")
@click.option("--add", multiple=True, metavar="ATTR", help="Attribute to add (repeatable).")
@click.option("--remove", multiple=True, metavar="ATTR",
              help="Attribute to remove, e.g. Eyeglasses (repeatable).")
@click.option("--strength", type=float, metavar="S",
              help="Fixed edit: move every face S times the attribute vectors (the seed's "
                   "method; 1.5 was its default).")
@click.option("--margin", type=float, metavar="K",
              help="Adaptive edit (the default): move each face along the vector until its "
                   "linear-discriminant score is K within-class spreads past the other class's "
                   "mean (below 0: short of it); K = -0.5 for a removal with blend output "
                   "(its band and refiner do the rest), 8 to add Smiling (the latent holds a "
                   "smile faintly), else 2. Give --strength or --margin, not both.")
@keep_option
@vectors_option
@click.option("--where", multiple=True, metavar="ATTR=0|1",
              help="Only images with (1) or without (0) the attribute, e.g. --where "
                   "Eyeglasses=1 (repeatable; all must hold).")
@click.option("--split", type=click.Choice(SPLITS), default="all", show_default=True,
              help="Only images of this split.")
@click.option("--output", type=click.Choice(["blend", "residual", "decoded"]), default="blend",
              show_default=True,
              help="blend: for a removal, the model's edit with its detail restored inside the "
                   "removed object's band (`featurechanger localiser train` places the band, "
                   "`featurechanger refiner train` restores the detail) and the "
                   "full-resolution photo elsewhere; for an addition, the model's edit where "
                   "it changed the photo beyond its own error (adding Smiling, whose change is "
                   "mostly fainter, its fainter changes too, added to the photo); "
                   "residual: photo + upsampled (decode(z') - decode(z)), every detail kept; "
                   "decoded: the model's own low-resolution image.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder for the edited images (one PNG per input, named after its id), "
                   "manifests/ (one per shard) and contact_sheet.png.")
@submit_options
@click.pass_context
def edit(ctx: click.Context, run_id: int, data: str | None, images: str | None,
         add: tuple[str, ...], remove: tuple[str, ...], strength: float | None,
         margin: float | None, keep: tuple[str, ...], vector_set_id: int | None,
         where: tuple[str, ...], split: str, output: str, out: str, queue: str | None,
         wait: bool, as_json: bool) -> None:
    """Edit every selected image of a shard set, e.g. remove glasses from all who wear them:

    \b
        featurechanger edit --run 1 --data shards --remove Eyeglasses \\
            --where Eyeglasses=1 --keep Male --out glasses-off

    `featurechanger jobs show ID --failed` lists images that failed, and why. A blended
    removal needs the removed objects' localisers (`featurechanger localiser train`) and the
    run's refiners (`featurechanger refiner train`).
    """
    if (data is None) == (images is None):
        raise click.UsageError("Give either --data SHARDS (a dataset-wide job) or --images DIR "
                               "(a folder of photos).")
    if images is not None:
        if where or split != "all" or queue or wait:
            raise click.UsageError("--where, --split, --queue and --wait apply to --data jobs; "
                                   "--images edits every photo in the folder, here.")
        edit_folder(ctx, run_id, images, add, remove, strength, margin, keep, vector_set_id,
                    output, out, as_json)
        return
    params = {"run": run_id, "data": data, "add": list(add), "remove": list(remove),
              "strength": strength, "margin": margin, "keep": list(keep), "vectors": vector_set_id,
              "where": list(where), "split": split, "output": output, "out": out}
    submit_job(ctx, "edit", params, queue=queue, wait=wait, as_json=as_json)


def edit_folder(ctx: click.Context, run_id: int, images: str, add: tuple[str, ...],
                remove: tuple[str, ...], strength: float | None, margin: float | None,
                keep: tuple[str, ...], vector_set_id: int | None, output: str, out: str,
                as_json: bool) -> None:
    """Edit the photos in `images` in this process; exit 2 when some could not be edited."""
    from featurechanger.editing.bands import load_removal, part_names, removal_parts
    from featurechanger.editing.batch import edit_image_folder
    from featurechanger.editing.inputs import run_shard_set
    from featurechanger.jobs.edit import choose_edit
    from featurechanger.models.checkpoint import load_checkpoint
    from featurechanger.training.device import pick_device
    from featurechanger.training.runs import latest_checkpoint

    settings = settings_from_context(ctx)
    spec, vectors = choose_edit(settings, run_id, {
        "add": add, "remove": remove, "strength": strength, "margin": margin, "keep": keep,
        "vectors": vector_set_id}, output)
    training_shards = run_shard_set(settings, run_id)
    checkpoint = latest_checkpoint(settings, run_id)
    parts = removal_parts(settings, training_shards, checkpoint, run_id, spec, output)
    device = pick_device("auto")
    outcomes = edit_image_folder(
        Path(images), model=load_checkpoint(checkpoint, device), vectors=vectors,
        spec=spec, out_dir=Path(out), output=output, removal=load_removal(parts, run_id),
        crop=training_shards.crop, device=device)
    failed = [{"image_id": o.image_id, "error": o.error} for o in outcomes if o.error]
    emit({"run_id": run_id, "checkpoint": str(checkpoint), "vector_set_id": vectors.id,
          "edit": spec.describe(),
          "output": output, **part_names(parts),
          "out": str(Path(out)), "done": len(outcomes) - len(failed), "failed": failed},
         as_json, _describe_folder)
    if failed:
        ctx.exit(2)


def _describe_folder(payload: dict) -> str:
    lines = [f"Edited {payload['done']} photos ({payload['edit']}) into {payload['out']}."]
    lines += [f"  not edited: {f['image_id']}: {f['error']}" for f in payload["failed"]]
    return "\n".join(lines)
