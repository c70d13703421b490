"""The registry's admission rules at ingest: keys, encoding versions, optional columns, formats."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, func, select, update

from linkage.contract import COLUMN_TYPES, ENCODING_VERSION, PSEUDONYMISED_COLUMN_NAMES
from linkage.errors import UnknownKeyError, UnusableInputError
from linkage.store import ingest_files, kind_from_code, make_engine
from linkage.store.models import LinkageKey, Record, SourceSystem, record_versions
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


def test_a_changed_restricted_flag_is_a_new_version_and_updates_the_record(
    engine: Engine, tmp_path: Path
) -> None:
    first = rows(3)
    for row in first:
        row["restricted"] = False
    ingest_files(engine, [write_pseudo_csv(tmp_path / "a.csv", first)])
    first[1]["restricted"] = True
    summary = ingest_files(engine, [write_pseudo_csv(tmp_path / "b.csv", first)])
    assert (summary.versions_added, summary.unchanged) == (1, 2)
    assert summary.per_source["health"].versions_added == 1
    with engine.connect() as connection:
        flags = dict(connection.execute(select(Record.record_id, Record.restricted)).all())
    assert flags == {"R0000": False, "R0001": True, "R0002": False}


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


def test_a_refused_file_leaves_nothing_of_the_call(engine: Engine, tmp_path: Path) -> None:
    good = write_pseudo_csv(tmp_path / "good.csv", rows(5))
    bad_rows = rows(5, seed=9, source="education_leeds")
    bad_rows[4]["key_id"] = "kforeign00000000"
    bad = write_pseudo_csv(tmp_path / "bad.csv", bad_rows)
    ingest_files(engine, [write_pseudo_csv(tmp_path / "first.csv", rows(1, seed=4))])
    with pytest.raises(UnknownKeyError, match="kforeign00000000"):
        ingest_files(engine, [good, bad])
    assert count(engine, Record) == 1
    with engine.connect() as connection:
        assert list(connection.scalars(select(SourceSystem.code))) == ["health"]


def test_parquet_and_csv_of_the_same_rows_are_the_same_content(
    engine: Engine, tmp_path: Path
) -> None:
    batch = rows(50)
    batch[0]["given_name_canon"] = None
    ingest_files(engine, [write_pseudo_csv(tmp_path / "a.csv", batch)])
    arrow = {"int64": pa.int64(), "int64_set": pa.list_(pa.int64()), "bool": pa.bool_()}
    schema = pa.schema(
        [(n, arrow.get(COLUMN_TYPES[n], pa.string())) for n in PSEUDONYMISED_COLUMN_NAMES]
    )

    def as_parquet(row: dict[str, Any]) -> dict[str, Any]:
        canon = row["given_name_canon"]
        return {**row, "given_name_canon": [int(t) for t in canon.split()] if canon else []}

    pq.write_table(
        pa.Table.from_pylist([as_parquet(r) for r in batch], schema=schema),
        tmp_path / "a.parquet",
    )
    again = ingest_files(engine, [tmp_path / "a.parquet"])
    assert (again.rows_read, again.versions_added, again.unchanged) == (50, 0, 50)


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
