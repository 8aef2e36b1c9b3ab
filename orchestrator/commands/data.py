"""`featurechanger data`: synthetic datasets, shard sets, and descriptions of both."""

from __future__ import annotations

import time
from pathlib import Path

import click

from featurechanger.data.options import CROPS, DEFAULT_CROP, DEFAULT_SHARD_SIZE, LAYOUT_NAMES
from orchestrator.output import emit, json_option, settings_from_context
from orchestrator.submit import submit_job, submit_options

PATH = click.Path(path_type=Path)


@click.group()
def data() -> None:
    """Make synthetic faces, build shards, describe datasets."""


def _parse_counterfactual(values: tuple[str, ...]) -> dict[str, int]:
    changes: dict[str, int] = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep or setting not in ("0", "1"):
            raise click.BadParameter(f"{value!r} is not NAME=0 or NAME=1 (e.g. Eyeglasses=0).",
                                     param_hint="--counterfactual")
        changes[name] = int(setting)
    return changes


@data.command()
@click.argument("out", type=PATH)
@click.option("--count", type=click.IntRange(min=1), required=True, help="Number of faces.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Same seed and count, same files (with any number of workers).")
@click.option("--layout", type=click.Choice(LAYOUT_NAMES), default="kaggle",
              show_default=True, help="Which public CelebA layout to write.")
@click.option("--counterfactual", multiple=True, metavar="NAME=0|1",
              help="Render the same faces with this drawn attribute set (repeatable), e.g. "
                   "Eyeglasses=0: the ground truth of an edit.")
@click.option("--workers", type=click.IntRange(min=1), help="Processes [default: every core].")
@click.option("--replace", is_flag=True,
              help="Draw over an earlier synthetic dataset in OUT drawn with other options.")
@json_option
def synth(out: Path, count: int, seed: int, layout: str, counterfactual: tuple[str, ...],
          workers: int | None, replace: bool, as_json: bool) -> None:
    """Write COUNT synthetic 178x218 faces as a CelebA-format dataset into OUT.

    Drawn features follow the labels (glasses, smile, open mouth, sex, hair colour, baldness,
    bangs, mustache, goatee, hat, lipstick, pale skin, age, blur), with CelebA's prevalences and
    correlations. OUT must be empty, new, or an earlier synthetic dataset drawn with the same
    options (it is drawn again, the same); one drawn otherwise is replaced only with --replace.
    """
    from featurechanger.data.faces import check_counterfactual
    from featurechanger.data.synth import write_synthetic

    changes = check_counterfactual(_parse_counterfactual(counterfactual))
    started = time.perf_counter()
    write_synthetic(out, count, seed=seed, layout=layout, counterfactual=changes, workers=workers,
                    replace=replace)
    seconds = time.perf_counter() - started
    payload = {"path": str(out.absolute()), "images": count, "seed": seed, "layout": layout,
               "counterfactual": changes, "seconds": round(seconds, 2),
               "images_per_second": round(count / seconds, 1)}
    emit(payload, as_json, lambda p: f"Wrote {p['images']} synthetic faces ({p['layout']} layout) "
                                     f"to {p['path']} at {p['images_per_second']} images/s.")


@data.command()
@click.argument("dataset", type=PATH)
@click.option("--out", type=PATH, required=True, help="Folder of the shard set.")
@click.option("--size", "sizes", type=click.IntRange(min=1), multiple=True,
              help="Resolution in pixels (repeatable) [default: 32 and 64].")
@click.option("--shard-size", type=click.IntRange(min=1), default=DEFAULT_SHARD_SIZE,
              show_default=True,
              help="Images per shard (the unit of work of a distributed job).")
@click.option("--crop", type=click.Choice(CROPS), default=DEFAULT_CROP,
              show_default=True,
              help="center: the middle 178x178 square of an aligned photo (whole face, hair and "
                   "chin, undistorted); face: Karras et al.'s 128 px face square; squash: the "
                   "whole photo resized to a square, as the original project did.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Processes [default: every core of the machine that builds them].")
@click.option("--replace", is_flag=True,
              help="Rebuild OUT when it holds the shards of another dataset, or of this one "
                   "with a size this build drops, another crop or another shard size (runs "
                   "trained on it would then read other images).")
@submit_options
@click.pass_context
def shard(ctx: click.Context, dataset: Path, out: Path, sizes: tuple[int, ...], shard_size: int,
          crop: str, workers: int | None, replace: bool, queue: str | None, wait: bool,
          as_json: bool) -> None:
    """Decode every image of DATASET once into uint8 shards per resolution under OUT.

    Reruns skip the shards that are already complete; images that cannot be read are listed
    as excluded, with the reason (the job's failed items; the exit status stays 0). The
    dataset and shard set are recorded in the database. This is a shard job: with
    FEATURECHANGER_BROKER_URL set it is queued to a worker (queue cpu) and its id printed.
    """
    params = {"dataset": str(dataset), "out": str(out), "sizes": list(sizes) or None,
              "shard_size": shard_size, "crop": crop, "workers": workers, "replace": replace}
    started = time.perf_counter()
    submit_job(ctx, "shard", params, queue=queue, wait=wait, as_json=as_json, partial_exit=0,
               report=lambda job: (_shard_payload(ctx, job, time.perf_counter() - started),
                                   _shard_text))


def _shard_payload(ctx: click.Context, job: dict, seconds: float) -> dict:
    """The single-run form's output, from the shard set the job built."""
    from featurechanger.data.records import record_shard_set
    from featurechanger.data.shards import open_shard_set
    from featurechanger.db import session_scope

    settings = settings_from_context(ctx)
    shard_set = open_shard_set(settings.resolve(job["params"]["out"], "data"))
    with session_scope(settings.database_url) as session:
        record = record_shard_set(session, settings, shard_set)
        ids = {"shard_set_id": record.id, "dataset_id": record.dataset_id}
    return {"path": str(shard_set.path), "dataset": str(shard_set.dataset_root),
            "fingerprint": shard_set.fingerprint, "sizes": list(shard_set.sizes),
            "crop": shard_set.crop, "shards": shard_set.num_shards,
            "images": shard_set.num_images, "splits": shard_set.split_counts(),
            "excluded": shard_set.excluded, "seconds": round(seconds, 2), **ids}


def _shard_text(p: dict) -> str:
    lines = [f"Shard set {p['path']} (id {p['shard_set_id']}): {p['images']} images in "
             f"{p['shards']} shards at {', '.join(map(str, p['sizes']))} px, crop {p['crop']}."]
    lines += _excluded_lines(p["excluded"])
    return "\n".join(lines)


def _excluded_lines(excluded: list[dict], shown: int = 10) -> list[str]:
    if not excluded:
        return []
    lines = [f"Excluded {len(excluded)} images:"]
    lines += [f"  {item['image_id']}: {item['reason']}" for item in excluded[:shown]]
    if len(excluded) > shown:
        lines.append(f"  ... and {len(excluded) - shown} more (see --json)")
    return lines


@data.command()
@click.argument("path", type=PATH)
@click.option("--verify", is_flag=True,
              help="Dataset folder: also decode every image, so that corrupt files are excluded "
                   "and listed too (without it, only missing files are; about as long as "
                   "`data shard`).")
@click.option("--workers", type=click.IntRange(min=1), help="Processes for --verify "
                                                           "[default: every core].")
@json_option
def info(path: Path, verify: bool, workers: int | None, as_json: bool) -> None:
    """Describe a dataset folder or a shard set: images per split, prevalences, exclusions.

    --json prints {"kind", "path", "images", "splits": {"train", "val", "test"},
    "prevalence": {attribute: share}, "excluded": [{"image_id", "reason"}], ...}.
    """
    from featurechanger.data.info import describe

    emit(describe(path, verify=verify, workers=workers), as_json, _info_text)


def _info_text(p: dict) -> str:
    splits = ", ".join(f"{name} {count}" for name, count in p["splits"].items())
    kind = "Shard set" if p["kind"] == "shard_set" else f"Dataset ({p['layout']} layout)"
    lines = [f"{kind} {p['path']}: {p['images']} images ({splits})."]
    if p["kind"] == "shard_set":
        lines.append(f"  {p['shards']} shards at {', '.join(map(str, p['sizes']))} px, crop "
                     f"{p['crop']}, from {p['dataset_root']}")
    lines.append("Prevalence:")
    names = sorted(p["prevalence"], key=p["prevalence"].get, reverse=True)
    lines += [f"  {name:<20} {p['prevalence'][name]:6.1%}" for name in names]
    lines += _excluded_lines(p["excluded"])
    return "\n".join(lines)
