"""`featurechanger edit`: a dataset-wide attribute edit, as a job.

With a broker the job is queued to the workers and the command prints its id at once; without
one it runs here, with the same job code, and returns when it is done.
"""

from __future__ import annotations

import click

from orchestrator.submit import submit_job, submit_options

SPLITS = ("all", "train", "val", "test")


@click.command()
@click.option("--run", "run_id", type=int, required=True,
              help="Training run whose checkpoint encodes and decodes (`featurechanger runs "
                   "list`). The job keeps the checkpoint it had at submit time.")
@click.option("--data", required=True, type=click.Path(file_okay=False),
              help="Shard set of the images to edit (`featurechanger data shard`).")
@click.option("--add", multiple=True, metavar="ATTR", help="Attribute to add (repeatable).")
@click.option("--remove", multiple=True, metavar="ATTR",
              help="Attribute to remove, e.g. Eyeglasses (repeatable).")
@click.option("--strength", type=float, metavar="S",
              help="Fixed edit: move every face S times the attribute vectors (the seed's "
                   "method; 1.5 was its default).")
@click.option("--margin", type=float, metavar="K",
              help="Adaptive edit (the default, K = 2): move each face along the vector until "
                   "its linear-discriminant score is K within-class spreads past the other "
                   "class's mean. Give --strength or --margin, not both.")
@click.option("--keep", multiple=True, metavar="ATTR",
              help="Use the run's vector set conditioned to leave ATTR unchanged, e.g. "
                   "--keep Male (compute it with `featurechanger vectors --keep ATTR`).")
@click.option("--vectors", "vector_set_id", type=int,
              help="Vector set id to use [default: the run's newest one matching --keep].")
@click.option("--where", multiple=True, metavar="ATTR=0|1",
              help="Only images with (1) or without (0) the attribute, e.g. --where "
                   "Eyeglasses=1 (repeatable; all must hold).")
@click.option("--split", type=click.Choice(SPLITS), default="all", show_default=True,
              help="Only images of this split.")
@click.option("--output", type=click.Choice(["blend", "residual", "decoded"]), default="blend",
              show_default=True,
              help="blend: the edit composed onto the full-resolution photo where the model "
                   "changed it beyond its own error (best at removing objects such as glasses); "
                   "residual: photo + upsampled (decode(z') - decode(z)), every detail kept "
                   "(shows a faint added attribute, such as a smile, more often than blend); "
                   "decoded: the model's own low-resolution image.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder for the edited images (one PNG per input, named after its id), "
                   "manifests/ (one per shard) and contact_sheet.png.")
@submit_options
@click.pass_context
def edit(ctx: click.Context, run_id: int, data: str, add: tuple[str, ...],
         remove: tuple[str, ...], strength: float | None, margin: float | None,
         keep: tuple[str, ...],
         vector_set_id: int | None, where: tuple[str, ...], split: str, output: str, out: str,
         queue: str | None, wait: bool, as_json: bool) -> None:
    """Edit every selected image of a shard set, e.g. remove glasses from all who wear them:

    \b
        featurechanger edit --run 1 --data shards --remove Eyeglasses \\
            --where Eyeglasses=1 --keep Male --out glasses-off

    `featurechanger jobs show ID --failed` lists images that failed, and why.
    """
    params = {"run": run_id, "data": data, "add": list(add), "remove": list(remove),
              "strength": strength, "margin": margin, "keep": list(keep), "vectors": vector_set_id,
              "where": list(where), "split": split, "output": output, "out": out}
    submit_job(ctx, "edit", params, queue=queue, wait=wait, as_json=as_json)
