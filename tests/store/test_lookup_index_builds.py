"""A large load may commit without real-time matching's look-up indexes; the run that follows
builds them on a thread while it scores, and whatever is missing can be built again."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from linkage.store import lookup_indexes, make_engine, upgrade
from linkage.store.lookup_indexes import (
    build_lookup_indexes,
    building_lookup_indexes,
    missing_lookup_indexes,
)
from linkage.store.lookup_indexes import (
    lookup_indexes as all_lookup_indexes,
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    made = make_engine(db_url)
    upgrade(made)
    yield made
    made.dispose()


def drop(engine: Engine, count: int) -> list[str]:
    names = [str(index.name) for index in all_lookup_indexes()[:count]]
    with engine.begin() as connection:
        for name in names:
            connection.execute(text(f"DROP INDEX {name}"))
    return names


def missing(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [str(index.name) for index in missing_lookup_indexes(connection)]


def test_only_the_missing_indexes_are_built(engine: Engine) -> None:
    assert missing(engine) == []
    dropped = drop(engine, 2)
    assert missing(engine) == dropped
    assert build_lookup_indexes(engine) == 2
    assert missing(engine) == []
    assert build_lookup_indexes(engine) == 0


def test_the_builder_thread_is_waited_for_and_its_failure_raised(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop(engine, 1)
    with building_lookup_indexes(engine) as built:
        assert built() is True
    assert missing(engine) == []
    with building_lookup_indexes(engine) as built:  # nothing missing: no thread
        assert built() is False

    drop(engine, 1)

    def failing(_engine: Engine) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(lookup_indexes, "build_lookup_indexes", failing)
    with pytest.raises(RuntimeError, match="disk full"), building_lookup_indexes(engine) as built:
        built()
    assert not [t for t in threading.enumerate() if t.name == "lookup-indexes"]
