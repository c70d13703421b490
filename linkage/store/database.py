"""Engines and migrations for the registry: an SQLite file by default, PostgreSQL in production.

Migrations run through Alembic programmatically, with the `migrations` package found from its
own `__file__`, so they work from an installed package with no alembic.ini.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from linkage.settings import store_settings

BUSY_TIMEOUT_MS = 30_000
#: SQLite page cache of each connection: index pages of the look-ups stay hot.
CACHE_KIB = 64 * 1024
#: ... and of a bulk writer's while it writes, for its index rebuilds and B-tree inserts
#: (ingest of 1M records, eight interleaved runs: 45-60 s, mean 55, with 64 MiB; 40-60 s,
#: mean 50, with 1 GiB). A limit, not an allocation, and trimmed back when the transaction
#: ends.
BULK_CACHE_KIB = 1024 * 1024
#: Worker threads a bulk writer's SQLite may sort with when it rebuilds indexes.
BULK_SORT_THREADS = min(4, os.cpu_count() or 1)
#: Key of the PostgreSQL advisory lock that serialises migrations (any constant unique to it).
MIGRATION_LOCK = 0x43434900
#: Migration files start with their date.
FILE_TEMPLATE = "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s"
T = TypeVar("T")
log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (pysqlite's own transaction handling is off), so a
    # write transaction can ask for BEGIN IMMEDIATE and hold the write lock from its start.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # SQLite's 4 KiB pages stay: 16 KiB pages cut a 1M-record first ingest from 33 to 28 s,
    # but every real-time commit then logs four times the bytes: 363-401 submissions/s
    # against 671-697 with 4 KiB (benchmarks/realtime.py, 364k records, same runs).
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable with WAL, much faster than FULL
    cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    # No memory-mapped I/O (mmap_size stays 0): with WAL, every commit changes the database's
    # size, and each connection then remaps the file at its next transaction. Under real-time
    # submissions from two workers the munmap calls took a third of the CPU as system time:
    # 250 req/s mapped against 340 unmapped on a 1M-record registry; a run's snapshot read
    # took the same time either way.
    cursor.close()


def sqlite_file(engine: Engine) -> str | None:
    """The path of the SQLite file behind `engine` (None: another database, or in memory)."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or path in (None, "", ":memory:"):
        return None
    return path


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


class WalCheckpointer:
    """Checkpoints an SQLite file's write-ahead log from a thread of its own, so that the
    service's writers never do: with automatic checkpoints the commit that crosses 1,000
    pages copies them into the database and syncs it while holding the write lock, and every
    other writer queues behind that sync. PASSIVE checkpoints wait for no one and block no
    one; when two processes' checkpointers meet, one skips its turn."""

    def __init__(self, engine: Engine, interval: float = 0.5) -> None:
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def of(cls, engine: Engine) -> WalCheckpointer | None:
        """A checkpointer for an SQLite file's engine (None for other databases)."""
        return cls(engine) if sqlite_file(engine) is not None else None

    @classmethod
    @contextmanager
    def running(cls, engine: Engine) -> Iterator[None]:
        """Checkpoints from a background thread while the block runs, and the log folded in
        at its end (nothing to do for other databases)."""
        checkpointer = cls.of(engine)
        if checkpointer is None:
            yield
            return
        checkpointer.start()
        try:
            yield
        finally:
            checkpointer.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="cci-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.checkpoint()  # leave the log folded into the file on a clean shutdown

    def checkpoint(self) -> None:
        # On the driver's connection, outside any transaction: inside one (SQLAlchemy begins
        # one on the first statement) SQLite refuses to checkpoint.
        with self.engine.connect() as connection:
            driver = connection.connection.driver_connection
            assert driver is not None
            driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.checkpoint()
            except Exception:  # a failed turn is retried at the next one
                log.warning("WAL checkpoint failed", exc_info=True)


def _sqlite_begin(connection: Any) -> None:
    # On the driver's connection: through exec_driver_sql this BEGIN cost 0.15 ms, a tenth of
    # a real-time submission's write transaction.
    mode = connection.get_execution_options().get("sqlite_begin", "")
    connection.connection.driver_connection.execute(f"BEGIN {mode}".strip())


class _WriterGate:
    """Queues the writers of one SQLite file, across threads and processes, on a blocking
    file lock taken before BEGIN IMMEDIATE. Without it, waiting writers poll in SQLite's busy
    handler, which sleeps up to 100 ms between tries: under concurrent real-time submissions
    that turned a 2 ms write into a 1 s tail. Re-entrant within a thread."""

    _gates: ClassVar[dict[tuple[int, str], _WriterGate]] = {}
    _made = threading.Lock()

    def __init__(self, path: str) -> None:
        self.lock = threading.RLock()
        self.depth = 0
        self.fd = os.open(path + "-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)

    @classmethod
    def of(cls, engine: Engine) -> _WriterGate | None:
        path = sqlite_file(engine)
        if path is None:
            return None
        key = (os.getpid(), os.path.abspath(path))
        with cls._made:
            gate = cls._gates.get(key)
            if gate is None:
                gate = cls._gates[key] = cls(key[1])
        return gate

    @contextmanager
    def held(self) -> Iterator[None]:
        with self.lock:
            if self.depth == 0:
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1
                if self.depth == 0:
                    fcntl.flock(self.fd, fcntl.LOCK_UN)


@contextmanager
def write_transaction(engine: Engine, *, bulk: bool = False) -> Iterator[Connection]:
    """A transaction that writes: on SQLite it takes the write lock at BEGIN (IMMEDIATE), so
    reads made inside it (e.g. the next free id) stay true until it commits; writers to an
    SQLite file queue on its writer gate first, holding no pooled connection while they wait
    (a burst of them behind a linkage run's long write cannot drain the pool).

    `bulk` (SQLite): a larger page cache (BULK_CACHE_KIB), and foreign keys not checked
    inside the transaction. Only for writers whose every reference is made or checked in the
    same transaction (ingest, a run's outcome) and never to a row anything deletes: SQLite
    checks a reference by opening a cursor on the parent for each row, which was half the
    cost of writing a million assignments (11.5 s checked, 5.0 s not). PostgreSQL always
    checks them."""
    gate = _WriterGate.of(engine)
    with (
        gate.held() if gate is not None else nullcontext(),
        engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection,
    ):
        unchecked = bulk and connection.dialect.name == "sqlite"
        driver: Any = connection.connection.driver_connection
        if unchecked:  # only outside a transaction does SQLite take this pragma
            driver.execute("PRAGMA foreign_keys=OFF")
            driver.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
            driver.execute(f"PRAGMA threads={BULK_SORT_THREADS}")
        try:
            with connection.begin():
                yield connection
        finally:
            if unchecked:
                driver.execute("PRAGMA foreign_keys=ON")
                driver.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
                driver.execute("PRAGMA threads=0")


def database_url(url: str | None = None) -> str:
    """`url`, or CCI_DATABASE_URL; plain `postgresql://` URLs get the psycopg 3 driver."""
    url = url or store_settings().database_url
    for bare in ("postgres://", "postgresql://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url[len(bare) :]
    return url


def make_engine(url: str | None = None, *, background_checkpoints: bool = False) -> Engine:
    """An engine for the registry at `url` (default: CCI_DATABASE_URL).

    `background_checkpoints` (SQLite files): commits never checkpoint the write-ahead log;
    the caller runs `WalCheckpointer.of(engine)` instead (the service does).
    """
    url = database_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        memory = make_url(url).database in (None, "", ":memory:")
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False},
            poolclass=StaticPool if memory else None,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        if background_checkpoints and not memory:
            event.listen(engine, "connect", _no_autocheckpoint)
        return engine
    # No server-side prepared statements: their generic plans, made while a bulk load is
    # growing a table with stale statistics, turned indexed key look-ups into full scans.
    return create_engine(url, pool_pre_ping=True, connect_args={"prepare_threshold": None})


@contextmanager
def batch_engine(url: str | None = None) -> Iterator[Engine]:
    """An engine for a batch command (ingest, link), disposed at the end.

    On an SQLite file its commits leave the write-ahead log to a background checkpointer
    (`WalCheckpointer`): a large load's commit then writes its pages once, and they are copied
    into the database while the command goes on working (1M records' first ingest: 33 s
    against 38 s; the copy takes about 3 s beside linkage's scoring)."""
    engine = make_engine(url, background_checkpoints=True)
    try:
        with WalCheckpointer.running(engine):
            yield engine
    finally:
        engine.dispose()


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code; env.py migrates `connection` when given."""
    import migrations

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision the migrations know."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


#: `head_revision()` as a constant (`tests/store/test_migrations.py` holds them equal): a
#: registry already at it needs no migrating, which `upgrade` then sees without loading every
#: migration script (0.1-0.4 s each time, several times a `cci link --input`).
SCHEMA_HEAD = "0011"


def _with_engine(engine_or_url: Engine | str | None, action: Callable[[Engine], T]) -> T:
    engine = engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)
    try:
        return action(engine)
    finally:
        if engine is not engine_or_url:
            engine.dispose()


def _migrate(engine: Engine, step: Callable[[Config], None]) -> None:
    """Run one Alembic command in a write transaction, one migrating process at a time."""
    with write_transaction(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        step(alembic_config(connection))


def _current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine_or_url: Engine | str | None = None, revision: str = "head") -> None:
    """Migrate the registry to `revision` (every database command does this first, so it
    costs one read when the schema is already current)."""

    def action(engine: Engine) -> None:
        if revision == "head" and _current(engine) == SCHEMA_HEAD:
            return
        _migrate(engine, lambda config: command.upgrade(config, revision))

    _with_engine(engine_or_url, action)


def downgrade(engine_or_url: Engine | str | None, revision: str) -> None:
    """Migrate the registry back to `revision` (`base` drops every registry table)."""
    _with_engine(
        engine_or_url,
        lambda engine: _migrate(engine, lambda config: command.downgrade(config, revision)),
    )


def current_revision(engine_or_url: Engine | str | None = None) -> str | None:
    """The registry's schema revision (None: no schema yet)."""
    return _with_engine(engine_or_url, _current)


@contextmanager
def snapshot_transaction(engine: Engine) -> Iterator[Connection]:
    """A read transaction whose queries all see one moment of the registry: SQLite's WAL gives
    that to any transaction; PostgreSQL needs REPEATABLE READ (its default, READ COMMITTED,
    lets each statement see later commits, so a run's records and assignments could differ)."""
    options: dict[str, Any] = {}
    if engine.dialect.name == "postgresql":
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with engine.connect().execution_options(**options) as connection, connection.begin():
        yield connection


#: Key of the PostgreSQL advisory lock that orders event cursors by commit.
EVENT_ORDER_LOCK = 0x43434903


def hold_event_order(connection: Connection) -> None:
    """Call right before inserting events: on PostgreSQL a sequence hands out cursors at insert
    time, so two transactions could commit out of cursor order and a feed reader would skip
    the later-committed event. Holding this lock to commit makes cursor order commit order.
    (SQLite has one writer at a time, so order is already commit order there.)"""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({EVENT_ORDER_LOCK})")
