"""`featurechanger grid`: the seed's feature grid (rows: images; columns: original,
reconstruction, one edit per attribute), as one labelled PNG."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from orchestrator.commands.vectors import (data_option, device_option, keep_option,
                                           margin_option, vectors_option)
from orchestrator.output import (IMAGE_SUFFIXES, RECORD_ID, OutputFile, emit, json_option,
                                 settings_from_context)

if TYPE_CHECKING:
    from featurechanger.latent.edits import EditSpec


def comma_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@click.command()
@click.option("--run", "run_id", type=RECORD_ID, required=True, metavar="RUN",
              help="The training run whose model draws the grid.")
@click.option("--images", "image_ids", required=True, metavar="ID,...",
              help="Image ids, comma-separated (e.g. 000001.jpg,000002.jpg): one row each.")
@click.option("--attributes", required=True, metavar="A,...",
              help="Attributes, comma-separated: one column each, added at --strength; a "
                   "leading '-' removes it instead (e.g. Smiling,-Eyeglasses).")
@click.option("--strength", type=float, metavar="S",
              help="Fixed edit: how far each edit moves, in units of the attribute's vector "
                   "[default: the edit default, see `featurechanger edit --help`].")
@margin_option
@keep_option
@vectors_option
@data_option
@click.option("--out", type=OutputFile(*IMAGE_SUFFIXES), required=True, metavar="FILE.png",
              help="The grid image (.png, or .jpg).")
@device_option
@json_option
@click.pass_context
def grid(ctx: click.Context, run_id: int, image_ids: str, attributes: str,
         strength: float | None, margin: float | None, keep: tuple[str, ...],
         vector_set_id: int | None,
         data: str | None, out: str, device: str, as_json: bool) -> None:
    """Draw a feature grid: every image with every attribute edit, at the model's resolution."""
    from featurechanger.editing.batch import decode_spec_edit
    from featurechanger.editing.inputs import images_by_id, run_shard_set
    from featurechanger.latent.edits import edit_amount
    from featurechanger.latent.store import vector_set_for_run
    from featurechanger.render.sheet import feature_grid, save_sheet
    from featurechanger.training.device import pick_device
    from featurechanger.training.runs import load_run_model

    settings = settings_from_context(ctx)
    amount = edit_amount(strength, margin)
    specs = [_column_spec(name, *amount) for name in comma_list(attributes)]
    ids = comma_list(image_ids)
    if not specs or not ids:
        raise click.UsageError("Give at least one image id and one attribute.")
    labels = [_label(spec) for spec in specs]
    repeated = next((label for label in labels if labels.count(label) > 1), None)
    if repeated is not None:
        raise click.UsageError(f"--attributes lists {repeated} twice; one column each.")
    vectors = vector_set_for_run(settings, run_id, vector_set_id, keep)
    torch_device = pick_device(device)
    model = load_run_model(settings, run_id, torch_device)
    arrays = images_by_id(run_shard_set(settings, run_id, data), model.resolution, ids)
    columns = {}
    for spec in specs:
        reconstructions, columns[_label(spec)] = decode_spec_edit(
            model, arrays.images, vectors, spec, device=torch_device)
    path = save_sheet(feature_grid(arrays.images, reconstructions, columns, ids), out)
    # "edit" is the first column's, as before "edits" listed every column's.
    emit({"out": str(path), "run_id": run_id, "vector_set_id": vectors.id, "images": ids,
          "columns": list(columns), "edit": specs[0].to_json(),
          "edits": [spec.to_json() for spec in specs]}, as_json,
         lambda p: f"Wrote {p['out']} ({len(ids)} images x {len(columns)} edits, vector set "
                   f"{p['vector_set_id']}).")


def _column_spec(name: str, strength: float, margin: float | None,
                 addition_margins: dict[str, float]) -> EditSpec:
    from featurechanger.latent.edits import EditSpec

    if name.startswith("-"):
        return EditSpec.parse(remove=[name[1:]], strength=strength, margin=margin)
    return EditSpec.parse(add=[name.lstrip("+")], strength=strength, margin=margin,
                          addition_margins=addition_margins)


def _label(spec: EditSpec) -> str:
    return f"+{spec.add[0]}" if spec.add else f"-{spec.remove[0]}"
