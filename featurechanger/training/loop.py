"""The training loop: `train(options, settings)` runs (or resumes) one run and returns its id.

It reads top to bottom: options -> data -> run record -> for each step: growth phase ->
learning rate (featurechanger.training.lr) -> batch -> Adam step -> progress; at each epoch end, growth-phase end and the last step: validation
(loss, PSNR, SSIM, reconstruction sheet) recorded in SQL; every `checkpoint_every` steps and at
the end: a checkpoint with weights, optimizer, step, phase, alpha and RNG state.

Stopping: `minutes` stops cleanly after the step that crosses the budget (state "stopped");
Ctrl-C or SIGTERM (`kill`, `docker stop`) finishes the current step, saves a checkpoint and
raises TrainingInterrupted (state "interrupted"; a second one stops at once, keeping the last
periodic checkpoint). Either way `train(TrainOptions(resume=run_id), ...)` continues exactly
where the run stopped.

PGAE and the optimizer: one Adam holds every block's parameters from the first step and is
never reset (as in the original project; Karras et al. reset it per resolution). Blocks not
yet grown get no gradient, and Adam leaves a parameter without a gradient untouched, so a
block's moments and bias correction start on its first gradient: a new block starts fresh, as
with a reset, while the grown blocks keep their well-estimated moments.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from tqdm import tqdm

from featurechanger.config import Settings
from featurechanger.data.shards import open_shard_set
from featurechanger.db.base import utcnow
from featurechanger.db.migrate import ensure_schema
from featurechanger.errors import ConfigError
from featurechanger.locks import exclusive
from featurechanger.losses import ReconstructionLoss, build_loss, resolve_vgg_weights
from featurechanger.models import Autoencoder, build_model, config_dict
from featurechanger.models.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint
from featurechanger.models.pca import PCA, PCA_ITERATIONS, fit_pca, pca_passes
from featurechanger.models.pgae import PGAE
from featurechanger.training import runs
from featurechanger.training.batches import (EpochBatches, load_split, resize_to, shard_side,
                                             to_float_images)
from featurechanger.training.device import (autocast, pick_device, pick_precision,
                                             recorded_precision, training_layout)
from featurechanger.training.evaluate import evaluate, reconstruct
from featurechanger.training.lr import LearningRate
from featurechanger.training.options import DCAE_DEFAULT_EPOCHS, TrainOptions
from featurechanger.training.schedule import GrowthSchedule, Phase
from featurechanger.training.sheet import write_sheet

SHEET_IMAGES = 8  # validation images on each reconstruction sheet, spread over the split
LOG_EVERY = 10  # steps between progress-bar loss updates (reading the loss syncs a GPU)
PCA_CHUNK = 1024  # images per chunk while fitting PCA


TRAINING_LOCK = ".training.lock"  # in the run's folder, held while a process trains the run


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped run `run_id` after saving a checkpoint at `step`."""

    def __init__(self, run_id: int, step: int) -> None:
        super().__init__(f"run {run_id} interrupted at step {step}")
        self.run_id, self.step = run_id, step


@dataclass
class _Session:
    """Everything one call of `train` works with."""

    run_id: int
    options: TrainOptions
    settings: Settings
    model: Autoencoder
    loss_fn: ReconstructionLoss
    train_images: torch.Tensor  # uint8 (N, S, S, 3) on the device
    val_images: torch.Tensor
    device: torch.device
    deadline: float | None  # time.monotonic() value after which to stop
    should_stop: Callable[[], bool]  # e.g. the job was cancelled: stop like at the deadline

    @property
    def batch_size(self) -> int:
        return self.options.batch_size


@dataclass(frozen=True)
class _Plan:
    """How long a gradient-trained run is, in steps, and how its batches and phases go."""

    batches: EpochBatches
    schedule: GrowthSchedule | None  # PGAE's growth; None for a fixed-resolution model
    total_steps: int
    learning_rate: LearningRate


def train(options: TrainOptions, settings: Settings, progress: bool = True, *,
          on_run: Callable[[int], None] | None = None,
          should_stop: Callable[[], bool] = lambda: False) -> int:
    """Train (or resume, with `options.resume`) a model; returns the run id.

    Raises ConfigError / DataError before any step, and before any record is written, when an
    option or the data cannot work (including --loss dfc without VGG19 weights); raises
    TrainingInterrupted after Ctrl-C. `on_run(run_id)` is called once the run is recorded, before
    its first step; once `should_stop()` is true the run saves a checkpoint and stops
    ('stopped', resumable), as at its time budget.
    """
    started = time.monotonic()
    options.validate()
    ensure_schema(settings.database_url)
    options, checkpoint = _resume(settings, options) if options.resume else (options, None)
    options = replace(options, data=str(Path(options.data).expanduser().resolve()))
    device = pick_device(options.device)
    # PCA is fitted in closed form, in full precision.
    options = replace(options, precision="fp32" if options.model == "pca"
                      else pick_precision(options.precision, device))
    vgg_weights = resolve_vgg_weights(options.vgg_weights) if options.loss == "dfc" else None
    shard_set = open_shard_set(options.data)

    torch.manual_seed(options.seed)
    model = (model_from_checkpoint(checkpoint, f"The latest checkpoint of run {options.resume}")
             if checkpoint else _new_model(options)).to(device)
    model = training_layout(model, options.precision)
    train_images = load_split(shard_set, shard_side(model), "train", device)
    val_images = load_split(shard_set, shard_side(model), "val", device)
    loss_fn = build_loss(options.loss, vgg_weights, options.dfc_layer_weights,
                         options.pixel_weight, options.seed).to(device)
    loss_fn = training_layout(loss_fn, options.precision)
    if isinstance(model, PCA):
        model.config.check_training_size(len(train_images))
    plan = None if isinstance(model, PCA) else _plan(options, model, len(train_images), device)

    if options.resume is None:
        run_id = runs.create_run(
            settings, model=options.model, model_config=config_dict(model),
            train_config=options.to_dict(), vgg_weights=vgg_weights, shard_set=shard_set)
    else:
        run_id = options.resume
    busy = (f"Run {run_id} is being trained by another process now; wait for it to end (two "
            f"at once would overwrite each other's checkpoints).")
    with exclusive(runs.run_dir(settings, run_id) / TRAINING_LOCK, busy):
        if options.resume is not None:
            runs.forget_after(settings, run_id,
                              checkpoint["training"]["step"] if checkpoint else 0)
            runs.update_run(settings, run_id, state="running", error=None, finished_at=None)
        if on_run is not None:
            on_run(run_id)
        deadline = started + 60 * options.minutes if options.minutes is not None else None
        session = _Session(run_id, options, settings, model, loss_fn, train_images, val_images,
                           device, deadline, should_stop)
        _fit_recording_the_end(session, plan, checkpoint, progress)
    return run_id


def _fit_recording_the_end(session: _Session, plan: _Plan | None, checkpoint: dict | None,
                           progress: bool) -> None:
    """Fit, recording the run as interrupted (Ctrl-C) or failed when it does not end well."""
    settings, run_id = session.settings, session.run_id
    try:
        if plan is None:
            _fit_pca(session, progress)
        else:
            _fit(session, plan, checkpoint, progress)
    except KeyboardInterrupt:
        runs.update_run(settings, run_id, state="interrupted")
        raise
    except BaseException as error:
        runs.update_run(settings, run_id, state="failed", error=f"{type(error).__name__}: {error}")
        raise


def _new_model(options: TrainOptions) -> Autoencoder:
    extra = {"resolution": options.resolution} if options.resolution else {}
    return build_model(options.model, latent_dim=options.latent_dim, **extra)


def _resume(settings: Settings, options: TrainOptions) -> tuple[TrainOptions, dict | None]:
    """The stored options of the run to resume, and its latest checkpoint (None if none yet)."""
    run = runs.get_run(settings, options.resume)
    runs.check_resumable(run)
    stored = TrainOptions.from_dict(run.train_config)
    stored = replace(stored, data=str(settings.resolve(run.data_path, "data")),
                     vgg_weights=run.vgg_weights if stored.loss == "dfc" else None,
                     precision=recorded_precision(run.train_config, pick_device(options.device)))
    resumed = stored.resumed_with(options.device, options.minutes, run.id)
    if run.checkpoint is None:  # it stopped before its first checkpoint: start it again
        return resumed, None
    return resumed, read_checkpoint(runs.run_checkpoint_path(settings, run))


def _plan(options: TrainOptions, model: Autoencoder, train_count: int,
          device: torch.device) -> _Plan:
    batches = EpochBatches(train_count, options.batch_size, options.seed, device)
    schedule = None
    if isinstance(model, PGAE):
        schedule = GrowthSchedule(model.config.resolutions, options.fade_images,
                                  options.stabilise_images)
    growth_steps = math.ceil(schedule.total_images / options.batch_size) if schedule else 0
    if options.steps is not None:
        total = options.steps
    elif options.epochs is not None:
        total = options.epochs * batches.steps_per_epoch
    else:
        total = growth_steps or DCAE_DEFAULT_EPOCHS * batches.steps_per_epoch
    if total < growth_steps:
        raise ConfigError(
            f"PGAE's growth schedule needs {schedule.total_images} images ({growth_steps} steps "
            f"of {options.batch_size}), more than the {total} steps asked for; omit "
            f"--epochs/--steps or lower --fade-images/--stabilise-images.")
    # PGAE anneals once its last resolution is in place: over that resolution's stabilisation.
    anneal_start = (math.ceil((schedule.total_images - options.stabilise_images)
                              / options.batch_size) if schedule else 0)
    learning_rate = LearningRate(options.lr, options.lr_schedule, options.warmup_steps,
                                 anneal_start, total)
    return _Plan(batches, schedule, total, learning_rate)


def _fit(session: _Session, plan: _Plan, checkpoint: dict | None, progress: bool) -> None:
    """Adam steps from the checkpoint's step (or 0) to the end, evaluating and saving."""
    options, model, device = session.options, session.model, session.device
    batches, schedule, total = plan.batches, plan.schedule, plan.total_steps
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr)
    start, loss_sum, loss_steps = 0, torch.zeros((), device=device), 0
    if checkpoint:
        state = checkpoint["training"]
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        start, loss_steps = state["step"], state["loss_steps"]
        loss_sum += state["loss_sum"]
    model.train()
    session.loss_fn.train()

    bar = tqdm(total=total * options.batch_size, initial=start * options.batch_size,
               unit="img", desc=f"run {session.run_id} {options.model}", disable=not progress,
               dynamic_ncols=True)
    with bar, _stop_requests() as stop_requested:
        for step in range(start, total):
            phase = _phase(model, schedule, step, options.batch_size)
            if isinstance(model, PGAE):
                model.set_phase(phase.resolution, phase.alpha)
            for group in optimizer.param_groups:
                group["lr"] = plan.learning_rate.at(step)
            batch = _batch(session, batches, step, phase.resolution)
            loss = train_step(model, optimizer, session.loss_fn, batch, options.precision)
            loss_sum += loss
            loss_steps += 1
            done = step + 1
            bar.update(options.batch_size)
            if done % LOG_EVERY == 0 or done == total:
                bar.set_postfix(_postfix(loss.item(), phase, schedule))

            next_phase = _phase(model, schedule, done, options.batch_size)
            if (done % batches.steps_per_epoch == 0 or done == total
                    or next_phase.resolution != phase.resolution):
                _evaluate_and_record(session, done, math.ceil(done / batches.steps_per_epoch),
                                     (loss_sum / loss_steps).item())
                loss_sum, loss_steps = torch.zeros((), device=device), 0

            stopping = (stop_requested.is_set() or _past(session.deadline)
                        or session.should_stop())
            if done % options.checkpoint_every == 0 or done == total or stopping:
                _save(session, optimizer, done, loss_sum.item(), loss_steps)
            if stop_requested.is_set():
                raise TrainingInterrupted(session.run_id, done)
            if stopping:
                runs.update_run(session.settings, session.run_id, state="stopped")
                return
    runs.update_run(session.settings, session.run_id, state="completed",
                    finished_at=utcnow())


def train_step(model: Autoencoder, optimizer: torch.optim.Optimizer, loss_fn: ReconstructionLoss,
               batch: torch.Tensor, precision: str) -> torch.Tensor:
    """One Adam step on a batch (B, 3, R, R) reconstructing itself, computed in `precision`
    ('bf16' or 'fp32'); returns the detached loss."""
    with autocast(batch.device, precision):
        loss = loss_fn(model(batch), batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach().float()


def _phase(model: Autoencoder, schedule: GrowthSchedule | None, step: int,
           batch_size: int) -> Phase:
    """The growth phase of step `step`; a fixed-resolution model is always stabilising."""
    if schedule is None:
        return Phase(resolution=model.resolution, alpha=1.0, fading=False)
    return schedule.phase_at(step * batch_size)


def _batch(session: _Session, batches: EpochBatches, step: int, resolution: int) -> torch.Tensor:
    images = session.train_images[batches.indices(step)]
    return resize_to(to_float_images(images), resolution)  # (B, 3, R, R)


def _postfix(loss: float, phase: Phase, schedule: GrowthSchedule | None) -> dict[str, str]:
    shown = {"loss": f"{loss:.4g}"}
    if schedule is not None:
        shown["res"] = f"{phase.resolution}px"
        shown["alpha"] = f"{phase.alpha:.2f}"
    return shown


def _evaluate_and_record(session: _Session, step: int, epoch: int,
                         train_loss: float | None) -> None:
    """Validation metrics and a reconstruction sheet, recorded in SQL."""
    model, precision = session.model, session.options.precision
    result = evaluate(model, session.val_images, session.loss_fn, precision)
    spread = torch.linspace(0, len(session.val_images) - 1, SHEET_IMAGES).long()
    inputs, outputs = reconstruct(model, session.val_images[spread.to(session.device)],
                                  precision)
    model.train()
    sheet = write_sheet(inputs, outputs, runs.run_dir(session.settings, session.run_id)
                        / "sheets" / f"step-{step:08d}-{model.resolution}px.png")
    runs.record_evaluation(session.settings, session.run_id, epoch=epoch, step=step,
                           resolution=model.resolution, train_loss=train_loss,
                           val_loss=result.loss, val_psnr=result.psnr, val_ssim=result.ssim,
                           sheet=sheet)


def _save(session: _Session, optimizer: torch.optim.Optimizer | None, step: int,
          loss_sum: float, loss_steps: int) -> None:
    training = {
        "step": step,
        "images_seen": step * session.batch_size,
        "optimizer": optimizer.state_dict() if optimizer else {},
        "rng": _rng_state(),
        "loss_sum": loss_sum,  # training loss since the last evaluation, to report it whole
        "loss_steps": loss_steps,
        "options": session.options.to_dict(),
    }
    path = runs.run_dir(session.settings, session.run_id) / f"step-{step:08d}.pt"
    save_checkpoint(path, session.model, training)
    runs.record_checkpoint(session.settings, session.run_id, step, training["images_seen"], path)


def _fit_pca(session: _Session, progress: bool) -> None:
    """Fit PCA on the train split in closed form, then evaluate and save it like a model."""
    images = session.train_images
    bar = tqdm(total=pca_passes(PCA_ITERATIONS) * len(images), unit="img",
               desc=f"run {session.run_id} pca", disable=not progress, dynamic_ncols=True)

    def chunks() -> Iterator[torch.Tensor]:
        for start in range(0, len(images), PCA_CHUNK):
            chunk = to_float_images(images[start:start + PCA_CHUNK])
            bar.update(len(chunk))
            yield chunk

    with bar:
        fit_pca(session.model, chunks, iterations=PCA_ITERATIONS, seed=session.options.seed)
    _evaluate_and_record(session, step=0, epoch=1, train_loss=None)
    _save(session, None, step=0, loss_sum=0.0, loss_steps=0)
    runs.update_run(session.settings, session.run_id, state="completed", images_seen=len(images),
                    finished_at=utcnow())


def _rng_state() -> dict[str, object]:
    state: dict[str, object] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, object]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


@contextlib.contextmanager
def _stop_requests() -> Iterator[threading.Event]:
    """An event the first Ctrl-C or SIGTERM sets (the loop then saves and stops); a second one
    raises.

    Signal handlers exist only in the main thread; elsewhere (a worker thread) the signals keep
    their usual meaning and the last periodic checkpoint is what a resume starts from.
    """
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def handler(signum: int, frame: object) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    previous = {number: signal.signal(number, handler)
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for number, former in previous.items():
            signal.signal(number, former)
