"""Constraints the registry's schema promises, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from linkage.store import make_engine, upgrade
from linkage.store.database import write_transaction
from linkage.store.models import (
    Assignment,
    Event,
    Identifier,
    LinkageKey,
    Record,
    SourceSystem,
    utcnow,
)


def _one_record(connection: Connection) -> None:
    connection.execute(insert(SourceSystem).values(id=1, code="health", kind="health"))
    connection.execute(insert(LinkageKey).values(key_id="k1"))
    connection.execute(
        insert(Record).values(
            id=1, source_system_id=1, record_id="H1", current_version=1, content_hash="x",
            key_id="k1",
        )
    )  # fmt: skip
    connection.execute(insert(Identifier), [{"cci": "A"}, {"cci": "B"}])


def test_a_record_has_at_most_one_current_assignment(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.begin() as connection:
            _one_record(connection)
            connection.execute(
                insert(Assignment),
                [
                    {"record_pk": 1, "cci": "A", "method": "auto", "ended_at": utcnow()},
                    {"record_pk": 1, "cci": "A", "method": "auto", "ended_at": utcnow()},
                    {"record_pk": 1, "cci": "B", "method": "manual", "ended_at": None},
                ],
            )
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(insert(Assignment).values(record_pk=1, cci="A", method="auto"))
    finally:
        engine.dispose()


def test_enums_are_checked_and_stored_as_strings(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(insert(SourceSystem).values(code="x", kind="police"))
        with engine.begin() as connection:
            _one_record(connection)
            assert connection.scalar(select(Record.status)) == "active"
            stamp = connection.scalar(select(Record.created_at))
            assert stamp is not None
    finally:
        engine.dispose()


def test_event_cursors_increase_and_are_never_reused(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(insert(Event), [{"type": "assigned", "cci": "A"}] * 3)
            cursors = list(connection.scalars(select(Event.cursor).order_by(Event.cursor)))
            assert cursors == sorted(set(cursors)) and len(cursors) == 3
            connection.execute(Event.__table__.delete().where(Event.cursor == cursors[-1]))
            connection.execute(insert(Event).values(type="assigned", cci="B"))
            assert connection.scalar(select(Event.cursor).where(Event.cci == "B")) > cursors[-1]
    finally:
        engine.dispose()


def test_in_memory_sqlite_works() -> None:
    engine = make_engine("sqlite://")
    try:
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(insert(SourceSystem).values(code="health", kind="health"))
        with engine.connect() as connection:
            assert connection.scalar(select(SourceSystem.code)) == "health"
    finally:
        engine.dispose()


def test_bulk_writers_skip_reference_checks_only_inside_their_transaction(
    tmp_path: Path,
) -> None:
    """`write_transaction(bulk=True)` turns SQLite's row-by-row reference checks off for its
    own transaction; the pooled connection checks them again afterwards, even when the bulk
    transaction failed."""
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    dangling = insert(Assignment).values(record_pk=99, cci="A", method="auto")
    try:
        upgrade(engine)
        with write_transaction(engine) as connection:
            _one_record(connection)
        with pytest.raises(RuntimeError), write_transaction(engine, bulk=True) as connection:
            connection.execute(dangling)  # no record 99: not checked here
            raise RuntimeError("the writer fails: nothing it wrote stays")
        with pytest.raises(IntegrityError), write_transaction(engine) as connection:
            connection.execute(dangling)
        with write_transaction(engine, bulk=True) as connection:
            connection.execute(insert(Assignment).values(record_pk=1, cci="A", method="auto"))
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.scalar(select(func.count()).select_from(Assignment)) == 1
    finally:
        engine.dispose()
