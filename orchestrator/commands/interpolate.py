"""`featurechanger interpolate`: a looping GIF of an edit growing on one image, or of one image
turning into another; or, as an interpolate job, such GIFs in bulk (one per selected image, or
one per pair listed in a file)."""

from __future__ import annotations

from pathlib import Path

import click

from featurechanger.render.gif import DEFAULT_FRAMES
from orchestrator.commands.vectors import (data_option, device_option, keep_option,
                                           margin_option, vectors_option)
from orchestrator.output import RECORD_ID, emit, settings_from_context
from orchestrator.submit import submit_job, submit_options

SPLITS = ("all", "train", "val", "test")
FORMS = ("Give one of: --image ID with --add/--remove ATTR (one GIF); --from ID --to ID (one "
         "GIF); --where ATTR=0|1 and/or --split with --add/--remove ATTR (a GIF per selected "
         "image, as a job); --pairs FILE (a GIF per listed pair, as a job).")


@click.command()
@click.option("--run", "run_id", type=RECORD_ID, required=True, metavar="RUN",
              help="The training run whose model draws the frames.")
@click.option("--image", "image_id", metavar="ID",
              help="The image to edit (with --add/--remove).")
@click.option("--add", multiple=True, metavar="ATTR", help="Attribute to add (repeatable).")
@click.option("--remove", multiple=True, metavar="ATTR", help="Attribute to remove (repeatable).")
@click.option("--from", "start_id", metavar="ID", help="Image-to-image: the first image.")
@click.option("--to", "end_id", metavar="ID", help="Image-to-image: the last image.")
@click.option("--where", multiple=True, metavar="ATTR=0|1",
              help="Bulk: a GIF for every image with (1) or without (0) the attribute, e.g. "
                   "--where Eyeglasses=1 (repeatable; all must hold), as with `edit`.")
@click.option("--split", type=click.Choice(SPLITS),
              help="Bulk: a GIF for every image of this split (with --where: those matching).")
@click.option("--pairs", type=click.Path(dir_okay=False, exists=True), metavar="FILE",
              help="Bulk: a GIF per line 'ID_A ID_B' of FILE, ID_A turning into ID_B "
                   "(OUT/<a>_to_<b>.gif).")
@keep_option
@click.option("--frames", type=click.IntRange(min=2), default=DEFAULT_FRAMES, show_default=True,
              help="Frames in each GIF, the first and last included (identical consecutive "
                   "frames are stored once, shown as long).")
@click.option("--strength", type=float, metavar="S",
              help="Fixed edit strength of the last frame (the seed's GIFs used 2) [default: "
                   "the edit default, see `featurechanger edit --help`].")
@margin_option
@vectors_option
@data_option
@click.option("--out", type=click.Path(), required=True, metavar="FILE.gif|DIR",
              help="The GIF; for the bulk forms, the folder of GIFs (<id>.gif) and manifests/.")
@device_option
@submit_options
@click.pass_context
def interpolate(ctx: click.Context, run_id: int, image_id: str | None, add: tuple[str, ...],
                remove: tuple[str, ...], start_id: str | None, end_id: str | None,
                where: tuple[str, ...], split: str | None, pairs: str | None,
                keep: tuple[str, ...], frames: int, strength: float | None,
                margin: float | None, vector_set_id: int | None, data: str | None, out: str,
                device: str, queue: str | None, wait: bool, as_json: bool) -> None:
    """Write a looping GIF (256 px, 100 ms a frame) of z -> z' (the edit) for one image
    (--image ID --add/--remove ATTR), or of z_a -> z_b between two (--from ID --to ID).

    In bulk, as an interpolate job (queued to the workers when FEATURECHANGER_BROKER_URL is
    set, else run here): a GIF per image selected by --where/--split, e.g.

    \b
        featurechanger interpolate --run 1 --where Eyeglasses=1 --remove Eyeglasses --out gifs

    or a GIF per pair of image ids listed in --pairs FILE.
    """
    pair = start_id is not None or end_id is not None
    bulk = pairs is not None or bool(where) or split is not None
    if [pair, image_id is not None, bulk].count(True) != 1 or (
            pair and (start_id is None or end_id is None)):
        raise click.UsageError(FORMS)
    if pair or pairs is not None:
        _refuse_edit_options(add=add, remove=remove, keep=keep)
    if bulk:
        _submit_bulk(ctx, run_id=run_id, data=data, out=out, frames=frames, pairs=pairs,
                     edit={"add": list(add), "remove": list(remove), "strength": strength,
                           "margin": margin, "keep": list(keep), "vectors": vector_set_id,
                           "where": list(where), "split": split or "all"},
                     device=device, queue=queue, wait=wait, as_json=as_json)
        return
    if queue is not None or wait:
        raise click.UsageError("--queue and --wait are for the bulk forms (--where, --split, "
                               "--pairs); a single GIF is made here.")
    if Path(out).suffix.lower() != ".gif":
        raise click.BadParameter(f"{out!r} does not end in .gif: a single GIF is a file "
                                 f"(the bulk forms write a folder of them).", param_hint="--out")
    from featurechanger.editing.batch import edit_frames, pair_frames
    from featurechanger.editing.inputs import images_by_id, run_shard_set
    from featurechanger.latent.edits import EditSpec, edit_amount, edit_latents
    from featurechanger.latent.store import vector_set_for_run
    from featurechanger.render.gif import write_gif
    from featurechanger.training.device import pick_device
    from featurechanger.training.runs import load_run_model

    settings = settings_from_context(ctx)
    spec = None if pair else EditSpec.parse(add, remove, *edit_amount(strength, margin))
    vectors = None if pair else vector_set_for_run(settings, run_id, vector_set_id, keep)
    torch_device = pick_device(device)
    model = load_run_model(settings, run_id, torch_device)
    shard_set = run_shard_set(settings, run_id, data)
    if pair:
        images = images_by_id(shard_set, model.resolution, [start_id, end_id]).images
        sequence = pair_frames(model, images[0], images[1], frames, device=torch_device)
    else:
        images = images_by_id(shard_set, model.resolution, [image_id]).images
        sequence = edit_frames(model, images, lambda z: edit_latents(z, vectors, spec), frames,
                               device=torch_device)[0]
    path = write_gif(list(sequence), out)
    payload = {"out": str(path), "run_id": run_id, "frames": frames,
               "from": start_id if pair else image_id, "to": end_id if pair else None,
               "edit": None if pair else spec.to_json(),
               "vector_set_id": None if pair else vectors.id}
    emit(payload, as_json, lambda p: f"Wrote {p['out']} ({frames} frames).")


def _refuse_edit_options(**given: tuple[str, ...]) -> None:
    """Morphing one image into another edits no attribute: say so rather than ignore them."""
    named = [f"--{name}" for name, values in given.items() if values]
    if named:
        raise click.UsageError(f"--from/--to and --pairs morph one image into another; "
                               f"{', '.join(named)} belong to the edit forms (--image, "
                               f"--where/--split).")


def _submit_bulk(ctx: click.Context, *, run_id: int, data: str | None, out: str, frames: int,
                 pairs: str | None, edit: dict, device: str, queue: str | None, wait: bool,
                 as_json: bool) -> None:
    """Submit the interpolate job: the listed pairs, or the edit on the selected images."""
    params = {"run": run_id, "data": data, "out": out, "frames": frames}
    if pairs is not None:
        params["pairs"] = pairs
    else:
        params.update(edit)
    submit_job(ctx, "interpolate", params, queue=queue, wait=wait, as_json=as_json,
               device=None if device == "auto" else device)
