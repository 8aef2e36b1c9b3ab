"""`featurechanger interpolate`: a looping GIF of an edit growing on one image, or of one image
turning into another."""

from __future__ import annotations

import click

from orchestrator.commands.vectors import data_option, device_option
from orchestrator.output import emit, json_option, settings_from_context


@click.command()
@click.option("--run", "run_id", type=int, required=True, metavar="RUN",
              help="The training run whose model draws the frames.")
@click.option("--image", "image_id", metavar="ID",
              help="The image to edit (with --add/--remove).")
@click.option("--add", multiple=True, metavar="ATTR", help="Attribute to add (repeatable).")
@click.option("--remove", multiple=True, metavar="ATTR", help="Attribute to remove (repeatable).")
@click.option("--from", "start_id", metavar="ID", help="Image-to-image: the first image.")
@click.option("--to", "end_id", metavar="ID", help="Image-to-image: the last image.")
@click.option("--frames", type=int, default=20, show_default=True)
@click.option("--strength", type=float, metavar="S",
              help="Fixed edit strength of the last frame (the seed's GIFs used 2) [default: "
                   "the edit default, see `featurechanger edit --help`].")
@click.option("--margin", type=float, metavar="K",
              help="Adaptive edit instead of --strength: move each face to K within-class "
                   "spreads past the other class's mean along the vector (see docs).")
@click.option("--vectors", "vector_set_id", type=int, metavar="ID",
              help="Vector set to use [default: the run's newest plain one].")
@data_option
@click.option("--out", type=click.Path(dir_okay=False), required=True, metavar="FILE.gif")
@device_option
@json_option
@click.pass_context
def interpolate(ctx: click.Context, run_id: int, image_id: str | None, add: tuple[str, ...],
                remove: tuple[str, ...], start_id: str | None, end_id: str | None, frames: int,
                strength: float | None, margin: float | None, vector_set_id: int | None, data: str | None, out: str,
                device: str, as_json: bool) -> None:
    """Write a looping GIF (256 px, 100 ms a frame) of z -> z' (the edit) for one image
    (--image ID --add/--remove ATTR), or of z_a -> z_b between two (--from ID --to ID)."""
    pair = start_id is not None or end_id is not None
    if pair == (image_id is not None) or (pair and (start_id is None or end_id is None)):
        raise click.UsageError("Give either --image ID with --add/--remove ATTR, or both "
                               "--from ID and --to ID.")
    from featurechanger.editing.batch import edit_frames, pair_frames
    from featurechanger.editing.inputs import images_by_id, run_shard_set
    from featurechanger.latent.edits import EditSpec, edit_amount, edit_latents
    from featurechanger.latent.store import vector_set_for_run
    from featurechanger.render.gif import write_gif
    from featurechanger.training.device import pick_device
    from featurechanger.training.runs import load_run_model

    settings = settings_from_context(ctx)
    spec = None if pair else EditSpec.parse(add, remove, *edit_amount(strength, margin))
    vectors = None if pair else vector_set_for_run(settings, run_id, vector_set_id)
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
