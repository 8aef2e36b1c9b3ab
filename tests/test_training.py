"""The training loop, run records and the `train` / `runs` commands, on tiny synthetic shards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from featurechanger.config import Settings
from featurechanger.data.shards import build_shards
from featurechanger.data.synth import write_synthetic
from featurechanger.db.migrate import ensure_schema
from featurechanger.errors import ConfigError, DataError
from featurechanger.jobs.store import job_summary
from featurechanger.models.checkpoint import read_checkpoint
from featurechanger.training import device, loop
from featurechanger.training.batches import EpochBatches
from featurechanger.training.loop import TrainingInterrupted, train
from featurechanger.training.lr import LR_SCHEDULES, LearningRate
from featurechanger.training.options import TrainOptions
from featurechanger.training.runs import (get_run, list_runs, load_run_model,
                                          run_checkpoint_path, run_metrics)
from featurechanger.training.schedule import GrowthSchedule, Phase
from orchestrator.cli import main

# 240 train / 30 val / 30 test faces; with batches of 16, a DCAE epoch is 15 steps.
PGAE_QUICK = {"model": "pgae", "batch_size": 16, "fade_images": 32, "stabilise_images": 32}


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("faces")
    write_synthetic(root / "faces", 300, workers=1, progress=False)
    build_shards(root / "faces", root / "shards", sizes=(32, 64), workers=1, progress=False)
    return str(root / "shards")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    torch.set_num_threads(1)  # also makes CPU results bit-for-bit repeatable
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))


def final_checkpoint(settings: Settings, run_id: int) -> dict:
    return read_checkpoint(run_checkpoint_path(settings, get_run(settings, run_id)))


def assert_same_training_state(first: dict, second: dict) -> None:
    assert first["training"]["step"] == second["training"]["step"]
    for name, tensor in first["state_dict"].items():
        if isinstance(tensor, torch.Tensor):
            assert torch.equal(tensor, second["state_dict"][name]), name
    first_moments = first["training"]["optimizer"]["state"]
    second_moments = second["training"]["optimizer"]["state"]
    assert first_moments.keys() == second_moments.keys()
    for index, moments in first_moments.items():
        for key, value in moments.items():
            assert torch.equal(value, second_moments[index][key]), (index, key)


def interrupt_after(monkeypatch: pytest.MonkeyPatch, steps: int,
                    signal_number: int = signal.SIGINT) -> None:
    """Press Ctrl-C (a real SIGINT, or another signal) right after the `steps`-th training step
    of this call."""
    original, calls = loop.train_step, []

    def step_then_maybe_interrupt(*args: object) -> torch.Tensor:
        loss = original(*args)
        calls.append(1)
        if len(calls) == steps:
            os.kill(os.getpid(), signal_number)
        return loss

    monkeypatch.setattr(loop, "train_step", step_then_maybe_interrupt)


def test_option_names_match_the_registries_and_need_no_torch() -> None:
    from featurechanger.losses import LOSSES
    from featurechanger.models import MODELS
    from featurechanger.training.options import LOSS_NAMES, MODEL_NAMES

    assert MODEL_NAMES == tuple(MODELS) and LOSS_NAMES == LOSSES
    assert LR_SCHEDULES == ("cosine", "constant")
    code = ("import sys, featurechanger.training.options, featurechanger.training.runs, "
            "featurechanger.training.report; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_growth_schedule_switches_resolution_and_alpha_as_configured() -> None:
    schedule = GrowthSchedule((8, 16, 32), fade_images=100, stabilise_images=50)
    assert schedule.total_images == 50 + 2 * 150
    assert schedule.phase_at(0) == Phase(8, 1.0, fading=False)
    assert schedule.phase_at(49) == Phase(8, 1.0, fading=False)
    assert schedule.phase_at(50) == Phase(16, 0.0, fading=True)
    assert schedule.phase_at(75) == Phase(16, 0.25, fading=True)
    assert schedule.phase_at(150) == Phase(16, 1.0, fading=False)
    assert schedule.phase_at(200) == Phase(32, 0.0, fading=True)
    assert schedule.phase_at(10_000) == Phase(32, 1.0, fading=False)  # keeps stabilising
    assert GrowthSchedule((8, 16), 0, 10).phase_at(10) == Phase(16, 1.0, fading=False)


def test_learning_rate_warms_up_then_anneals_to_zero_from_its_start() -> None:
    dcae = LearningRate(1e-3, "cosine", warmup_steps=10, anneal_start=0, total_steps=110)
    assert dcae.at(0) == pytest.approx(1e-4) and dcae.at(9) == pytest.approx(1e-3)
    assert dcae.at(10) == pytest.approx(1e-3) and dcae.at(60) == pytest.approx(5e-4)
    assert dcae.at(109) < 1e-6
    pgae = LearningRate(1e-3, "cosine", warmup_steps=10, anneal_start=80, total_steps=100)
    assert pgae.at(79) == pytest.approx(1e-3) and pgae.at(90) == pytest.approx(5e-4)
    constant = LearningRate(1e-3, "constant", warmup_steps=0, anneal_start=0, total_steps=100)
    assert constant.at(0) == constant.at(99) == 1e-3
    with pytest.raises(ValueError, match="'linear'"):
        LearningRate(1e-3, "linear", 0, 0, 100)
    with pytest.raises(ConfigError, match="Unknown lr_schedule 'step'"):
        TrainOptions(data="x", lr_schedule="step").validate()


def test_pgae_anneals_over_its_last_stabilisation() -> None:
    cpu = torch.device("cpu")
    plan = loop._plan(TrainOptions(data="x", **PGAE_QUICK), loop.build_model("pgae"), 240, cpu)
    # 224 images in steps of 16: the last 32 stable images at 64 px are the final 2 steps.
    assert (plan.total_steps, plan.learning_rate.anneal_start) == (14, 12)
    dcae = loop._plan(TrainOptions(data="x", epochs=2, batch_size=16), loop.build_model("dcae"),
                      240, cpu)
    assert (dcae.total_steps, dcae.learning_rate.anneal_start) == (30, 0)


def test_epoch_batches_are_seeded_drop_last_permutations_on_the_device() -> None:
    batches = EpochBatches(10, 3, seed=7, device="cpu")
    first_epoch = torch.cat([batches.indices(step) for step in range(3)])
    assert batches.steps_per_epoch == 3 and first_epoch.device.type == "cpu"
    assert len(set(first_epoch.tolist())) == 9  # no image twice; the last one is dropped
    assert not torch.equal(batches.indices(3), batches.indices(0))  # a new order each epoch
    assert torch.equal(EpochBatches(10, 3, seed=7).indices(4), batches.indices(4))


def test_pgae_run_grows_through_every_resolution(shards: str, settings: Settings) -> None:
    run_id = train(TrainOptions(data=shards, **PGAE_QUICK), settings, progress=False)
    # 32 images at 8 px, then 32 fading + 32 stable at 16, 32 and 64 px: 14 steps of 16.
    resolutions = [(m.step, m.resolution) for m in run_metrics(settings, run_id)]
    assert resolutions == [(2, 8), (6, 16), (10, 32), (14, 64)]
    model = load_run_model(settings, run_id)
    assert (model.resolution, model.alpha) == (64, 1.0)
    assert get_run(settings, run_id).state == "completed"
    with pytest.raises(ConfigError, match="growth schedule needs 224 images"):
        train(TrainOptions(data=shards, steps=3, **PGAE_QUICK), settings, progress=False)
    assert [run.id for run in list_runs(settings)] == [run_id]  # refused before any record


def test_each_epoch_records_metrics_and_a_sheet(shards: str, settings: Settings) -> None:
    run_id = train(TrainOptions(data=shards, epochs=2, batch_size=16), settings, progress=False)
    metrics = run_metrics(settings, run_id)
    assert [(m.epoch, m.step) for m in metrics] == [(1, 15), (2, 30)]
    for record in metrics:
        assert 0 < record.val_ssim <= 1 and record.val_psnr > 5 and record.val_loss > 0
        sheet = Image.open(settings.resolve(record.sheet, "checkpoint"))
        assert sheet.height < sheet.width  # 8 inputs above 8 outputs
    run = get_run(settings, run_id)
    assert (run.state, run.step, run.images_seen) == ("completed", 30, 480)
    assert run.checkpoint == f"run-{run_id}/step-00000030.pt"  # relative to the root
    assert run.shard_set_id is not None


@pytest.mark.parametrize("options, stop_after", [
    ({"model": "dcae", "steps": 8, "batch_size": 16, "checkpoint_every": 100}, 3),
    ({**PGAE_QUICK, "checkpoint_every": 100}, 7),  # stops half-way through fading in 32 px
], ids=["dcae", "pgae-mid-fade"])
def test_resume_after_ctrl_c_matches_an_uninterrupted_run(
        shards: str, settings: Settings, monkeypatch: pytest.MonkeyPatch, options: dict,
        stop_after: int) -> None:
    whole = train(TrainOptions(data=shards, **options), settings, progress=False)

    interrupt_after(monkeypatch, stop_after)
    with pytest.raises(TrainingInterrupted) as stopped:
        train(TrainOptions(data=shards, **options), settings, progress=False)
    monkeypatch.undo()
    run_id = stopped.value.run_id
    assert stopped.value.step == stop_after
    assert get_run(settings, run_id).state == "interrupted"
    assert final_checkpoint(settings, run_id)["training"]["step"] == stop_after

    assert train(TrainOptions(resume=run_id), settings, progress=False) == run_id
    assert get_run(settings, run_id).state == "completed"
    assert_same_training_state(final_checkpoint(settings, whole),
                               final_checkpoint(settings, run_id))
    assert ([(m.step, m.val_loss, m.train_loss) for m in run_metrics(settings, whole)]
            == [(m.step, m.val_loss, m.train_loss) for m in run_metrics(settings, run_id)])


def test_sigterm_saves_and_stops_like_ctrl_c(shards: str, settings: Settings,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    interrupt_after(monkeypatch, 2, signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as stopped:
        train(TrainOptions(data=shards, model="dcae", steps=8, batch_size=16), settings,
              progress=False)
    assert get_run(settings, stopped.value.run_id).state == "interrupted"
    assert final_checkpoint(settings, stopped.value.run_id)["training"]["step"] == 2
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the loop's handler is gone


def test_killed_train_command_records_the_run_interrupted_and_the_job_cancelled(
        shards: str, settings: Settings) -> None:
    """`kill` (SIGTERM) on the console script: the run and its in-process job must not stay
    'running', and the run's checkpoint is at the step it recorded (so --resume continues)."""
    command = [sys.executable, "-c", "from orchestrator.cli import run; run()", "train",
               "--model", "dcae", "--data", shards, "--steps", "100000", "--batch-size", "16",
               "--checkpoint-every", "5", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    started = time.monotonic()
    while not any(run.step > 0 for run in list_runs(settings)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < started + 120, "training never started"
        time.sleep(0.2)
    process.terminate()
    _, errors = process.communicate(timeout=60)
    assert process.returncode != 0
    run = list_runs(settings)[0]
    assert run.state == "interrupted", errors.decode()
    assert job_summary(settings.database_url, 1)["state"] == "cancelled"
    assert final_checkpoint(settings, run.id)["training"]["step"] == run.step


def test_time_budget_stops_cleanly_and_resumes(shards: str, settings: Settings) -> None:
    options = {"data": shards, "steps": 4, "batch_size": 16}
    whole = train(TrainOptions(**options), settings, progress=False)
    run_id = train(TrainOptions(minutes=0, **options), settings, progress=False)
    run = get_run(settings, run_id)
    assert (run.state, run.step) == ("stopped", 1)
    train(TrainOptions(resume=run_id), settings, progress=False)
    assert_same_training_state(final_checkpoint(settings, whole),
                               final_checkpoint(settings, run_id))
    with pytest.raises(ConfigError, match="is 'completed'"):
        train(TrainOptions(resume=run_id), settings, progress=False)


def test_a_stop_request_saves_the_run_resumable_as_its_time_budget_does(
        shards: str, settings: Settings) -> None:
    asked = []

    def after_three_steps() -> bool:
        asked.append(1)
        return len(asked) >= 3

    made = []
    run_id = train(TrainOptions(data=shards, steps=10, batch_size=16), settings, progress=False,
                   on_run=made.append, should_stop=after_three_steps)
    assert made == [run_id]
    run = get_run(settings, run_id)
    assert (run.state, run.step) == ("stopped", 3)
    assert final_checkpoint(settings, run_id)["training"]["step"] == 3


def test_a_run_is_trained_by_one_process_at_a_time(shards: str, settings: Settings) -> None:
    from featurechanger.locks import exclusive
    from featurechanger.training.runs import run_dir

    run_id = train(TrainOptions(data=shards, steps=4, batch_size=16, minutes=0), settings,
                   progress=False)
    before = get_run(settings, run_id)
    with exclusive(run_dir(settings, run_id) / loop.TRAINING_LOCK, "held by this test"):
        with pytest.raises(DataError, match=f"Run {run_id} is being trained by another process"):
            train(TrainOptions(resume=run_id), settings, progress=False)
    after = get_run(settings, run_id)
    assert (after.state, after.step) == (before.state, before.step) == ("stopped", 1)
    train(TrainOptions(resume=run_id), settings, progress=False)
    assert get_run(settings, run_id).state == "completed"


def test_a_train_job_interrupted_then_retried_resumes_its_own_run(
        shards: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from featurechanger.jobs.runner import run_in_process
    from featurechanger.jobs.store import retry_job
    from featurechanger.jobs.submit import new_job

    ensure_schema(settings.database_url)
    options = TrainOptions(data=shards, steps=6, batch_size=16, checkpoint_every=2)
    job_id, _ = new_job(settings, "train", options.to_dict(), queue=None, command_line="test")
    uninterrupted = loop.train_step
    interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run_in_process(settings, job_id)
    job = job_summary(settings.database_url, job_id)
    assert job["state"] == "cancelled" and job["run_id"] is not None  # tied as soon as made
    assert get_run(settings, job["run_id"]).state == "interrupted"
    monkeypatch.setattr(loop, "train_step", uninterrupted)
    retry_job(settings.database_url, job_id)
    run_in_process(settings, job_id)
    assert job_summary(settings.database_url, job_id)["state"] == "succeeded"
    assert [(run.id, run.state, run.step) for run in list_runs(settings)] == [
        (job["run_id"], "completed", 6)]


def test_a_run_records_the_precision_auto_chose_and_resumes_in_it(
        shards: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    options = {"data": shards, "steps": 4, "batch_size": 16}
    monkeypatch.setattr(device, "cpu_computes_bf16", lambda: True)
    bf16 = train(TrainOptions(**options), settings, progress=False)
    stopped = train(TrainOptions(minutes=0, **options), settings, progress=False)
    monkeypatch.setattr(device, "cpu_computes_bf16", lambda: False)
    fp32 = train(TrainOptions(**options), settings, progress=False)
    assert [get_run(settings, run).train_config["precision"] for run in (bf16, stopped, fp32)] \
        == ["bf16", "bf16", "fp32"]
    first, second = final_checkpoint(settings, bf16), final_checkpoint(settings, fp32)
    assert not all(torch.equal(tensor, second["state_dict"][name])
                   for name, tensor in first["state_dict"].items()
                   if isinstance(tensor, torch.Tensor))
    # `auto` would pick fp32 now; the resumed run goes on in the bf16 it recorded.
    train(TrainOptions(resume=stopped), settings, progress=False)
    assert_same_training_state(first, final_checkpoint(settings, stopped))


def test_dfc_without_weights_stops_before_the_first_step(shards: str, settings: Settings) -> None:
    with pytest.raises(ConfigError, match="vgg19-dcbb9e9d.pth"):
        train(TrainOptions(data=shards, loss="dfc", steps=1), settings, progress=False)
    assert list_runs(settings) == []
    assert not settings.checkpoint_root.exists()


def test_pca_baseline_is_fitted_and_saved_like_a_model(shards: str, settings: Settings) -> None:
    run_id = train(TrainOptions(model="pca", data=shards, resolution=64), settings,
                   progress=False)
    model = load_run_model(settings, run_id)
    assert (model.name, model.resolution) == ("pca", 64)
    assert model.encode(torch.rand(2, 3, 64, 64)).shape == (2, 100)
    [record] = run_metrics(settings, run_id)
    assert record.val_psnr > 15
    assert get_run(settings, run_id).train_config["precision"] == "fp32"  # closed form
    with pytest.raises(DataError, match="needs more than 400 training images; got 240"):
        train(TrainOptions(model="pca", data=shards, latent_dim=200), settings, progress=False)
    assert len(list_runs(settings)) == 1


def test_unknown_run_says_how_to_list_runs(settings: Settings) -> None:
    with pytest.raises(DataError, match="No training run with id 42.*runs list"):
        get_run(settings, 42)


def invoke(*args: str) -> dict:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_train_and_runs_commands_report_as_json(shards: str, home: Path, tmp_path: Path) -> None:
    run_id = invoke("train", "--data", shards, "--steps", "3", "--batch-size", "16",
                    "--loss", "dfc", "--vgg-weights", "random", "--json")["run_id"]
    shown = invoke("runs", "show", str(run_id), "--plot", str(tmp_path / "curves.png"), "--json")
    assert shown["run_id"] == run_id and shown["model"] == "dcae"
    assert shown["state"] == "completed" and Path(shown["checkpoint"]).is_file()
    assert set(shown["metrics"]) >= {"val_psnr", "val_ssim", "val_loss"}
    assert shown["vgg_weights"] == "random" and "random" in shown["note"]
    assert shown["precision"] in ("bf16", "fp32")  # what `auto` chose here
    assert Image.open(tmp_path / "curves.png").width > 0
    unknown = CliRunner().invoke(main, ["runs", "show", str(run_id), "--plot", "curves.xyz"])
    assert unknown.exit_code == 2 and "does not end in .png, .pdf, .svg" in unknown.output

    listed = CliRunner().invoke(main, ["runs", "list"])
    assert "random VGG" in listed.output
    human = CliRunner().invoke(main, ["runs", "show", str(run_id)])
    assert "NOTE: DFC loss with random (untrained) VGG19 features" in human.output
    assert f"loss dfc, {shown['precision']}" in human.output
    finished = CliRunner().invoke(main, ["train", "--resume", str(run_id)])
    assert finished.exit_code == 1 and f"Run {run_id} is 'completed'" in finished.output
    checkpoint = Path(shown["checkpoint"])
    checkpoint.rename(tmp_path / "away.pt")
    assert invoke("runs", "show", str(run_id), "--json")["missing"] == ["checkpoint"]
    assert "(MISSING: restore it, or train the run again)" in CliRunner().invoke(
        main, ["runs", "show", str(run_id)]).output
    (tmp_path / "away.pt").rename(checkpoint)
    tested = invoke("runs", "evaluate", str(run_id), "--split", "test", "--json")
    assert tested["images"] == 30 and tested["resolution"] == 32 and tested["psnr"] > 5
    assert "random" in tested["note"]


def test_resume_refuses_options_that_define_the_run(home: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--resume", "1", "--model", "pgae"])
    assert result.exit_code != 0
    assert ("--resume 1 continues with the run's stored options; do not give --model"
            in result.output)


def test_resuming_an_unknown_run_is_a_one_line_error(home: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--resume", "99"])
    assert result.exit_code == 1 and "No training run with id 99" in result.output
