"""Engines and migrations for the registry: an SQLite file by default, PostgreSQL in production."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import StaticPool

from linkage.settings import store_settings

BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (pysqlite's own transaction handling is off), so a
    # write transaction can ask for BEGIN IMMEDIATE and hold the write lock from its start.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable with WAL, much faster than FULL
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: bulk loads keep index pages hot
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    mode = connection.get_execution_options().get("sqlite_begin", "")
    connection.exec_driver_sql(f"BEGIN {mode}".strip())


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes: on SQLite it takes the write lock at BEGIN (IMMEDIATE), so
    reads made inside it (e.g. the next free id) stay true until it commits."""
    with (
        engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection,
        connection.begin(),
    ):
        yield connection


def make_engine(url: str | None = None) -> Engine:
    """An engine for the registry at `url` (default: CCI_DATABASE_URL)."""
    url = url or store_settings().database_url
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False},
            poolclass=StaticPool if memory else None,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # No server-side prepared statements: their generic plans, made while a bulk load is
    # growing a table with stale statistics, turned indexed key look-ups into full scans.
    return create_engine(url, pool_pre_ping=True, connect_args={"prepare_threshold": None})


def _alembic_config(connection: Any) -> Config:
    import migrations

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


def _run(engine_or_url: Engine | str | None, action: Any) -> Any:
    engine = engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)
    try:
        with engine.begin() as connection:
            return action(connection)
    finally:
        if engine is not engine_or_url:
            engine.dispose()


def upgrade(engine_or_url: Engine | str | None = None, revision: str = "head") -> None:
    """Migrate the registry to `revision` (every database command does this first)."""
    _run(engine_or_url, lambda c: command.upgrade(_alembic_config(c), revision))


def downgrade(engine_or_url: Engine | str | None, revision: str) -> None:
    _run(engine_or_url, lambda c: command.downgrade(_alembic_config(c), revision))


def current_revision(engine_or_url: Engine | str | None = None) -> str | None:
    def read(connection: Any) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    result: str | None = _run(engine_or_url, read)
    return result
