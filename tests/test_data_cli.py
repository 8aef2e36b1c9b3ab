"""`featurechanger data synth | shard | info`: JSON keys scripts rely on, records, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from featurechanger.db import session_scope
from featurechanger.db.datasets import DatasetRecord, ShardSetRecord
from orchestrator.cli import main


def _run(*args: str) -> dict:
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_synth_shard_info_and_records(home: Path, tmp_path: Path) -> None:
    faces, shards = tmp_path / "faces", tmp_path / "shards"
    made = _run("data", "synth", str(faces), "--count", "30", "--layout", "original",
                "--counterfactual", "eyeglasses=0", "--workers", "1")
    assert (made["images"], made["layout"], made["counterfactual"]) == (30, "original",
                                                                       {"Eyeglasses": 0})

    described = _run("data", "info", str(faces))
    assert described["kind"] == "dataset" and described["images"] == 30
    assert described["splits"] == {"train": 24, "val": 3, "test": 3}
    assert described["prevalence"]["Eyeglasses"] == 0.0 and len(described["prevalence"]) == 40
    assert described["excluded"] == []

    (faces / "img_align_celeba" / "000005.jpg").write_bytes(b"broken")
    assert _run("data", "info", str(faces))["excluded"] == []  # only decoding finds it
    verified = _run("data", "info", str(faces), "--verify", "--workers", "1")
    assert verified["images"] == 29 and verified["splits"]["train"] == 23
    assert [item["image_id"] for item in verified["excluded"]] == ["000005.jpg"]
    assert "Cannot decode '000005.jpg'" in verified["excluded"][0]["reason"]
    built = _run("data", "shard", str(faces), "--out", str(shards), "--size", "16",
                 "--shard-size", "8", "--workers", "1")
    assert (built["shards"], built["images"], built["sizes"]) == (4, 29, [16])
    assert built["excluded"][0]["image_id"] == "000005.jpg"
    rebuilt = _run("data", "shard", str(faces), "--out", str(shards), "--size", "16",
                   "--shard-size", "8", "--workers", "1")
    assert rebuilt["shard_set_id"] == built["shard_set_id"]  # updated, not duplicated

    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(ShardSetRecord)) == 1
        record = session.get(ShardSetRecord, built["shard_set_id"])
        dataset = session.get(DatasetRecord, record.dataset_id)
        assert (record.images, record.excluded, record.shards, record.sizes) == (29, 1, 4, [16])
        assert (dataset.layout, dataset.fingerprint, dataset.images) == (
            "original", built["fingerprint"], 30)

    info = _run("data", "info", str(shards))
    assert info["kind"] == "shard_set" and info["images"] == 29
    assert info["splits"] == {"train": 23, "val": 3, "test": 3}
    assert info["excluded"] == built["excluded"]
    assert set(info["prevalence"]) == set(described["prevalence"])

    text = CliRunner().invoke(main, ["data", "info", str(shards)]).output
    assert "29 images (train 23, val 3, test 3)" in text and "000005.jpg: Cannot decode '000005.jpg'" in text


def test_errors_are_one_line_messages(home: Path, tmp_path: Path) -> None:
    missing = CliRunner().invoke(main, ["data", "info", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1
    assert "Error: Dataset folder" in missing.output and "Expected layouts" in missing.output
    bad = CliRunner().invoke(main, ["data", "synth", str(tmp_path / "x"), "--count", "2",
                                    "--counterfactual", "Eyeglasses"])
    assert bad.exit_code == 2 and "'Eyeglasses' is not NAME=0 or NAME=1" in bad.output
    not_drawn = CliRunner().invoke(main, ["data", "synth", str(tmp_path / "x"), "--count", "2",
                                          "--counterfactual", "Attractive=1"])
    assert not_drawn.exit_code == 1 and "Cannot set 'Attractive'" in not_drawn.output


def test_two_copies_of_a_dataset_are_recorded_each_with_its_own_root(
        home: Path, tmp_path: Path) -> None:
    """One row keyed by the fingerprint alone took the root and layout of the last copy
    sharded, for the shard sets of both."""
    first, second = tmp_path / "faces", tmp_path / "copy"
    _run("data", "synth", str(first), "--count", "12", "--workers", "1")
    _run("data", "synth", str(second), "--count", "12", "--workers", "1", "--layout", "original")
    built = [_run("data", "shard", str(root), "--out", str(tmp_path / f"shards-{root.name}"),
                  "--size", "16", "--workers", "1") for root in (first, second, first)]
    assert built[0]["fingerprint"] == built[1]["fingerprint"]  # the same images and labels
    assert built[0]["dataset_id"] != built[1]["dataset_id"]
    assert built[2]["dataset_id"] == built[0]["dataset_id"]  # a rebuild updates its row
    with session_scope(f"sqlite:///{home / 'featurechanger.db'}") as session:
        rows = {record.id: (record.root, record.layout)
                for record in session.scalars(select(DatasetRecord))}
    assert rows == {built[0]["dataset_id"]: (str(first), "kaggle"),
                    built[1]["dataset_id"]: (str(second), "original")}


def test_shard_and_synth_refuse_to_draw_over_another_dataset(home: Path, tmp_path: Path) -> None:
    def invoke(*args: object) -> object:
        return CliRunner().invoke(main, [str(arg) for arg in args])

    faces, other, shards = tmp_path / "faces", tmp_path / "other", tmp_path / "shards"
    for folder, seed in ((faces, 0), (other, 1)):
        assert invoke("data", "synth", folder, "--count", 12, "--seed", seed,
                      "--workers", 1).exit_code == 0
    assert invoke("data", "shard", faces, "--out", shards, "--size", 16).exit_code == 0
    refused = invoke("data", "shard", other, "--out", shards, "--size", 16)
    assert refused.exit_code == 1 and "holds the shards of another dataset" in refused.output
    assert invoke("data", "shard", other, "--out", shards, "--size", 16,
                  "--replace").exit_code == 0
    jobs = json.loads(invoke("jobs", "list", "--json").output)["jobs"]
    regrouped = invoke("data", "shard", other, "--out", shards, "--size", 16, "--shard-size", 4)
    assert regrouped.exit_code == 1 and "regroup its images" in regrouped.output
    assert json.loads(invoke("jobs", "list", "--json").output)["jobs"] == jobs  # no job made
    refused = invoke("data", "synth", faces, "--count", 10, "--workers", 1)
    assert refused.exit_code == 1 and "pass --replace" in refused.output
    assert len(list((faces / "img_align_celeba").rglob("*.jpg"))) == 12


def test_data_commands_do_not_import_torch() -> None:
    code = ("import sys; from orchestrator.commands import data; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_cli_starts_without_numpy_or_pillow() -> None:
    """`--help` and the commands that read no images took 0.2 s more to import them."""
    code = ("import sys; from orchestrator.cli import main; "
            "main(['data', 'shard', '--help'], standalone_mode=False); "
            "print(sorted({'numpy', 'PIL', 'torch'} & set(sys.modules)))")
    ended = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert ended.stdout.splitlines()[-1] == "[]"


def test_the_data_options_the_cli_offers_are_those_the_readers_implement() -> None:
    from featurechanger.data.celeba import LAYOUTS
    from featurechanger.data.images import crop_box
    from featurechanger.data.options import CROPS, DEFAULT_CROP, LAYOUT_NAMES

    assert LAYOUT_NAMES == tuple(LAYOUTS) and DEFAULT_CROP in CROPS
    assert len({crop_box(178, 218, crop) for crop in CROPS}) == len(CROPS)  # each its own
