"""`featurechanger runs`: list training runs, show one (with curves), evaluate it on a split."""

from __future__ import annotations

import click

from featurechanger.attributes import SPLITS
from featurechanger.training.options import DEVICES
from orchestrator.output import RECORD_ID, OutputFile, emit, json_option, settings_from_context


@click.group()
def runs() -> None:
    """Training runs: their state, checkpoints and validation metrics."""


@runs.command("list")
@json_option
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """One line per run: model, state, step and the last validation PSNR/SSIM."""
    from featurechanger.training.report import run_summary, table
    from featurechanger.training.runs import list_runs

    settings = settings_from_context(ctx)
    summaries = [run_summary(settings, run, with_configs=False) for run in list_runs(settings)]
    emit({"runs": summaries}, as_json, lambda payload: table(payload["runs"]))


@runs.command()
@click.argument("run_id", metavar="RUN", type=RECORD_ID)
@click.option("--plot", type=OutputFile(".png", ".pdf", ".svg"), metavar="FILE.png",
              help="Also draw the loss, PSNR and SSIM curves into this file (.png, .pdf or .svg).")
@json_option
@click.pass_context
def show(ctx: click.Context, run_id: int, plot: str | None, as_json: bool) -> None:
    """A run's state, checkpoint, options and last evaluation (val loss, PSNR, SSIM)."""
    from featurechanger.training.report import describe, plot_run, run_summary
    from featurechanger.training.runs import get_run

    settings = settings_from_context(ctx)
    run = get_run(settings, run_id)
    summary = run_summary(settings, run)
    if plot:
        summary["plot"] = str(plot_run(settings, run, plot))
    emit(summary, as_json, lambda payload: describe(payload)
         + (f"\n  curves:     {payload['plot']}" if plot else ""))


@runs.command()
@click.argument("run_id", metavar="RUN", type=RECORD_ID)
@click.option("--split", type=click.Choice(list(SPLITS)), default="test",
              show_default=True, help="Partition of the run's shard set to measure.")
@click.option("--device", type=click.Choice(DEVICES), default="auto",
              show_default=True)
@json_option
@click.pass_context
def evaluate(ctx: click.Context, run_id: int, split: str, device: str, as_json: bool) -> None:
    """Reconstruction MSE, PSNR and SSIM of a run's latest checkpoint on a split."""
    from featurechanger.training.evaluate import evaluate_run

    result = evaluate_run(settings_from_context(ctx), run_id, split, device)
    emit(result, as_json, lambda r: (
        f"Run {r['run_id']} ({r['model']}, {r['resolution']} px) on {r['images']} {r['split']} "
        f"images: PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.4f}, MSE {r['mse']:.5f}"
        + (f"\n  NOTE: {r['note']}" if r["note"] else "")))
