"""`featurechanger train`: train DCAE or PGAE (or fit PCA) on a shard set, as a train job.

Without a broker the job runs here (with the training progress bar) and prints the run; with
one it is queued to a worker (featurechanger.jobs.train runs featurechanger.training.loop.train).
"""

from __future__ import annotations

import click

from featurechanger.training.options import (DEVICES, LOSS_NAMES, LR_SCHEDULES, MODEL_NAMES,
                                             TrainOptions)
from orchestrator.commands.vectors import precision_option
from orchestrator.output import RECORD_ID, settings_from_context
from orchestrator.submit import submit_job, submit_options

DEFAULTS = TrainOptions()
# Options that define a run; --resume takes them from the run instead.
RUN_DEFINING = ("model", "data", "loss", "epochs", "steps", "batch_size", "lr", "lr_schedule",
                "warmup_steps", "seed", "precision",
                "latent_dim", "resolution", "vgg_weights", "dfc_weights", "pixel_weight",
                "fade_images", "stabilise_images", "checkpoint_every")


def _weights(value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        weights = tuple(float(part) for part in value.split(","))
    except ValueError:
        weights = ()
    if len(weights) != 3:
        raise click.BadParameter(f"{value!r} is not three comma-separated numbers, e.g. 1,1,1.")
    return weights


@click.command()
@click.option("--model", type=click.Choice(MODEL_NAMES), default=DEFAULTS.model,
              show_default=True, help="DCAE (32 px), PGAE (grows 8 -> 64 px), or the PCA "
              "baseline (fitted in closed form).")
@click.option("--data", type=click.Path(file_okay=False),
              help="Shard set folder, from `featurechanger data shard`.")
@click.option("--loss", type=click.Choice(LOSS_NAMES), default=DEFAULTS.loss,
              show_default=True, help="Pixel MSE, or the Deep Feature Consistent loss (VGG19; "
              "PGAE uses it from 32 px on).")
@click.option("--epochs", type=int, help="Passes over the train split [DCAE default: 20].")
@click.option("--steps", type=int, help="Optimizer steps, instead of --epochs.")
@click.option("--batch-size", type=int, default=DEFAULTS.batch_size, show_default=True,
              help="Images per Adam step.")
@click.option("--lr", type=float, default=DEFAULTS.lr, show_default=True,
              help="Adam's peak learning rate.")
@click.option("--lr-schedule", type=click.Choice(LR_SCHEDULES), default=DEFAULTS.lr_schedule,
              show_default=True, help="cosine: warm up, then decay to 0 over the run (PGAE: over "
              "its last resolution's stabilisation); constant: keep --lr after the warm-up.")
@click.option("--warmup-steps", type=int, default=DEFAULTS.warmup_steps, show_default=True,
              help="Steps over which the learning rate rises linearly to --lr.")
@click.option("--device", type=click.Choice(DEVICES), default=DEFAULTS.device,
              show_default=True, help="auto: CUDA when there is a GPU.")
@precision_option
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True,
              help="Seeds the model init and the batch order: the same seed repeats a run.")
@click.option("--resume", type=RECORD_ID, metavar="RUN",
              help="Continue run RUN exactly where it stopped, with its stored options "
                   "(only --device, --minutes and --json may change).")
@click.option("--minutes", type=float,
              help="Stop cleanly after this many minutes, with a checkpoint to --resume from.")
@click.option("--latent-dim", type=int, default=DEFAULTS.latent_dim, show_default=True,
              help="Values in the latent vector (components, for PCA).")
@click.option("--resolution", type=int,
              help="PCA only: the image side to fit at (a size of the shard set) [default: 32].")
@click.option("--vgg-weights", metavar="PATH|random",
              help="VGG19 weights for --loss dfc [default: torchvision's cache, "
                   "$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth]; 'random' = untrained "
                   "features, recorded and shown with the run.")
@click.option("--dfc-weights", metavar="W1,W2,W3",
              help="DFC weights of relu1_1, relu2_1, relu3_1 [default: 1,1,1].")
@click.option("--pixel-weight", type=float, default=DEFAULTS.pixel_weight, show_default=True,
              help="DFC: weight of an extra pixel MSE term.")
@click.option("--fade-images", type=int, default=DEFAULTS.fade_images, show_default=True,
              help="PGAE: images over which each new resolution fades in (alpha 0 -> 1).")
@click.option("--stabilise-images", type=int, default=DEFAULTS.stabilise_images,
              show_default=True, help="PGAE: images per resolution at alpha = 1.")
@click.option("--checkpoint-every", type=int, default=DEFAULTS.checkpoint_every,
              show_default=True, help="Steps between checkpoints (one is also saved at the end).")
@submit_options
@click.pass_context
def train(ctx: click.Context, as_json: bool, dfc_weights: str | None, resume: int | None,
          queue: str | None, wait: bool, **values: object) -> None:
    """Train a model on the train split of a shard set, validating on its val split.

    Each epoch records val loss, PSNR and SSIM and writes a reconstruction sheet; see them with
    `featurechanger runs show RUN`. Ctrl-C or SIGTERM (kill, docker stop) saves a checkpoint
    first; continue with --resume, or `featurechanger jobs retry JOB`.
    With FEATURECHANGER_BROKER_URL set, the run is queued to a worker as a train job and the
    job id is printed (--wait follows it; Ctrl-C then stops following, not the run);
    `jobs cancel JOB` stops the run at a checkpoint, and `jobs retry JOB`, or a worker taking
    over from one that died, continues that same run. --json prints {"run_id", "state",
    "precision", "job_id"} once the run has ended, or {"job_id", ...} for a queued job.
    """
    if resume is not None:
        given = [name for name in RUN_DEFINING
                 if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(
                f"--resume {resume} continues with the run's stored options; do not give "
                f"{', '.join('--' + name.replace('_', '-') for name in given)}.")
    weights = _weights(dfc_weights)
    options = TrainOptions(resume=resume, **values,
                           **({"dfc_layer_weights": weights} if weights else {}))
    try:
        submit_job(ctx, "train", options.to_dict(), queue=queue, wait=wait, as_json=as_json,
                   report=lambda job: _run_report(ctx, job))
    except KeyboardInterrupt as stop:  # not imported up front: submitting must not load torch
        from featurechanger.training.loop import TrainingInterrupted

        if not isinstance(stop, TrainingInterrupted):
            raise
        click.echo(f"Interrupted: run {stop.run_id} saved a checkpoint at step {stop.step}. "
                   f"Continue with `featurechanger train --resume {stop.run_id}`.", err=True)
        ctx.exit(130)


def _run_report(ctx: click.Context, job: dict) -> tuple[dict, object]:
    """The single-run form's output: the run the train job made, and how it ended."""
    from featurechanger.training.runs import get_run

    run = get_run(settings_from_context(ctx), job["outputs"]["run_id"])
    return ({"run_id": run.id, "state": run.state,
             "precision": run.train_config.get("precision")},  # None: recorded before it was
            lambda p: _finished_message(p["run_id"], p["state"]))


def _finished_message(run_id: int, state: str) -> str:
    if state == "stopped":
        return (f"Run {run_id} stopped at its time budget with a checkpoint. Continue with "
                f"`featurechanger train --resume {run_id}`.")
    return f"Run {run_id} {state}. See it with `featurechanger runs show {run_id}`."
