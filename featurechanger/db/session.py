"""Engines (one per process and URL, created after any fork) and transactional sessions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
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
    database = url.split("///", 1)[-1]
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):  # noqa: ANN001
        # WAL lets in-process workers read while another writes; foreign keys are off by default.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


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
