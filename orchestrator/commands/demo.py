"""`featurechanger demo`: the whole system on synthetic faces, on the embedded default.

Synthetic faces (and their glasses-free twins) -> a shard job -> a DCAE train job -> a vectors
job (conditioned to keep Male) -> a glasses localiser and refiner -> a dataset-wide
remove-Eyeglasses edit job -> an interpolate job (GIFs of the women among them) -> a feature
grid, an attribute classifier that does not lean on glasses, and the evaluation table. Every
heavy step is a job, run in this process with the same code workers run.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from orchestrator.commands.vectors import precision_option
from orchestrator.output import emit, json_option, settings_from_context


@dataclass(frozen=True)
class DemoSize:
    faces: int
    shard_size: int
    # Epochs sized to the time budget, so that the cosine learning rate anneals fully (a run cut
    # short by --minutes stops before it has); the minutes only cap a much slower machine.
    train_epochs: int
    train_minutes: float
    classifier_epochs: int
    localiser_epochs: int
    refiner_epochs: int


FULL = DemoSize(faces=20_000, shard_size=2048, train_epochs=10, train_minutes=8.0,
                classifier_epochs=6, localiser_epochs=2, refiner_epochs=1)
# Training in fp32 takes 1.5 to 3.1 times as long per image as in bf16 (README, "bf16 on the
# CPU"), which put FULL at 16-17 minutes on 2 cores. So where the nets compute in fp32 the demo
# draws 40% fewer faces, and the DCAE as many more epochs, so that it still sees about as many
# images (153,600 against 160,000).
FULL_FP32 = DemoSize(faces=12_000, shard_size=2048, train_epochs=16, train_minutes=8.0,
                     classifier_epochs=6, localiser_epochs=2, refiner_epochs=1)
QUICK = DemoSize(faces=2_000, shard_size=512, train_epochs=15, train_minutes=2.0,
                 classifier_epochs=8, localiser_epochs=2, refiner_epochs=2)
GRID_ATTRIBUTES = "-Eyeglasses,Smiling,Blond_Hair,Mustache"


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for everything the demo makes [default: HOME/demo].")
@click.option("--quick", is_flag=True,
              help=f"{QUICK.faces:,} faces and {QUICK.train_epochs} training epochs: one to two "
                   f"and a half minutes on 2 cores (CI runs it). Without it: {FULL.faces:,} "
                   f"faces and {FULL.train_epochs} epochs where training computes in bf16 (8.4 "
                   f"to 9.3 minutes on 2 CPU cores), {FULL_FP32.faces:,} faces and "
                   f"{FULL_FP32.train_epochs} epochs where it computes in fp32 (see --precision; "
                   f"README has the times), with each step's time in the report.")
@precision_option
@json_option
@click.pass_context
def demo(ctx: click.Context, out: Path | None, quick: bool, precision: str,
         as_json: bool) -> None:
    """Run the whole pipeline on synthetic faces and print where everything is.

    Always runs in this process on the configured database (the embedded SQLite default
    unless FEATURECHANGER_DATABASE_URL is set), even when a broker is configured.
    """
    import torch

    from featurechanger.data.synth import write_synthetic
    from featurechanger.training.device import pick_device, pick_precision

    settings = settings_from_context(ctx)
    precision = pick_precision(precision, pick_device("auto"))  # one choice for all its nets
    size = demo_size(quick, precision)
    out = (out or settings.home / "demo").absolute()
    torch.manual_seed(0)
    seconds: dict[str, float] = {}  # each step's wall time, to tell a slow machine from slow code
    with _timed(seconds, "synth"):  # the demo's own folders: a rerun of another size redraws
        faces = write_synthetic(out / "faces", size.faces, seed=0, replace=True)
        twins = write_synthetic(out / "faces-without-glasses", size.faces, seed=0,
                                counterfactual={"Eyeglasses": 0}, replace=True)
    with _timed(seconds, "shard"):
        shards = _job(settings, "shard", {"dataset": str(faces), "out": str(out / "shards"),
                                          "sizes": [32, 64], "shard_size": size.shard_size,
                                          "replace": True})
    with _timed(seconds, "train"):
        trained = _job(settings, "train", {"model": "dcae", "data": str(out / "shards"),
                                           "device": "auto", "epochs": size.train_epochs,
                                           "minutes": size.train_minutes, "seed": 0,
                                           "precision": precision})
    run_id = trained["run_id"]
    with _timed(seconds, "vectors"):
        vectors = _job(settings, "vectors", {"run": run_id, "data": str(out / "shards"),
                                             "keep": ["Male"]})
    with _timed(seconds, "localiser"):
        localiser = _command(ctx, "localiser", "train", "--data", out / "shards", "--attribute",
                             "Eyeglasses", "--epochs", size.localiser_epochs,
                             "--precision", precision)
    with _timed(seconds, "refiner"):
        refiner = _command(ctx, "refiner", "train", "--run", run_id, "--attribute",
                           "Eyeglasses", "--epochs", size.refiner_epochs,
                           "--precision", precision)
    edit = {"run": run_id, "data": str(out / "shards"), "remove": ["Eyeglasses"],
            "keep": ["Male"], "where": ["Eyeglasses=1"], "split": "test"}
    with _timed(seconds, "edit"):
        edited = _job(settings, "edit", {**edit, "out": str(out / "glasses-off")})
    # GIFs of the women among them: a few dozen show the edit, and each takes about a second.
    with _timed(seconds, "interpolate"):
        gifs = _job(settings, "interpolate", {**edit, "where": ["Eyeglasses=1", "Male=0"],
                                              "out": str(out / "gifs")})
    with _timed(seconds, "grid"):
        grid = _command(ctx, "grid", "--run", run_id, "--images",
                        ",".join(_grid_images(out / "shards")), "--attributes",
                        GRID_ATTRIBUTES, "--vectors", vectors["vector_set_id"],
                        "--data", out / "shards", "--out", out / "grid.png")
    # The judge of the glasses removal: its other calls must not lean on the glasses.
    with _timed(seconds, "classifier"):
        judge = _command(ctx, "classifier", "train", "--data", out / "shards",
                         "--epochs", size.classifier_epochs, "--decorrelate", "Eyeglasses",
                         "--precision", precision)
    with _timed(seconds, "evaluate"):
        evaluation = _command(ctx, "evaluate", "--run", run_id, "--remove", "Eyeglasses",
                              "--keep", "Male", "--data", out / "shards", "--split", "test",
                              "--twin", twins, "--sheet", out / "evaluation-sheet.png")
    payload = {
        "out": str(out), "faces": str(faces), "face_count": size.faces, "twins": str(twins),
        "shards": str(out / "shards"), "run_id": run_id,
        "vector_set_id": vectors["vector_set_id"], "classifier": judge["path"],
        "precision": precision,
        "localiser": localiser["localisers"]["Eyeglasses"]["path"],
        "refiner": refiner["refiners"]["Eyeglasses"]["path"],
        "jobs": {"shard": shards["job_id"], "train": trained["job_id"],
                 "vectors": vectors["job_id"], "edit": edited["job_id"],
                 "interpolate": gifs["job_id"]},
        "edited": str(out / "glasses-off"), "edited_images": edited["done"],
        "contact_sheet": str(out / "glasses-off" / "contact_sheet.png"),
        "gifs": str(out / "gifs"), "grid": grid["out"], "evaluation": evaluation,
        "seconds": {name: round(took, 1) for name, took in seconds.items()},
    }
    emit(payload, as_json, _describe)


def demo_size(quick: bool, precision: str) -> DemoSize:
    """The demo's sizes for --quick or not and the precision its nets train in."""
    if quick:
        return QUICK
    return FULL if precision == "bf16" else FULL_FP32


@contextlib.contextmanager
def _timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    """Record the wall time of the step run inside, under seconds[step]."""
    start = time.perf_counter()
    yield
    seconds[step] = time.perf_counter() - start


def _job(settings: Any, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run a job here; the demo stops at the first that does not fully succeed."""
    from featurechanger.errors import FeatureChangerError
    from orchestrator.submit import run_new_job_here

    job = run_new_job_here(settings, kind, params)
    if job["state"] != "succeeded":
        raise FeatureChangerError(
            f"The demo's {kind} job {job['job_id']} ended {job['state']}: {job['error']}. "
            f"`featurechanger jobs show {job['job_id']} --failed` says more.")
    return {"job_id": job["job_id"], "done": job["done"], **job["outputs"]}


def _command(ctx: click.Context, *args: object) -> dict[str, Any]:
    """Run another featurechanger command here with --json, and return what it printed."""
    main = ctx.find_root().command
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main.main([*map(str, args), "--json"], standalone_mode=False, obj=ctx.find_root().obj)
    return json.loads(printed.getvalue())


def _grid_images(shards: Path) -> list[str]:
    """Three test faces with glasses and three without, for the feature grid."""
    from featurechanger.attributes import ATTRIBUTE_INDEX
    from featurechanger.data.shards import iter_shards, open_shard_set

    shard_set = open_shard_set(shards)
    chosen: dict[int, list[str]] = {0: [], 1: []}
    for _, arrays in iter_shards(shard_set, shard_set.sizes[0], "test"):
        for image_id, labels in zip(arrays.image_ids, arrays.labels):
            group = chosen[int(labels[ATTRIBUTE_INDEX["Eyeglasses"]])]
            if len(group) < 3:
                group.append(image_id)
    return chosen[1] + chosen[0]


def _describe(payload: dict[str, Any]) -> str:
    from featurechanger.evaluation.quality import format_report

    return "\n".join([
        f"Demo done; everything is under {payload['out']}:",
        f"  faces            {payload['face_count']:,} in {payload['faces']} (twins without "
        f"glasses: {payload['twins']})",
        f"  shards           {payload['shards']}",
        f"  model            run {payload['run_id']} (`featurechanger runs show "
        f"{payload['run_id']}`)",
        f"  vectors          set {payload['vector_set_id']} (keeping Male)",
        f"  localiser        {payload['localiser']}",
        f"  refiner          {payload['refiner']}",
        f"  glasses removed  {payload['edited_images']} test faces in {payload['edited']}",
        f"  contact sheet    {payload['contact_sheet']}",
        f"  GIFs             {payload['gifs']}",
        f"  feature grid     {payload['grid']}",
        "  jobs             " + ", ".join(f"{kind} {job_id}"
                                           for kind, job_id in payload["jobs"].items())
        + " (`featurechanger jobs list`)",
        "  step times       " + ", ".join(f"{step} {took:.0f} s"
                                           for step, took in payload["seconds"].items())
        + f" ({sum(payload['seconds'].values()):.0f} s in all, training in "
          f"{payload['precision']})",
        "Evaluation of removing Eyeglasses on the test faces:",
        format_report(payload["evaluation"]),
    ])
