"""Run Alembic migrations programmatically, from a checkout or an installed copy alike."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from featurechanger.db.session import get_engine
from featurechanger.errors import ConfigError


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the `migrations` package wherever it is installed."""
    import migrations

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> str:
    """Bring the database at `url` to `revision`; returns the revision it is at afterwards."""
    command.upgrade(alembic_config(url), revision)
    return current_revision(url) or "base"


def current_revision(url: str) -> str | None:
    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(url: str) -> str:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def ensure_schema(url: str) -> None:
    """Make sure the schema is current before a command writes records.

    The embedded SQLite default is upgraded on first use, so that it needs no setup step; a
    shared database (PostgreSQL) is only checked, because upgrading it is an operator's decision.
    """
    if url.startswith("sqlite"):
        if current_revision(url) != head_revision(url):
            upgrade(url)
        return
    current, head = current_revision(url), head_revision(url)
    if current != head:
        raise ConfigError(
            f"The database at {url!r} is at schema revision {current or 'none'!r}, but this "
            f"version needs {head!r}. Run `featurechanger db upgrade` first."
        )
