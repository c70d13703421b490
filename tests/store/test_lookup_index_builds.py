"""A large load may commit without real-time matching's look-up indexes; the run that follows
builds them on a thread while it scores, and whatever is missing can be built again."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, text

from linkage.store import lookup_indexes
from linkage.store.lookup_indexes import (
    build_lookup_indexes,
    building_lookup_indexes,
    missing_lookup_indexes,
)
from linkage.store.lookup_indexes import (
    lookup_indexes as all_lookup_indexes,
)


def drop(engine: Engine, count: int) -> list[str]:
    names = [str(index.name) for index in all_lookup_indexes()[:count]]
    with engine.begin() as connection:
        for name in names:
            connection.execute(text(f"DROP INDEX {name}"))
    return names


def missing(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [str(index.name) for index in missing_lookup_indexes(connection)]


def test_only_the_missing_indexes_are_built(migrated_engine: Engine) -> None:
    assert missing(migrated_engine) == []
    dropped = drop(migrated_engine, 2)
    assert missing(migrated_engine) == dropped
    assert build_lookup_indexes(migrated_engine) == 2
    assert missing(migrated_engine) == []
    assert build_lookup_indexes(migrated_engine) == 0


def test_the_builder_thread_is_waited_for_and_its_failure_raised(
    migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop(migrated_engine, 1)
    with building_lookup_indexes(migrated_engine) as built:
        assert built() is True
    assert missing(migrated_engine) == []
    with building_lookup_indexes(migrated_engine) as built:  # nothing missing: no thread
        assert built() is False

    drop(migrated_engine, 1)

    def failing(_engine: Engine) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(lookup_indexes, "build_lookup_indexes", failing)
    with (
        pytest.raises(RuntimeError, match="disk full"),
        building_lookup_indexes(migrated_engine) as built,
    ):
        built()
    assert not [t for t in threading.enumerate() if t.name == "lookup-indexes"]
