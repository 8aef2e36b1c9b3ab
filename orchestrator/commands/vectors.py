"""`featurechanger vectors`: all 40 attribute vectors of a run's model, and `vectors list`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from featurechanger.training.options import PRECISIONS
from orchestrator.output import RECORD_ID, emit, json_option, settings_from_context
from orchestrator.submit import submit_job, submit_options

if TYPE_CHECKING:
    from featurechanger.latent.vectors import VectorSet

SPLITS = click.Choice(["train", "val", "test", "all"])
# Options the editing commands (vectors, grid, interpolate, classifier, evaluate) share.
device_option = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]),
                             default="auto", show_default=True,
                             help="auto: the first CUDA GPU when there is one, else the CPU.")
# ... and the training commands (train, classifier, localiser, refiner).
precision_option = click.option(
    "--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
    help="What training computes in. auto: bf16 autocast where the hardware computes bf16 "
         "natively (CUDA; a CPU with AMX or AVX-512 bf16: 1.5-3.1x as fast), else fp32. "
         "Weights stay fp32; the choice made is recorded with the result.")
data_option = click.option("--data", type=click.Path(file_okay=False), metavar="SHARDS",
                           help="Shard set to read [default: the one the run was trained on].")
# The editing commands pick a vector set by the labels it keeps (--keep) or by id (--vectors).
keep_option = click.option(
    "--keep", multiple=True, metavar="ATTR",
    help="Use the run's vector set conditioned to leave ATTR unchanged (repeatable), e.g. "
         "--keep Male; compute it with `featurechanger vectors --run RUN --keep ATTR`.")
vectors_option = click.option(
    "--vectors", "vector_set_id", type=RECORD_ID, metavar="ID",
    help="Vector set to use [default: the run's newest one keeping exactly --keep].")
margin_option = click.option(
    "--margin", type=float, metavar="K",
    help="Adaptive edit instead of --strength: move each face to K within-class spreads past "
         "the other class's mean along the vector (below 0: short of it) [default: -0.5 "
         "for a removal with blend output, 8 to add Smiling, else 2].")


@click.group(invoke_without_command=True)
@click.option("--run", "run_id", type=RECORD_ID, metavar="RUN", help="The training run whose model "
              "encodes the images (required to compute).")
@data_option
@click.option("--split", type=SPLITS, default="train", show_default=True,
              help="Which images the vectors come from.")
@click.option("--per-attribute", type=int, metavar="N",
              help="The seed's method: N random positives and N random negatives per "
                   "attribute (all of them where fewer exist) instead of every image.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the --per-attribute sample.")
@click.option("--keep", multiple=True, metavar="ATTR",
              help="Hold this attribute fixed (repeatable): each vector becomes the difference "
                   "between images that share the kept labels, e.g. --keep Male so that "
                   "removing glasses does not change gender.")
@device_option
@click.option("--batch-size", type=int, default=256, show_default=True,
              help="Images per encoder call.")
@submit_options
@click.pass_context
def vectors(ctx: click.Context, run_id: int | None, data: str | None, split: str,
            per_attribute: int | None, seed: int, keep: tuple[str, ...], device: str,
            batch_size: int, queue: str | None, wait: bool, as_json: bool) -> None:
    """Compute every attribute vector from ONE encoding pass, and record them as a vector set.

    A vector is mean(latents of images with the attribute) - mean(latents without it); its
    counts and standard error are kept with it. Attributes without positives get no vector
    and are listed; weak ones (standard error over half the vector's length) are flagged.
    `featurechanger vectors list --run RUN` shows the sets of a run.

    This is a vectors job (one encoding task per shard, then a reduce): without a broker it
    runs here; with FEATURECHANGER_BROKER_URL set it is queued to the workers (--device is then
    theirs: FEATURECHANGER_DEVICE) and its id printed.
    """
    if ctx.invoked_subcommand is not None:
        return
    if run_id is None:
        raise click.UsageError("Missing option '--run'. Give the run whose model encodes the "
                               "images (`featurechanger runs list` shows them).")
    params = {"run": run_id, "data": data, "split": split, "per_attribute": per_attribute,
              "seed": seed, "keep": list(keep), "batch_size": batch_size}
    submit_job(ctx, "vectors", params, queue=queue, wait=wait, as_json=as_json,
               device=None if device == "auto" else device,
               report=lambda job: _vector_set_report(ctx, job))


def _vector_set_report(ctx: click.Context, job: dict) -> tuple[dict, object]:
    """The single-run form's output: the vector set the job recorded."""
    from featurechanger.latent.store import load_vector_set

    vector_set = load_vector_set(settings_from_context(ctx), job["outputs"]["vector_set_id"])
    return _payload(job["run_id"], vector_set), _describe


def _payload(run_id: int, vector_set: VectorSet) -> dict:
    vectors = {name: {"positives": v.positives, "negatives": v.negatives, "norm": v.norm,
                      "stderr": v.stderr, "noise": v.noise, "weak": v.weak}
               for name, v in vector_set.vectors.items()}
    sample = vector_set.per_attribute
    return {"vector_set_id": vector_set.id, "run_id": run_id, "method": vector_set.method,
            "keep": list(vector_set.keep), "per_attribute": sample, "seed": vector_set.seed,
            "split": vector_set.split, "images": vector_set.images, "vectors": vectors,
            "skipped": vector_set.skipped,
            "weak": [name for name, v in vectors.items() if v["weak"]],
            "all_used": [name for name, v in vectors.items()
                         if sample and min(v["positives"], v["negatives"]) < sample]}


def _describe(payload: dict) -> str:
    kept = f", keeping {', '.join(payload['keep'])} fixed" if payload["keep"] else ""
    method = (f"{payload['per_attribute']} sampled per class" if payload["per_attribute"]
              else "mean difference")
    lines = [f"Vector set {payload['vector_set_id']} of run {payload['run_id']}: "
             f"{len(payload['vectors'])} vectors from {payload['images']} {payload['split']} "
             f"images ({method}{kept}).",
             f"  {'attribute':<20} {'positives':>9} {'negatives':>9} {'norm':>8} {'noise':>6}"]
    for name, v in payload["vectors"].items():
        flag = "  weak" if v["weak"] else ""
        lines.append(f"  {name:<20} {v['positives']:>9} {v['negatives']:>9} {v['norm']:>8.3f} "
                     f"{v['noise']:>6.2f}{flag}")
    for name, reason in payload["skipped"].items():
        lines.append(f"  {name:<20} no vector: {reason}")
    if payload["weak"]:
        lines.append(f"Weak (standard error over half the length; mostly noise): "
                     f"{', '.join(payload['weak'])}.")
    if payload["all_used"]:
        lines.append(f"Fewer than {payload['per_attribute']} positives or negatives, so all of "
                     f"them were used: {', '.join(payload['all_used'])}.")
    return "\n".join(lines)


@vectors.command("list")
@click.option("--run", "run_id", type=RECORD_ID, required=True, metavar="RUN")
@json_option
@click.pass_context
def list_sets(ctx: click.Context, run_id: int, as_json: bool) -> None:
    """List a run's vector sets: id, method, kept attributes, images, vectors."""
    from featurechanger.latent.store import list_vector_sets
    from featurechanger.training.runs import get_run

    settings = settings_from_context(ctx)
    get_run(settings, run_id)
    sets = list_vector_sets(settings, run_id)
    emit({"run_id": run_id, "vector_sets": sets}, as_json, _describe_sets)


def _describe_sets(payload: dict) -> str:
    if not payload["vector_sets"]:
        return (f"Run {payload['run_id']} has no vector sets; compute them with "
                f"`featurechanger vectors --run {payload['run_id']}`.")
    lines = [f"{'id':>4}  {'method':<11} {'keep':<16} {'split':<6} {'images':>7} {'vectors':>7}"
             f"  created"]
    for s in payload["vector_sets"]:
        method = f"{s['method']}" + (f" {s['per_attribute']}" if s["per_attribute"] else "")
        lines.append(f"{s['vector_set_id']:>4}  {method:<11} {','.join(s['keep']) or '-':<16} "
                     f"{s['split']:<6} {s['images']:>7} {s['vectors']:>7}  {s['created_at']}")
    return "\n".join(lines)
