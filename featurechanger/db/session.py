"""Engines (one per process and URL, created after any fork) and transactional sessions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_engines: dict[tuple[int, str], Engine] = {}


def get_engine(url: str) -> Engine:
    """The engine for `url` in this process; a forked child builds its own, never its parent's."""
    key = (os.getpid(), url)
    if key not in _engines:
        _engines[key] = _create_engine(url)
    return _engines[key]


def _create_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = _sqlite_engine(url)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):  # noqa: ANN001
        # WAL lets in-process workers read while another writes; foreign keys are off by default.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def _sqlite_engine(url: str, **connect_args: object) -> Engine:
    """An engine of the SQLite file at `url`, its folder made if need be."""
    database = url.split("///", 1)[-1]
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url, connect_args={"timeout": 60, **connect_args})


@contextmanager
def migration_connection(url: str) -> Iterator[Connection]:
    """A connection for Alembic, on which a migration is one transaction, DDL included.

    On SQLite that takes what its manual prescribes for changing a table's constraints (a
    batch migration copies the table, drops it and renames the copy): the driver's implicit
    transactions off (it would commit each DDL statement, and a failure midway would leave the
    copy behind), foreign keys off during the copy (dropping a table that others refer to
    fails), then a foreign key check before the commit.
    """
    if not url.startswith("sqlite"):
        with get_engine(url).connect() as connection:
            yield connection
        return
    engine = _sqlite_engine(url, isolation_level=None)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):  # noqa: ANN001
        dbapi_connection.execute("PRAGMA busy_timeout=60000")
        dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # only outside a transaction

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock at once, not mid-way

    @event.listens_for(engine, "commit")
    def _check_foreign_keys(connection: Connection) -> None:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
        if broken is not None:
            raise RuntimeError(f"migration left rows of table {broken[0]!r} referring to "
                               f"missing rows of {broken[2]!r}; nothing was changed")

    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success, rolls back on error and always closes."""
    if url is None:
        from featurechanger.config import load_settings

        url = load_settings().database_url
    session = sessionmaker(bind=get_engine(url), expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def shown_url(url: str) -> str:
    """The database URL for messages and logs, its password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse has no password to find
        return url


def dispose_engines() -> None:
    """Close every engine of this process (tests, and workers after a fork)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
