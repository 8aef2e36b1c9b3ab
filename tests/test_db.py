"""The schema migrates on SQLite and PostgreSQL, round-trips, and matches the models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from featurechanger.db.migrate import current_revision, ensure_schema, head_revision, upgrade
from featurechanger.db.session import get_engine
from featurechanger.errors import ConfigError
from orchestrator.cli import main
from tests.conftest import POSTGRES_ADMIN_URL

TABLES = {"datasets", "shard_sets", "runs", "checkpoints", "run_metrics", "vector_sets",
          "vectors", "jobs", "job_tasks", "results"}
REPO = Path(__file__).resolve().parents[1]


def test_db_upgrade_command_creates_every_table_on_sqlite(home: Path) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade", "--json"])
    assert result.exit_code == 0, result.output
    url = f"sqlite:///{home / 'featurechanger.db'}"
    assert TABLES <= set(inspect(get_engine(url)).get_table_names())
    assert '"revision": "' + head_revision(url) in result.output


def _database_at_0006_with_a_shard_set(path: Path) -> str:
    import sqlite3

    url = f"sqlite:///{path}"
    upgrade(url, "0006")
    with sqlite3.connect(path) as connection:
        connection.execute("INSERT INTO datasets (root, layout, fingerprint, images, created_at) "
                           "VALUES ('faces', 'kaggle', 'f1', 3, '2026-01-01')")
        connection.execute("INSERT INTO shard_sets (dataset_id, path, sizes, crop, shard_size, "
                           "shards, images, excluded, created_at, updated_at) VALUES (1, "
                           "'shards', '[32]', 'center', 2048, 1, 3, 0, '2026-01-01', "
                           "'2026-01-01')")
    return url


def _tables(path: Path) -> dict[str, str]:
    import sqlite3

    with sqlite3.connect(path) as connection:
        return dict(connection.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))


def test_upgrading_sqlite_keeps_rows_that_other_tables_refer_to(tmp_path: Path) -> None:
    """0007 copies the datasets table, which shard sets refer to: with foreign keys on, its
    drop failed and left the copy behind, and every later command failed on it."""
    url = _database_at_0006_with_a_shard_set(tmp_path / "records.db")
    assert upgrade(url) == head_revision(url)
    tables = _tables(tmp_path / "records.db")
    assert "uq_datasets_fingerprint_root" in tables["datasets"]
    assert not any(name.startswith("_alembic_tmp") for name in tables)
    with get_engine(url).connect() as connection:
        assert connection.exec_driver_sql(
            "SELECT d.root FROM shard_sets s JOIN datasets d ON d.id = s.dataset_id").all() == [
                ("faces",)]


def test_a_sqlite_migration_that_fails_changes_nothing(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "records.db"
    url = _database_at_0006_with_a_shard_set(path)
    with sqlite3.connect(path) as connection:  # a shard set of no dataset: the check fails
        connection.execute("UPDATE shard_sets SET dataset_id = 7")
    before = _tables(path)
    with pytest.raises(ConfigError, match=r"failed and was rolled back \(RuntimeError: .*"
                                          r"shard_sets.* it is at revision '0006'"):
        upgrade(url)
    assert _tables(path) == before and current_revision(url) == "0006"


@pytest.mark.services
def test_migrations_upgrade_and_downgrade_on_postgres(postgres_url: str) -> None:
    assert upgrade(postgres_url) == head_revision(postgres_url)
    assert TABLES <= set(inspect(get_engine(postgres_url)).get_table_names())
    upgrade_down = subprocess.run(
        [sys.executable, "-m", "alembic", "downgrade", "base"], cwd=REPO,
        env={"FEATURECHANGER_DATABASE_URL": postgres_url, "PATH": ""}, capture_output=True,
        text=True,
    )
    assert upgrade_down.returncode == 0, upgrade_down.stderr
    assert current_revision(postgres_url) is None


@pytest.mark.services
def test_postgres_needs_explicit_upgrade(postgres_url: str) -> None:
    with pytest.raises(ConfigError, match="featurechanger db upgrade"):
        ensure_schema(postgres_url)
    upgrade(postgres_url)
    ensure_schema(postgres_url)


@pytest.mark.services
@pytest.mark.parametrize("command", [["db", "upgrade"], ["db", "current"], ["runs", "list"],
                                     ["jobs", "list"]])
def test_an_unreachable_database_is_a_one_line_error_without_its_password(
        command: list[str]) -> None:
    missing = make_url(POSTGRES_ADMIN_URL).set(password="s3cret",
                                               database="featurechanger_no_such_database")
    result = CliRunner().invoke(
        main, ["--database-url", missing.render_as_string(hide_password=False), *command])
    assert result.exit_code == 1 and "Cannot reach the records database" in result.output
    assert "featurechanger_no_such_database" in result.output and "s3cret" not in result.output


def test_alembic_check_finds_no_drift(home: Path) -> None:
    env = {"FEATURECHANGER_HOME": str(home), "PATH": ""}
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=REPO, env=env,
                   check=True, capture_output=True)
    check = subprocess.run([sys.executable, "-m", "alembic", "check"], cwd=REPO, env=env,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


def test_migrations_are_found_from_outside_a_checkout(home: Path, tmp_path: Path) -> None:
    """An installed copy has no alembic.ini beside it: upgrade must not depend on the cwd."""
    script = ("from featurechanger.db.migrate import upgrade; "
              f"print(upgrade('sqlite:///{tmp_path / 'elsewhere.db'}'))")
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == head_revision(f"sqlite:///{home / 'x.db'}")
