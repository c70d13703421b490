"""Database fixtures: a fresh SQLite file, a fresh PostgreSQL database, or each in turn.

The PostgreSQL server comes from CCI_TEST_POSTGRES_URL (default: the local test server).
Where it cannot be reached the PostgreSQL tests are skipped with a notice, except under CI
(CI=true), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from linkage.store import make_engine, upgrade

POSTGRES_URL = os.environ.get(
    "CCI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
_postgres_reachable: bool | None = None


def _server_reachable() -> bool:
    global _postgres_reachable
    if _postgres_reachable is None:
        try:
            engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            engine.dispose()
            _postgres_reachable = True
        except Exception:
            _postgres_reachable = False
    return _postgres_reachable


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server, dropped afterwards."""
    with _fresh_postgres() as url:
        yield url


@contextmanager
def _fresh_postgres() -> Iterator[str]:
    if not _server_reachable():
        message = f"PostgreSQL not reachable at {POSTGRES_URL}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (required under CI)")
        pytest.skip(message)
    name = f"cci_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on SQLite and on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def other_db_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second fresh registry on the same kind of database as `db_url`."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'other.db'}"
        return
    with _fresh_postgres() as url:
        yield url


@pytest.fixture
def migrated_engine(db_url: str) -> Iterator[Engine]:
    """An engine on a fresh, migrated registry (each database in turn), disposed afterwards."""
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _postgres_reachable is False:
        terminalreporter.write_line(
            f"NOTICE: PostgreSQL tests were skipped: no server at {POSTGRES_URL}", yellow=True
        )


@pytest.fixture(scope="session", autouse=True)
def _batch_uploads_in_a_temporary_folder(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """Apps built by tests keep batch uploads out of the working directory."""
    from service.settings import service_settings

    before = os.environ.get("CCI_BATCH_DIR")
    os.environ["CCI_BATCH_DIR"] = str(tmp_path_factory.mktemp("batch-uploads"))
    service_settings.cache_clear()
    yield
    if before is None:
        os.environ.pop("CCI_BATCH_DIR", None)
    else:
        os.environ["CCI_BATCH_DIR"] = before
    service_settings.cache_clear()
