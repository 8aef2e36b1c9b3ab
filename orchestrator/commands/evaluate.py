"""`featurechanger evaluate`: how well an edit works, judged by the attribute classifier and,
where the data has counterfactual twins, measured against the true edited faces."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.commands.vectors import (SPLITS, data_option, device_option, keep_option,
                                           margin_option, vectors_option)
from orchestrator.output import (IMAGE_SUFFIXES, RECORD_ID, OutputFile, emit, json_option,
                                 settings_from_context)


@click.command()
@click.option("--run", "run_id", type=RECORD_ID, required=True, metavar="RUN")
@click.option("--add", multiple=True, metavar="ATTR", help="Attribute to add (repeatable).")
@click.option("--remove", multiple=True, metavar="ATTR", help="Attribute to remove (repeatable).")
@keep_option
@click.option("--strength", type=float, metavar="S",
              help="Fixed edit: move every face S times the vector [default: the edit "
                   "default, see `featurechanger edit --help`].")
@margin_option
@click.option("--output", type=click.Choice(["blend", "residual", "decoded"]), default="blend",
              show_default=True,
              help="How the edit is composed onto the full-size photo (see `featurechanger "
                   "edit --help`).")
@data_option
@click.option("--split", type=SPLITS, default="test", show_default=True,
              help="Faces to evaluate (all: a separately generated evaluation set).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help="Evaluate at most N faces (the first that fit) [default: all].")
@click.option("--twin", type=click.Path(file_okay=False), metavar="DATASET",
              help="The counterfactual twin of --data's dataset (`featurechanger data synth "
                   "... --counterfactual Eyeglasses=0`): adds PSNR/SSIM to the true edit.")
@vectors_option
@click.option("--classifier", "classifier_path", type=click.Path(dir_okay=False),
              metavar="FILE", help="Attribute classifier [default: the one `classifier train "
                                  "--decorrelate` made from the run's training shards for the "
                                  "edited attributes, else the plain one].")
@click.option("--sheet", type=OutputFile(*IMAGE_SUFFIXES), metavar="FILE.png",
              help="Also write a before/after sheet of the first evaluated faces.")
@device_option
@json_option
@click.pass_context
def evaluate(ctx: click.Context, run_id: int, add: tuple[str, ...], remove: tuple[str, ...],
             keep: tuple[str, ...], strength: float | None, margin: float | None, output: str,
             data: str | None, split: str,
             limit: int | None, twin: str | None, vector_set_id: int | None,
             classifier_path: str | None, sheet: str | None, device: str,
             as_json: bool) -> None:
    """Measure an edit on every face of a split that fits it, with 95% intervals.

    The faces that have what is removed and lack what is added are edited at full size as
    `featurechanger edit` does. Reported: success (the classifier sees the edit), preservation
    of the other judged attributes and of Male, the same for plain reconstructions, and with
    --twin the PSNR/SSIM to the true edited faces over the whole photo and the eye band, next
    to doing nothing and to blurring the band to the model's resolution, and the twins' own
    rates (what a perfect edit scores with this judge).

    The judge is the classifier trained not to lean on the edited attributes (`classifier
    train --decorrelate ATTR`) where there is one, else the plain classifier; the report says
    which, and how often each other attribute flips (`flipped`).
    """
    from featurechanger.data.shards import open_shard_set
    from featurechanger.editing.bands import (is_banded, load_removal, part_names,
                                              removal_parts)
    from featurechanger.editing.inputs import run_shard_set
    from featurechanger.evaluation.classifier import edit_judge_path, load_classifier
    from featurechanger.evaluation.quality import evaluate_edit, format_report
    from featurechanger.latent.edits import EditSpec, edit_amount
    from featurechanger.latent.store import vector_set_for_run
    from featurechanger.models.checkpoint import load_checkpoint
    from featurechanger.render.sheet import labelled_sheet, save_sheet
    from featurechanger.training.device import pick_device
    from featurechanger.training.runs import latest_checkpoint

    settings = settings_from_context(ctx)
    spec = EditSpec.parse(add, remove, *edit_amount(
        strength, margin, banded_removal=is_banded(output, add, remove)))
    vectors = vector_set_for_run(settings, run_id, vector_set_id, keep)
    torch_device = pick_device(device)
    training_shards = run_shard_set(settings, run_id)
    judge_path = (Path(classifier_path).absolute() if classifier_path
                  else edit_judge_path(settings, training_shards, spec.add + spec.remove))
    judge = load_classifier(judge_path, torch_device)
    checkpoint = latest_checkpoint(settings, run_id)
    parts = removal_parts(settings, training_shards, checkpoint, run_id, spec, output)
    model = load_checkpoint(checkpoint, torch_device)
    shard_set = training_shards if data is None else open_shard_set(data)
    arrays = shard_set.load(model.resolution, None if split == "all" else split)
    report, samples = evaluate_edit(
        arrays, model=model, vectors=vectors, spec=spec, classifier=judge,
        dataset_root=shard_set.dataset_root, twin_root=twin, output=output,
        removal=load_removal(parts, run_id), limit=limit, device=torch_device)
    report.update({"run_id": run_id, "checkpoint": str(checkpoint), "vector_set_id": vectors.id,
                   "keep": list(vectors.keep),
                   "judge": str(judge_path), "judge_decorrelated": list(judge.decorrelated),
                   "output": output, **part_names(parts),
                   "data": str(shard_set.path), "split": split, "twin": twin})
    if sheet:
        labels = ["photo", f"{output} edit"] + (["twin (truth)"] if twin else [])
        report["sheet"] = str(save_sheet(labelled_sheet(samples, labels, cell=160), sheet))
    emit(report, as_json, format_report)
