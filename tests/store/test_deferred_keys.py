"""PostgreSQL checks a large load's foreign keys once, and builds its indexes (and a first
load's unique record keys) once, at its end, only while the table was empty; a dangling
reference or a record given twice still stops the load from committing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pytest
from psycopg.errors import UniqueViolation
from sqlalchemy import Connection, Engine, Table, select, text
from sqlalchemy.exc import IntegrityError

from linkage.store import add_source, make_engine, upgrade, write_transaction
from linkage.store.bulk import (
    DEFER_MIN_ROWS,
    DeferredForeignKeys,
    DeferredIndexes,
    DeferredUniqueConstraints,
    bulk_insert,
)
from linkage.store.models import Assignment, Identifier, LinkageRun, Record
from linkage.store.registry import start_run

pytestmark = pytest.mark.postgres
_MOMENT = datetime(2026, 12, 4, tzinfo=UTC)
_ASSIGNMENTS = cast(Table, Assignment.__table__)
_ASSIGNMENT = ("record_pk", "cci", "run_id", "method", "assigned_at")


def _keys(connection: Connection) -> set[str]:
    query = text(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'assignments'::regclass "
        "AND contype = 'f' AND convalidated"
    )
    return set(connection.scalars(query))


def _registry_with_a_record(connection: Connection) -> int:
    add_source(connection, "health", "health")
    connection.execute(
        text("INSERT INTO linkage_keys (key_id, active, registered_at) VALUES ('k', true, now())")
    )
    connection.execute(
        text(
            "INSERT INTO records (source_system_id, record_id, current_version, content_hash, "
            "key_id, restricted, status, created_at, updated_at) SELECT id, 'r1', 1, 'h', 'k', "
            "false, 'active', now(), now() FROM source_systems"
        )
    )
    connection.execute(
        text(
            "INSERT INTO identifiers (cci, status, nhs_anchored, created_at, changed_at) "
            "VALUES ('AAAAAAAAAAA', 'active', false, now(), now())"
        )
    )
    start_run(connection, None)
    return int(connection.scalar(text("SELECT id FROM records")))


def _fresh(postgres_url: str) -> Engine:
    engine = make_engine(postgres_url)
    upgrade(engine)
    return engine


def test_an_empty_tables_keys_are_checked_at_the_end_and_come_back(postgres_url: str) -> None:
    engine = _fresh(postgres_url)
    try:
        with write_transaction(engine) as connection:
            record = _registry_with_a_record(connection)
            run = connection.scalar(select(LinkageRun.id))
            before = _keys(connection)
            references = DeferredForeignKeys(_ASSIGNMENTS)
            references.before_insert(connection, DEFER_MIN_ROWS)
            assert references.dropped and _keys(connection) == set()
            bulk_insert(
                connection,
                "assignments",
                _ASSIGNMENT,
                [(record, "AAAAAAAAAAA", run, "auto", _MOMENT)],
            )
            references.restore(connection)
            assert _keys(connection) == before and len(before) == 3
        with engine.connect() as connection:
            assert _keys(connection) == before
            assert connection.scalar(select(Assignment.cci)) == "AAAAAAAAAAA"
    finally:
        engine.dispose()


def test_a_dangling_reference_stops_the_load(postgres_url: str) -> None:
    engine = _fresh(postgres_url)
    try:
        with pytest.raises(IntegrityError), write_transaction(engine) as connection:
            record = _registry_with_a_record(connection)
            references = DeferredForeignKeys(_ASSIGNMENTS)
            references.before_insert(connection, DEFER_MIN_ROWS)
            assert references.dropped
            bulk_insert(
                connection,
                "assignments",
                _ASSIGNMENT,
                [(record, "NOSUCHCCI00", None, "auto", _MOMENT)],
            )
            references.restore(connection)
        with engine.connect() as connection:
            assert len(_keys(connection)) == 3  # the drop was rolled back with the rest
            assert connection.scalar(select(Identifier.cci)) is None
    finally:
        engine.dispose()


def test_a_table_holding_rows_keeps_its_keys_and_small_loads_too(postgres_url: str) -> None:
    engine = _fresh(postgres_url)
    try:
        with write_transaction(engine) as connection:
            record = _registry_with_a_record(connection)
            small = DeferredForeignKeys(_ASSIGNMENTS)
            small.before_insert(connection, DEFER_MIN_ROWS - 1)
            assert not small.dropped
            bulk_insert(
                connection,
                "assignments",
                _ASSIGNMENT,
                [(record, "AAAAAAAAAAA", None, "auto", _MOMENT)],
            )
            large = DeferredForeignKeys(_ASSIGNMENTS)
            large.before_insert(connection, 10 * DEFER_MIN_ROWS)
            assert not large.dropped and len(_keys(connection)) == 3
    finally:
        engine.dispose()


def _indexes(connection: Connection) -> set[str]:
    query = text("SELECT indexname FROM pg_indexes WHERE tablename = 'assignments'")
    return set(connection.scalars(query))


def test_an_empty_tables_indexes_are_built_once_and_only_then(postgres_url: str) -> None:
    engine = _fresh(postgres_url)
    names = {str(index.name) for index in _ASSIGNMENTS.indexes}
    try:
        with write_transaction(engine) as connection:
            record = _registry_with_a_record(connection)
            assert names <= _indexes(connection)
            indexes = DeferredIndexes(_ASSIGNMENTS)
            indexes.before_insert(connection, DEFER_MIN_ROWS)
            assert indexes.dropped and not names & _indexes(connection)
            bulk_insert(
                connection,
                "assignments",
                _ASSIGNMENT,
                [(record, "AAAAAAAAAAA", None, "auto", _MOMENT)],
            )
            indexes.restore(connection)
            assert names <= _indexes(connection)
            again = DeferredIndexes(_ASSIGNMENTS)
            again.before_insert(connection, 10 * DEFER_MIN_ROWS)  # the table holds a row now
            assert not again.dropped and names <= _indexes(connection)
        with engine.connect() as connection:
            assert names <= _indexes(connection)
    finally:
        engine.dispose()


_RECORDS = cast(Table, Record.__table__)
#: A record row's columns but the key, which PostgreSQL's sequence gives.
_RECORD = (
    "source_system_id",
    "record_id",
    "current_version",
    "content_hash",
    "key_id",
    "restricted",
    "status",
    "created_at",
    "updated_at",
)


def _record(source: int, record_id: str, digest: str = "h") -> tuple[object, ...]:
    return (source, record_id, 1, digest, "k", False, "active", _MOMENT, _MOMENT)


def _unique(connection: Connection) -> set[str]:
    query = text(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'records'::regclass AND contype = 'u'"
    )
    return set(connection.scalars(query))


def _empty_registry(connection: Connection) -> int:
    add_source(connection, "health", "health")
    connection.execute(
        text("INSERT INTO linkage_keys (key_id, active, registered_at) VALUES ('k', true, now())")
    )
    return int(connection.scalar(text("SELECT id FROM source_systems")))


def test_a_first_loads_record_keys_are_made_unique_at_its_end(postgres_url: str) -> None:
    engine = _fresh(postgres_url)
    try:
        with write_transaction(engine) as connection:
            source = _empty_registry(connection)
            before = _unique(connection)
            keys = DeferredUniqueConstraints(_RECORDS)
            keys.before_insert(connection, DEFER_MIN_ROWS)
            assert before and keys.dropped and _unique(connection) == set()
            bulk_insert(connection, "records", _RECORD, [_record(source, "r1")])
            keys.restore(connection)
            assert _unique(connection) == before
        # COPY reaches the driver directly: its own error, not SQLAlchemy's wrapper.
        with pytest.raises(UniqueViolation), write_transaction(engine) as connection:
            keys = DeferredUniqueConstraints(_RECORDS)
            keys.before_insert(connection, DEFER_MIN_ROWS)  # the table holds a row now
            assert not keys.dropped
            bulk_insert(connection, "records", _RECORD, [_record(source, "r1")])
    finally:
        engine.dispose()


def test_a_record_given_twice_stops_a_first_load(postgres_url: str) -> None:
    engine = _fresh(postgres_url)
    try:
        with pytest.raises(IntegrityError), write_transaction(engine) as connection:
            source = _empty_registry(connection)
            keys = DeferredUniqueConstraints(_RECORDS)
            keys.before_insert(connection, DEFER_MIN_ROWS)
            assert keys.dropped
            twice = [_record(source, "r1"), _record(source, "r1", "h2")]
            bulk_insert(connection, "records", _RECORD, twice)
            keys.restore(connection)
        with engine.connect() as connection:
            assert _unique(connection)  # the drop was rolled back with the rest
            assert connection.scalar(text("SELECT count(*) FROM records")) == 0
    finally:
        engine.dispose()
