"""The before/after sheet of README: glasses faces of an evaluation set, each with the default
edit of every output mode, composed as `featurechanger edit` composes it (the blend inside the
run's Eyeglasses localiser's band, filled by its refiner), and its counterfactual twin (the
truth).

    FEATURECHANGER_HOME=... .venv/bin/python bench/edit_sheet.py --run 2 --keep Male \\
        --data /work/fc-data/shards-eval16k --twin /work/fc-data/eval16k-twin \\
        --out docs/edit-sheet.png

The faces are the first ones with glasses in the shard set, not picked by hand.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np


@click.command()
@click.option("--run", "run_id", type=int, required=True)
@click.option("--keep", multiple=True, help="Use the run's vector set that keeps ATTR.")
@click.option("--data", required=True, help="Shard set of the faces.")
@click.option("--twin", required=True, help="The dataset's twin without glasses.")
@click.option("--faces", type=int, default=4, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
def main(run_id: int, keep: tuple[str, ...], data: str, twin: str, faces: int,
         out: str) -> None:
    from featurechanger.attributes import ATTRIBUTE_INDEX
    from featurechanger.config import load_settings
    from featurechanger.data.shards import open_shard_set
    from featurechanger.editing.bands import is_banded, load_removal, run_removal_parts
    from featurechanger.editing.batch import decode_spec_edit, read_photo
    from featurechanger.editing.inputs import run_shard_set
    from featurechanger.latent.edits import EditSpec, edit_amount
    from featurechanger.latent.store import vector_set_for_run
    from featurechanger.render.compose import OUTPUT_MODES, compose
    from featurechanger.render.sheet import labelled_sheet
    from featurechanger.training.runs import load_run_model

    settings = load_settings()
    model = load_run_model(settings, run_id)
    vectors = vector_set_for_run(settings, run_id, None, keep)
    shard_set = open_shard_set(data)
    arrays = shard_set.load(model.resolution, None)
    rows = np.flatnonzero(arrays.labels[:, ATTRIBUTE_INDEX["Eyeglasses"]] == 1)[:faces]
    training_shards = run_shard_set(settings, run_id)
    columns = {}  # mode -> (spec, reconstructions, edits, removal): each mode's default edit
    for mode in OUTPUT_MODES:
        spec = EditSpec.parse((), ["Eyeglasses"], *edit_amount(
            None, None, banded_removal=is_banded(mode, (), ["Eyeglasses"])))
        removal = load_removal(run_removal_parts(settings, run_id, training_shards, spec, mode),
                               run_id)
        columns[mode] = (spec, *decode_spec_edit(model, arrays.images[rows], vectors, spec),
                         removal)
    sheet_rows = []
    for index, row in enumerate(rows):
        photo = read_photo(Path(shard_set.dataset_root) / arrays.source_paths[row])
        box = tuple(int(v) for v in arrays.crop_boxes[row])
        sheet_rows.append([photo, *(compose(photo, box, reconstructions[index], edits[index],
                                            mode, removal)
                                    for mode, (_, reconstructions, edits, removal)
                                    in columns.items()),
                           read_photo(Path(twin) / arrays.source_paths[row])])
    labels = ["photo", *OUTPUT_MODES, "twin (truth)"]
    sheet = labelled_sheet(sheet_rows, labels, cell=150)
    sheet.save(out, optimize=True)
    described = "; ".join(f"{mode}: {spec.describe()}" for mode, (spec, *_) in columns.items())
    print(f"Wrote {out} ({Path(out).stat().st_size // 1024} KB): {described}; vector set "
          f"{vectors.id}, faces {', '.join(arrays.image_ids[r] for r in rows)}")


if __name__ == "__main__":
    main()
