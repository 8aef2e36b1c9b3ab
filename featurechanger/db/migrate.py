"""Run Alembic migrations programmatically, from a checkout or an installed copy alike.

`ensure_schema`, which every recording command calls, first compares the stored revision (one
query) with the head read from the migration files' `revision` / `down_revision` lines, so that
a current database costs no Alembic import (0.1-0.3 s of every CLI call); only a database that
is behind goes through Alembic. A test keeps `file_head_revision` equal to Alembic's head.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from featurechanger.db.session import get_engine, shown_url
from featurechanger.errors import ConfigError, first_line

if TYPE_CHECKING:
    from alembic.config import Config

_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(.+)$", re.MULTILINE)


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the `migrations` package wherever it is installed."""
    from alembic.config import Config

    import migrations

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> str:
    """Bring the database at `url` to `revision`; returns the revision it is at afterwards.

    Each migration is one transaction (featurechanger.db.session.migration_connection), so one
    that fails changes nothing, and the error says so with the reason."""
    from alembic import command

    current_revision(url)  # an unreachable database is a ConfigError of its own
    try:
        command.upgrade(alembic_config(url), revision)
    except Exception as error:  # noqa: BLE001 - rolled back; the reason goes to the user
        raise ConfigError(
            f"Upgrading the records database at {shown_url(url)!r} to revision {revision!r} "
            f"failed and was rolled back ({type(error).__name__}: {first_line(error)}); it is "
            f"at revision {current_revision(url) or 'none'!r}.") from error
    return current_revision(url) or "base"


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with reachable(url), get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(url: str) -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def ensure_schema(url: str) -> None:
    """Make sure the schema is current before a command writes records.

    The embedded SQLite default is upgraded on first use, so that it needs no setup step; a
    shared database (PostgreSQL) is only checked, because upgrading it is an operator's decision.
    """
    head = file_head_revision()
    with reachable(url):
        if head is not None and stored_revision(url) == head:
            return
    if url.startswith("sqlite"):
        if current_revision(url) != head_revision(url):
            upgrade(url)
        return
    current, head = current_revision(url), head_revision(url)
    if current != head:
        raise ConfigError(
            f"The database at {shown_url(url)!r} is at schema revision {current or 'none'!r}, "
            f"but this version needs {head!r}. Run `featurechanger db upgrade` first."
        )


@contextmanager
def reachable(url: str) -> Iterator[None]:
    """Turn a database that cannot be reached into a ConfigError that says why and what to
    check, instead of a driver traceback."""
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except OperationalError as error:
        raise ConfigError(
            f"Cannot reach the records database at {shown_url(url)!r}: "
            f"{first_line(error.orig)}. Check FEATURECHANGER_DATABASE_URL (or --database-url), "
            f"that its server runs and that the database exists.") from error


def stored_revision(url: str) -> str | None:
    """The revision recorded in the database's alembic_version table (None: no table, or not
    exactly one row), read with one plain query."""
    from sqlalchemy import inspect, text

    with get_engine(url).connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def file_head_revision() -> str | None:
    """The one revision of the `migrations` package that no other revises, read from the files'
    `revision = '...'` and `down_revision = ...` lines; None unless there is exactly one."""
    import migrations

    revisions, revised = set(), set()
    for path in (Path(migrations.__file__).parent / "versions").glob("*.py"):
        text = path.read_text()
        found = _REVISION.search(text)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = _DOWN_REVISION.search(text)
        if down is not None:
            revised.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None
