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
