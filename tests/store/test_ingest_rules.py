"""The registry's admission rules at ingest: keys, encoding versions, optional columns, formats."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, inspect, select, text, update

from linkage.contract import ENCODING_VERSION, PSEUDONYMISED_COLUMN_NAMES
from linkage.errors import UnknownKeyError, UnusableInputError
from linkage.store import bulk, ingest_files, kind_from_code, make_engine
from linkage.store.models import LOOKUP_INDEXES, LinkageKey, Record, record_versions
from tests.store.pseudo_rows import KEY_ID, pseudo_row, write_pseudo_csv


@pytest.fixture
def engine(db_url: str) -> Any:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def rows(count: int, seed: int = 1, source: str = "health") -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [pseudo_row(rng, source, f"R{i:04d}") for i in range(count)]


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table)) or 0


def test_kind_is_inferred_from_the_code_prefix() -> None:
    assert kind_from_code("health") == "health"
    assert kind_from_code("health_leeds_gp") == "health"
    assert kind_from_code("education_x") == "education"
    assert kind_from_code("social_care_wakefield") == "social_care"
    assert kind_from_code("police") == "other"
    assert kind_from_code("my_health") == "other"


def test_optional_columns_may_be_absent_and_restricted_defaults_to_false(
    engine: Engine, tmp_path: Path
) -> None:
    required = ("source_system", "record_id", "key_id", "encoding_version")
    tokens = ("given_name_tok", "family_name_tok", "dob_tok")
    path = tmp_path / "minimal.csv"
    path.write_text(
        ",".join(tokens + required) + "\n" + f"1,2,3,health,H1,{KEY_ID},{ENCODING_VERSION}\n",
        encoding="utf-8",
    )
    assert ingest_files(engine, [path]).records_added == 1
    with engine.connect() as connection:
        assert connection.scalar(select(Record.restricted)) is False
        stored = connection.execute(select(record_versions)).one()._mapping
    assert stored["restricted"] is False and stored["dob_tok"] == 3
    assert stored["postcode_tok"] is None and stored["given_name_canon"] is None
    # Re-sent with every column, all empty but the same: nothing changes.
    full = {n: None for n in PSEUDONYMISED_COLUMN_NAMES} | dict(
        zip(tokens + required, (1, 2, 3, "health", "H1", KEY_ID, ENCODING_VERSION), strict=True)
    )
    again = ingest_files(engine, [write_pseudo_csv(tmp_path / "full.csv", [full])])
    assert (again.versions_added, again.unchanged) == (0, 1)


def test_another_encoding_version_is_refused(engine: Engine, tmp_path: Path) -> None:
    batch = rows(4)
    batch[2]["encoding_version"] = ENCODING_VERSION + 1
    with pytest.raises(UnusableInputError, match=f"encoding version {ENCODING_VERSION + 1}"):
        ingest_files(engine, [write_pseudo_csv(tmp_path / "a.csv", batch)])
    assert count(engine, Record) == 0


def test_a_first_ingest_mixing_key_ids_registers_nothing(engine: Engine, tmp_path: Path) -> None:
    batch = rows(4)
    batch[3]["key_id"] = "kother0000000000"
    with pytest.raises(UnknownKeyError, match="mixes"):
        ingest_files(engine, [write_pseudo_csv(tmp_path / "a.csv", batch)])
    assert count(engine, LinkageKey) == 0 and count(engine, Record) == 0


def test_a_retired_key_is_refused(engine: Engine, tmp_path: Path) -> None:
    ingest_files(engine, [write_pseudo_csv(tmp_path / "a.csv", rows(2))])
    with engine.begin() as connection:
        connection.execute(update(LinkageKey).values(active=False))
    with pytest.raises(UnknownKeyError, match=KEY_ID):
        ingest_files(engine, [write_pseudo_csv(tmp_path / "b.csv", rows(3, seed=2))])
    assert count(engine, Record) == 2


def test_progress_is_reported_in_bytes_up_to_the_total(engine: Engine, tmp_path: Path) -> None:
    paths = [
        write_pseudo_csv(tmp_path / "a.csv", rows(3000, seed=1)),
        write_pseudo_csv(tmp_path / "b.csv", rows(3000, seed=2, source="education")),
    ]
    total = sum(p.stat().st_size for p in paths)
    seen: list[tuple[int, int]] = []
    ingest_files(engine, paths, progress=lambda done, of: seen.append((done, of)))
    assert {of for _, of in seen} == {total}
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == total


def test_a_large_load_defers_the_lookup_indexes_and_always_gets_them_back(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "DEFER_MIN_ROWS", 10)
    deferred: list[bool] = []
    restore = bulk.DeferredIndexes.restore

    def spy(self: bulk.DeferredIndexes, connection: Any) -> None:
        deferred.append(self.dropped)
        restore(self, connection)

    monkeypatch.setattr(bulk.DeferredIndexes, "restore", spy)
    expected = {name for name, _ in LOOKUP_INDEXES}

    def lookup_indexes() -> set[str]:
        names = {i["name"] for i in inspect(engine).get_indexes("record_versions")}
        return names & expected

    batch = rows(300)
    good = write_pseudo_csv(tmp_path / "a.csv", batch)
    foreign = rows(30, seed=5, source="education")
    foreign[-1]["key_id"] = "kforeign00000000"
    bad = write_pseudo_csv(tmp_path / "bad.csv", foreign)
    with pytest.raises(UnknownKeyError):  # rolled back after `good` dropped the indexes
        ingest_files(engine, [good, bad])
    assert lookup_indexes() == expected and count(engine, Record) == 0
    ingest_files(engine, [good])
    assert deferred == [True]  # into an empty table on both; the refused call never restored
    assert lookup_indexes() == expected
    with engine.connect() as connection:
        found = connection.scalar(
            select(func.count())
            .select_from(record_versions)
            .where(record_versions.c.dob_tok == batch[7]["dob_tok"])
        )
    assert found == 1


@pytest.mark.postgres
def test_postgres_statistics_follow_a_growing_load(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stale statistics made every key look-up read the whole source (quadratic loads)."""
    monkeypatch.setattr(bulk, "ANALYZE_MIN_ROWS", 10)
    engine = make_engine(postgres_url)
    try:
        ingest_files(engine, [write_pseudo_csv(tmp_path / "a.csv", rows(300))])
        with engine.connect() as connection:
            estimate = connection.scalar(
                text("SELECT reltuples FROM pg_class WHERE oid = 'records'::regclass")
            )
        assert estimate == 300
    finally:
        engine.dispose()
