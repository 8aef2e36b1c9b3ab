"""A small real world for the job tests: synthetic faces, their shards, a DCAE trained for a few
steps and its attribute vectors, all recorded under the given settings (SQLite or PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from featurechanger.config import Settings

FACES = 96
SHARD_SIZE = 32  # three shards


@dataclass(frozen=True)
class EditWorld:
    dataset: Path
    shards: Path
    run_id: int
    vector_set_id: int


def make_edit_world(settings: Settings, root: Path) -> EditWorld:
    import torch

    from featurechanger.data.shards import build_shards, open_shard_set
    from featurechanger.data.synth import write_synthetic
    from featurechanger.latent.store import save_vector_set
    from featurechanger.latent.vectors import compute_vector_set
    from featurechanger.training.loop import train
    from featurechanger.training.options import TrainOptions
    from featurechanger.training.runs import get_run, load_run_model, run_checkpoint_path

    torch.set_num_threads(1)
    dataset = write_synthetic(root / "faces", FACES, seed=3, workers=1, progress=False)
    shards = build_shards(dataset, root / "shards", sizes=[32], shard_size=SHARD_SIZE, workers=1,
                          progress=False).path
    options = TrainOptions(model="dcae", data=str(shards), steps=4, batch_size=16,
                           device="cpu", latent_dim=16, checkpoint_every=4)
    run_id = train(options, settings, progress=False)
    model = load_run_model(settings, run_id)
    vectors = compute_vector_set(model, open_shard_set(shards), split="train")
    checkpoint = run_checkpoint_path(settings, get_run(settings, run_id))
    vector_set_id = save_vector_set(settings, run_id, vectors, checkpoint=checkpoint)
    place_removal(settings, shards, run_id)
    return EditWorld(dataset, shards, run_id, vector_set_id)


def place_removal(settings: Settings, shards: Path, run_id: int,
                  attribute: str = "Eyeglasses") -> None:
    """An untrained localiser and refiner where a blended removal looks for them: the job
    tests check how jobs carry them, not what they do (tests/test_localiser.py and
    tests/test_refiner.py do)."""
    import torch

    from featurechanger.data.shards import open_shard_set
    from featurechanger.editing.bands import localiser_path, refiner_path
    from featurechanger.editing.localiser import Localiser, LocaliserNet, save_localiser
    from featurechanger.editing.refiner import Refiner, RefinerNet, save_refiner
    from featurechanger.training.runs import get_run, run_checkpoint_path

    torch.manual_seed(0)
    path = localiser_path(settings, open_shard_set(shards), attribute)
    save_localiser(path, Localiser(attribute, LocaliserNet().eval(), float("nan")), "untrained")
    checkpoint = run_checkpoint_path(settings, get_run(settings, run_id))
    save_refiner(refiner_path(checkpoint, attribute),
                 Refiner(attribute, RefinerNet().eval(), {}), "untrained")


def register_in(settings: Settings, source: Settings, world: EditWorld) -> EditWorld:
    """The same checkpoint and vector set recorded in another database (`settings`), so that
    the same job can run against either."""
    from featurechanger.data.shards import open_shard_set
    from featurechanger.db.migrate import ensure_schema
    from featurechanger.latent.store import load_vector_set, save_vector_set
    from featurechanger.training.runs import (create_run, get_run, record_checkpoint,
                                              run_checkpoint_path)

    ensure_schema(settings.database_url)
    run = get_run(source, world.run_id)
    checkpoint = run_checkpoint_path(source, run)
    run_id = create_run(settings, model=run.model, model_config=run.model_config,
                        train_config=run.train_config, vgg_weights=run.vgg_weights,
                        shard_set=open_shard_set(world.shards))
    record_checkpoint(settings, run_id, run.step, run.images_seen, checkpoint)
    vector_set_id = save_vector_set(settings, run_id, load_vector_set(source, world.vector_set_id),
                                    checkpoint=checkpoint)
    place_removal(settings, world.shards, run_id)
    return EditWorld(world.dataset, world.shards, run_id, vector_set_id)
