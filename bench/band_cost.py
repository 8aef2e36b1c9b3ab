"""What composing a removal costs an edit: compose with and without it, side by side.

    FEATURECHANGER_HOME=... .venv/bin/python bench/band_cost.py --run 1 --faces 512

On the first faces of the run's training shards: decode(z) and decode(z') once (keep-Male
vectors), then for each face the blend with the gates and no removal (as for an addition) and
the blend of a removal: the Eyeglasses localiser's band (its 64 px forward pass, the top-share
cut, the region around the peak, the upsampling and spread) filled by the run's Eyeglasses
refiner (its 64 px U-Net pass and upsampling), alternating so that both see the same machine
load. Prints milliseconds per face of each, of the band and of the fill alone, and the ratio.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np


@click.command()
@click.option("--run", "run_id", type=int, required=True)
@click.option("--faces", type=int, default=512, show_default=True)
def main(run_id: int, faces: int) -> None:
    import torch

    from featurechanger.config import load_settings
    from featurechanger.editing.bands import load_removal, run_removal_parts
    from featurechanger.editing.batch import decode_spec_edit, read_photo
    from featurechanger.editing.inputs import run_shard_set
    from featurechanger.latent.edits import EditSpec
    from featurechanger.latent.store import vector_set_for_run
    from featurechanger.render.compose import compose
    from featurechanger.render.images import resize
    from featurechanger.training.runs import load_run_model

    settings = load_settings()
    model = load_run_model(settings, run_id)
    shard_set = run_shard_set(settings, run_id)
    spec = EditSpec.parse(remove=["Eyeglasses"])
    removal = load_removal(run_removal_parts(settings, run_id, shard_set, spec, "blend"), run_id)
    (localiser, refiner), = removal.parts
    arrays = shard_set.shard(0, model.resolution)
    count = min(faces, len(arrays.images))
    reconstructions, edits = decode_spec_edit(model, arrays.images[:count],
                                              vector_set_for_run(settings, run_id, None, ("Male",)),
                                              spec)
    photos = [read_photo(Path(shard_set.dataset_root) / arrays.source_paths[i])
              for i in range(count)]
    seconds = {"blend without a removal": 0.0, "blend of a removal": 0.0, "band alone": 0.0,
               "fill alone": 0.0}
    for photo, box, reconstruction, edit in zip(photos, arrays.crop_boxes, reconstructions, edits):
        box = tuple(int(v) for v in box)
        for name, arguments in (("blend without a removal", ()),
                                ("blend of a removal", (removal,))):
            start = time.perf_counter()
            compose(photo, box, reconstruction, edit, "blend", *arguments)
            seconds[name] += time.perf_counter() - start
        left, top, right, bottom = box
        crop = photo[top:bottom, left:right].astype(np.float32) / 255
        start = time.perf_counter()
        band = localiser.band(crop, (right - left) / model.resolution)
        seconds["band alone"] += time.perf_counter() - start
        decoded = resize(edit, right - left, bottom - top)
        start = time.perf_counter()
        refiner.fill(crop, decoded, band)
        seconds["fill alone"] += time.perf_counter() - start
    print(f"{count} faces, {torch.get_num_threads()} torch threads, one face at a time")
    for name, total in seconds.items():
        print(f"  {name}: {1000 * total / count:.2f} ms per face")
    ratio = seconds["blend of a removal"] / seconds["blend without a removal"]
    print(f"  a removal / without: {ratio:.2f}")


if __name__ == "__main__":
    main()
