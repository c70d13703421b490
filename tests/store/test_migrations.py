"""Migrations go up and down on SQLite and PostgreSQL, and agree with the models."""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from linkage.store import (
    current_revision,
    database_url,
    downgrade,
    head_revision,
    make_engine,
    upgrade,
)
from linkage.store.database import SCHEMA_HEAD
from linkage.store.models import LOOKUP_INDEXES, Base


def test_the_schema_head_constant_is_the_newest_migration() -> None:
    # `upgrade` trusts it to skip loading the migration scripts: a migration added without
    # moving it would leave registries at the one before.
    assert head_revision() == SCHEMA_HEAD


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert {"records", "record_versions", "identifiers", "events", "audit_log"} <= set(
            inspect(engine).get_table_names()
        )
        downgrade(engine, "base")
        assert current_revision(engine) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_models_match_the_migrations(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def _upgrade_together(url: str, start: Any) -> None:
    engine = make_engine(url)
    current_revision(engine)  # imported and connected: now wait for the others
    start.wait(60)
    upgrade(engine)
    engine.dispose()


def test_concurrent_upgrades_of_a_fresh_registry_all_succeed(db_url: str) -> None:
    """Processes starting at once (service workers, CLI) must not all create the tables."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    workers = [context.Process(target=_upgrade_together, args=(db_url, start)) for _ in range(3)]
    for worker in workers:
        worker.start()
    start.wait(120)
    for worker in workers:
        worker.join(120)
        if worker.is_alive():
            worker.kill()
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert current_revision(db_url) == head_revision()


def test_the_lookup_indexes_exist_after_migrating(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        found = {
            index["name"]: tuple(index["column_names"])
            for index in inspect(engine).get_indexes("record_versions")
        }
        assert {name: columns for name, columns in LOOKUP_INDEXES}.items() <= found.items()
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_postgres_urls_get_the_psycopg3_driver(given: str, used: str) -> None:
    assert database_url(given) == used
