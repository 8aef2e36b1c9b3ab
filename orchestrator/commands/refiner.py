"""`featurechanger refiner train`: the detail a run's decoder cannot draw, restored in a band."""

from __future__ import annotations

import click

from orchestrator.commands.vectors import data_option, device_option, precision_option
from orchestrator.output import RECORD_ID, emit, json_option, settings_from_context


@click.group()
def refiner() -> None:
    """Refiners that fill a removed object's band when `edit` and `evaluate` blend a removal:
    the decoded edit there, with the detail the run's model cannot draw restored."""


@refiner.command()
@click.option("--run", "run_id", type=RECORD_ID, required=True,
              help="The run whose edits to refine.")
@click.option("--attribute", "attributes", multiple=True, required=True, metavar="ATTR",
              help="Attribute whose removal to refine: Eyeglasses, the object whose place "
                   "on a face it knows (repeatable: one refiner each).")
@data_option
@click.option("--epochs", type=click.IntRange(min=1), default=2, show_default=True,
              help="Passes over the train faces without the attribute (on 15,000 synthetic "
                   "faces, about 5 min in bf16 and 7 in fp32 on 2 CPU cores).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--see-through/--no-see-through", default=False, show_default=True,
              help="Also show the net the photo inside the band, with spectacles drawn over "
                   "it in training, so that it keeps what they leave uncovered: sharper eyes "
                   "and 2 points more of the other attributes kept on validation, but about 8 "
                   "points fewer glasses removed, so not the default "
                   "(docs/CHOOSING-THE-EDIT.md, \"A see-through refiner\").")
@click.option("--occluded/--no-occluded", default=False, show_default=True,
              help="Train on the model's reconstructions of faces with spectacles drawn on "
                   "(the photo around the band shows them too), as glasses are removed: "
                   "with the DCAE on validation, more glasses removed and a little more of "
                   "Male kept, but a band the judge calls blurry far more often; with the "
                   "PGAE, less of Male and the other attributes kept, so not the default "
                   "(docs/CHOOSING-THE-EDIT.md, \"A refiner trained on faces wearing drawn "
                   "spectacles\" and \"The occluded refiner again\").")
@device_option
@precision_option
@json_option
@click.pass_context
def train(ctx: click.Context, run_id: int, attributes: tuple[str, ...], data: str | None,
          epochs: int, seed: int, see_through: bool, occluded: bool, device: str,
          precision: str, as_json: bool) -> None:
    """Train a small U-Net per attribute on the run's own reconstructions of training faces
    WITHOUT the attribute: the photo with the band of the eyes replaced by the reconstruction
    in, the photo out. It learns to restore the detail this decoder blurs, and never sees the
    object it will remove. Needs the shard set's 64 px images and landmarks. Saved beside the
    run's latest checkpoint, where `edit` and `evaluate` look for it (train it again after the
    run trains further)."""
    from featurechanger.attributes import canonical_attribute
    from featurechanger.editing.bands import refiner_path
    from featurechanger.editing.inputs import run_shard_set
    from featurechanger.editing.refiner import save_refiner, train_refiner
    from featurechanger.models.checkpoint import load_checkpoint
    from featurechanger.training.device import pick_device
    from featurechanger.training.runs import latest_checkpoint

    settings = settings_from_context(ctx)
    names = [canonical_attribute(name) for name in attributes]  # all checked before training
    shard_set = run_shard_set(settings, run_id, data)
    checkpoint = latest_checkpoint(settings, run_id)
    torch_device = pick_device(device)
    # The model of the very checkpoint the refiner is saved beside, not a second lookup.
    model = load_checkpoint(checkpoint, torch_device)
    trained = {}
    for name in names:
        refined = train_refiner(model, shard_set, name, epochs=epochs, seed=seed,
                                see_through=see_through, occluded=occluded,
                                device=torch_device, precision=precision)
        path = save_refiner(refiner_path(checkpoint, name), refined, source=str(shard_set.path))
        trained[name] = {"path": str(path), "band_error": refined.band_error,
                         "precision": refined.precision}
    emit({"run_id": run_id, "data": str(shard_set.path), "epochs": epochs,
          "refiners": trained}, as_json, _describe)


def _describe(payload: dict) -> str:
    lines = [f"Refiners of run {payload['run_id']} (mean absolute error in validation bands, "
             "0-255: the decoder's own / refined):"]
    for name, found in payload["refiners"].items():
        error = found["band_error"]
        lines.append(f"  {name:<20} {255 * error['decoded']:.1f} / {255 * error['refined']:.1f}"
                     f"  {found['path']}")
    return "\n".join(lines)
