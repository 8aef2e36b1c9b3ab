"""`featurechanger demo --quick`, the README's main command on a small set, end to end: every
step's job succeeds and every file it announces is there. It takes a few minutes on 2 cores.
And the sizes the full demo picks for the precision its nets train in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.commands.demo import QUICK, demo_size
from tests.test_output import reject_constant

# The demo's own limit (1,200 s) applies, not the suite's 600 s: on a loaded 2-core machine the
# quick demo has been seen to take 5 to 10 minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

FEATURECHANGER = Path(sys.executable).parent / "featurechanger"


def test_the_quick_demo_runs_every_step_and_says_where_everything_is(
        home: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    demo = subprocess.run([str(FEATURECHANGER), "demo", "--quick", "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=1200)
    assert demo.returncode == 0, demo.stderr[-3000:]
    made = json.loads(demo.stdout, parse_constant=reject_constant)  # strict JSON
    assert made["face_count"] == QUICK.faces
    assert made["edited_images"] > 0
    edited = sorted(Path(made["edited"]).glob("0*.png"))
    assert len(edited) == made["edited_images"]
    gifs = list(Path(made["gifs"]).glob("*.gif"))  # of the women among them
    assert 0 < len(gifs) < made["edited_images"]
    for picture in (made["contact_sheet"], made["grid"]):
        assert Path(picture).stat().st_size > 0
    assert {"n", "success", "preserved", "male_preserved", "truth_psnr",
            "do_nothing_psnr"} <= set(made["evaluation"])
    assert made["evaluation"]["judge"] == made["classifier"]  # the one not leaning on glasses
    assert made["evaluation"]["judge_decorrelated"] == ["Eyeglasses"]
    assert set(made["seconds"]) == {"synth", "shard", "train", "vectors", "localiser", "refiner",
                                    "edit", "interpolate", "grid", "classifier", "evaluate"}
    assert all(took > 0 for took in made["seconds"].values())
    shown = subprocess.run([str(FEATURECHANGER), "runs", "show", str(made["run_id"]), "--json"],
                           capture_output=True, text=True, timeout=60)
    assert json.loads(shown.stdout)["precision"] == made["precision"]  # all its nets' choice

    listed = subprocess.run([str(FEATURECHANGER), "jobs", "list", "--json"],
                            capture_output=True, text=True, timeout=60)
    jobs = {job["job_id"]: job for job in json.loads(listed.stdout)["jobs"]}
    assert {jobs[job_id]["kind"] for job_id in made["jobs"].values()} == {
        "shard", "train", "vectors", "edit", "interpolate"}
    assert all(jobs[job_id]["state"] == "succeeded" for job_id in made["jobs"].values())
    assert jobs[made["jobs"]["interpolate"]]["done"] == len(gifs)


def test_the_fp32_demo_draws_fewer_faces_but_trains_its_dcae_on_as_many_images() -> None:
    assert demo_size(quick=True, precision="fp32") == demo_size(quick=True, precision="bf16")
    bf16, fp32 = demo_size(quick=False, precision="bf16"), demo_size(quick=False, precision="fp32")
    assert fp32.faces < bf16.faces
    seen = {size: size.faces * size.train_epochs for size in (bf16, fp32)}
    assert abs(seen[fp32] - seen[bf16]) / seen[bf16] < 0.05
