"""What the removed object's band costs an edit: compose with and without it, side by side.

    FEATURECHANGER_HOME=... .venv/bin/python bench/band_cost.py --run 1 --faces 512

On the first faces of the run's training shards: decode(z) and decode(z') once (keep-Male
vectors), then for each face the blend with the gates and no band (as for an addition) and the
blend inside the Eyeglasses localiser's band (its 64 px forward pass, the top-share cut, the
region around the peak, the upsampling and spread), alternating so that both see the same
machine load. Prints milliseconds per face of each, of the band alone, and their ratio.
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
    from featurechanger.editing.bands import band_localisers, load_band
    from featurechanger.editing.batch import decode_spec_edit, read_photo
    from featurechanger.editing.inputs import run_shard_set
    from featurechanger.latent.edits import EditSpec
    from featurechanger.latent.store import vector_set_for_run
    from featurechanger.render.compose import compose
    from featurechanger.training.runs import load_run_model

    settings = load_settings()
    model = load_run_model(settings, run_id)
    shard_set = run_shard_set(settings, run_id)
    spec = EditSpec.parse(remove=["Eyeglasses"])
    band = load_band(band_localisers(settings, shard_set, spec, "blend"))
    arrays = shard_set.shard(0, model.resolution)
    count = min(faces, len(arrays.images))
    reconstructions, edits = decode_spec_edit(model, arrays.images[:count],
                                              vector_set_for_run(settings, run_id, None, ("Male",)),
                                              spec)
    photos = [read_photo(Path(shard_set.dataset_root) / arrays.source_paths[i])
              for i in range(count)]
    seconds = {"blend without a band": 0.0, "blend in the band": 0.0, "band alone": 0.0}
    for photo, box, reconstruction, edit in zip(photos, arrays.crop_boxes, reconstructions, edits):
        box = tuple(int(v) for v in box)
        for name, arguments in (("blend without a band", ()), ("blend in the band", (band,))):
            start = time.perf_counter()
            compose(photo, box, reconstruction, edit, "blend", *arguments)
            seconds[name] += time.perf_counter() - start
        left, top, right, bottom = box
        start = time.perf_counter()
        band(photo[top:bottom, left:right].astype(np.float32) / 255,
             (right - left) / model.resolution)
        seconds["band alone"] += time.perf_counter() - start
    print(f"{count} faces, {torch.get_num_threads()} torch threads, one face at a time")
    for name, total in seconds.items():
        print(f"  {name}: {1000 * total / count:.2f} ms per face")
    ratio = seconds["blend in the band"] / seconds["blend without a band"]
    print(f"  in the band / without: {ratio:.2f}")


if __name__ == "__main__":
    main()
