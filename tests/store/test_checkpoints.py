"""The service's and batch commands' SQLite writers never checkpoint the log; a checkpointer
thread does."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine

from linkage.store.database import (
    BULK_SORT_THREADS,
    WalCheckpointer,
    batch_engine,
    make_engine,
    write_transaction,
)


def _write_rows(engine: Engine, count: int) -> None:
    for i in range(count):
        with write_transaction(engine) as connection:
            connection.exec_driver_sql("INSERT INTO t (v) VALUES (?)", (f"row {i}" * 50,))


def _database_bytes(path: Path) -> int:
    """The database file itself: committed pages reach it only by a checkpoint."""
    return path.stat().st_size


def test_writers_leave_the_log_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    engine = make_engine(f"sqlite:///{path}", background_checkpoints=True)
    try:
        with write_transaction(engine) as connection:
            connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        # Far past the 1,000 pages at which a commit would checkpoint by itself.
        _write_rows(engine, 1_500)
        log = path.with_name("r.db-wal")
        assert log.stat().st_size > 1_000 * 4096
        before = _database_bytes(path)
        assert before < 100 * 4096  # all 1,500 rows (about 0.5 MB) are only in the log

        checkpointer = WalCheckpointer.of(engine)
        assert checkpointer is not None
        checkpointer.interval = 0.05
        checkpointer.start()
        try:
            deadline = time.monotonic() + 10
            while _database_bytes(path) < 1_500 * 300:  # the rows, about 350 bytes each
                assert time.monotonic() < deadline, "the checkpointer never ran"
                time.sleep(0.05)
        finally:
            checkpointer.stop()
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1_500
    finally:
        engine.dispose()


def test_other_engines_checkpoint_as_they_commit(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
        assert WalCheckpointer.of(make_engine("sqlite://")) is None
    finally:
        engine.dispose()


def test_a_batch_engine_folds_its_log_in_when_done(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with batch_engine(f"sqlite:///{path}") as engine:
        with write_transaction(engine) as connection:
            connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        with write_transaction(engine, bulk=True) as connection:
            threads = connection.exec_driver_sql("PRAGMA threads").scalar()
            assert threads == BULK_SORT_THREADS  # index rebuilds may sort in parallel
        _write_rows(engine, 1_500)
    assert _database_bytes(path) >= 1_500 * 300  # in the file itself, not only in the log
    log = path.with_name("r.db-wal")
    assert not log.exists() or log.stat().st_size == 0
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA threads").scalar() == 0
            assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1_500
    finally:
        engine.dispose()
