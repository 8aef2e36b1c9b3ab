"""What `runs list` and `runs show` print: a run as a JSON-ready dict, as text, and as curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featurechanger.config import Settings
from featurechanger.db.runs import RunMetricRecord, RunRecord
from featurechanger.training import runs
from featurechanger.training.options import RANDOM_VGG

METRIC_KEYS = ("val_loss", "val_psnr", "val_ssim")


def vgg_note(run: RunRecord) -> str | None:
    """The warning every report of a DFC run with untrained VGG features must carry."""
    if run.vgg_weights == RANDOM_VGG:
        return "DFC loss with random (untrained) VGG19 features, by --vgg-weights random"
    return None


def run_summary(settings: Settings, run: RunRecord, with_configs: bool = True) -> dict[str, Any]:
    """The run, its latest checkpoint (absolute path) and its last evaluation's metrics."""
    history = runs.run_metrics(settings, run.id)
    last = history[-1] if history else None
    summary: dict[str, Any] = {
        "run_id": run.id,
        "model": run.model,
        "state": run.state,
        "loss": run.train_config.get("loss"),
        "precision": run.train_config.get("precision"),  # None: recorded before the option
        "vgg_weights": run.vgg_weights,
        "note": vgg_note(run),
        "checkpoint": str(runs.run_checkpoint_path(settings, run)) if run.checkpoint else None,
        "step": run.step,
        "images_seen": run.images_seen,
        "data": str(settings.resolve(run.data_path, "data")),
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "error": run.error,
        "metrics": _metrics(settings, last),
        "evaluations": len(history),
    }
    # Records outlive files: say which of them are gone, rather than let a later command trip.
    summary["missing"] = [key for key in ("checkpoint", "data") if summary[key]
                          and not Path(summary[key]).exists()]
    if with_configs:
        summary["model_config"] = run.model_config
        summary["train_config"] = run.train_config
    return summary


def _metrics(settings: Settings, last: RunMetricRecord | None) -> dict[str, Any]:
    if last is None:
        return {key: None for key in (*METRIC_KEYS, "epoch", "step", "resolution", "sheet")}
    return {
        "val_loss": last.val_loss, "val_psnr": last.val_psnr, "val_ssim": last.val_ssim,
        "train_loss": last.train_loss, "epoch": last.epoch, "step": last.step,
        "resolution": last.resolution,
        "sheet": str(settings.resolve(last.sheet, "checkpoint")) if last.sheet else None,
    }


_IF_MISSING = {"data": "restore it, or shard the run's dataset there again",
               "checkpoint": "restore it, or train the run again"}


def _path(summary: dict[str, Any], key: str) -> str:
    missing = f"  (MISSING: {_IF_MISSING[key]})" if key in summary["missing"] else ""
    return f"{summary[key] or '(none yet)'}{missing}"


def describe(summary: dict[str, Any]) -> str:
    """`runs show` for people."""
    lines = [f"Run {summary['run_id']}: {summary['model']}, {summary['state']} at step "
             f"{summary['step']} ({summary['images_seen']} images), loss {summary['loss']}"
             + (f", {summary['precision']}" if summary["precision"] else "")]
    if summary["note"]:
        lines.append(f"  NOTE: {summary['note']}")
    lines.append(f"  data:       {_path(summary, 'data')}")
    lines.append(f"  checkpoint: {_path(summary, 'checkpoint')}")
    metrics = summary["metrics"]
    if metrics["val_psnr"] is None:
        lines.append("  no evaluation yet")
    else:
        lines.append(f"  last evaluation (epoch {metrics['epoch']}, step {metrics['step']}, "
                     f"{metrics['resolution']} px): val loss {metrics['val_loss']:.5g}, "
                     f"PSNR {metrics['val_psnr']:.2f} dB, SSIM {metrics['val_ssim']:.4f}")
        lines.append(f"  sheet:      {metrics['sheet']}")
    if summary["error"]:
        lines.append(f"  error: {summary['error']}")
    return "\n".join(lines)


def table(summaries: list[dict[str, Any]]) -> str:
    """`runs list` for people: one line per run."""
    if not summaries:
        return "No training runs yet. Start one with `featurechanger train --data SHARDS`."
    header = f"{'ID':>4}  {'MODEL':5}  {'STATE':11}  {'STEP':>7}  {'LOSS':4}  {'PSNR':>6}  " \
             f"{'SSIM':>6}  NOTE"
    rows = [header]
    for s in summaries:
        metrics = s["metrics"]
        psnr = f"{metrics['val_psnr']:6.2f}" if metrics["val_psnr"] is not None else f"{'-':>6}"
        ssim = f"{metrics['val_ssim']:6.4f}" if metrics["val_ssim"] is not None else f"{'-':>6}"
        note = "random VGG" if s["note"] else ""
        rows.append(f"{s['run_id']:>4}  {s['model']:5}  {s['state']:11}  {s['step']:>7}  "
                    f"{s['loss']:4}  {psnr}  {ssim}  {note}")
    return "\n".join(rows)


def plot_run(settings: Settings, run: RunRecord, path: Path) -> Path:
    """Training and validation curves of a run against the step, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as plt

    history = runs.run_metrics(settings, run.id)
    steps = [m.step for m in history]
    figure, (loss_axis, psnr_axis, ssim_axis) = plt.subplots(1, 3, figsize=(13, 3.8))
    loss_axis.plot(steps, [m.val_loss for m in history], "o-", label="validation")
    trained = [(m.step, m.train_loss) for m in history if m.train_loss is not None]
    if trained:
        loss_axis.plot(*zip(*trained), "s--", label="training (mean since last point)")
    loss_axis.set_yscale("log")
    loss_axis.set_title(f"{run.train_config.get('loss')} loss")
    loss_axis.legend()
    psnr_axis.plot(steps, [m.val_psnr for m in history], "o-")
    psnr_axis.set_title("validation PSNR (dB)")
    ssim_axis.plot(steps, [m.val_ssim for m in history], "o-")
    ssim_axis.set_title("validation SSIM")
    for axis in (loss_axis, psnr_axis, ssim_axis):
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        _mark_resolutions(axis, history)
    note = vgg_note(run)
    figure.suptitle(f"run {run.id}: {run.model}, {run.state}" + (f"\n{note}" if note else ""))
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _mark_resolutions(axis: Any, history: list[RunMetricRecord]) -> None:
    """Dotted lines where a growing model moved to a new resolution."""
    for before, after in zip(history, history[1:]):
        if after.resolution != before.resolution:
            axis.axvline(before.step, color="grey", linestyle=":")
            axis.annotate(f"{after.resolution}px", (before.step, 0.02),
                          xycoords=("data", "axes fraction"), fontsize=8, color="grey")
