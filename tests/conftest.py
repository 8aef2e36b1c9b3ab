"""Shared fixtures: an isolated FEATURECHANGER_HOME, a private PostgreSQL database, and fp32
training unless a test asks for bf16."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from featurechanger.config import Settings, load_settings
from featurechanger.db.session import dispose_engines
from featurechanger.training import device

POSTGRES_ADMIN_URL = os.environ.get(
    "FEATURECHANGER_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session", autouse=True)
def fp32_unless_asked() -> Iterator[None]:
    """`--precision auto` computes in fp32 in this process whatever the CPU (from the session's
    start, before any module's fixtures train): bf16 kernels round differently on different
    CPUs (AMX, AVX-512 bf16), and the thresholds of tests on toy-sized nets must not depend on
    them (two did). Tests of bf16 ask for it, or patch this back."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(device, "cpu_computes_bf16", lambda: False)
        yield


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh FEATURECHANGER_HOME with no broker, so commands run on the embedded default."""
    path = tmp_path / "home"
    for name in list(os.environ):
        if name.startswith("FEATURECHANGER_") and name != "FEATURECHANGER_TEST_POSTGRES":
            monkeypatch.delenv(name)
    monkeypatch.setenv("FEATURECHANGER_HOME", str(path))
    yield path
    dispose_engines()


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database of this test's own, dropped afterwards."""
    name = f"featurechanger_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001 - say what is missing, then fail
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is needed for this test: {error}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    dispose_engines()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
