"""Ingest is idempotent, versions changes, and refuses unregistered keys: SQLite and PostgreSQL."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cli.main import app
from linkage import pseudonymised_file
from linkage.errors import UnknownKeyError, UnusableInputError
from linkage.store import IngestSummary, SourceCounts, ingest, ingest_files, make_engine
from linkage.store.ingest import ROWS_READ_SCHEMA
from linkage.store.models import LinkageKey, Record, SourceSystem, record_versions
from tests.store.pseudo_rows import pseudo_row, write_pseudo_csv


def counts(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return (
                c.scalar(select(func.count()).select_from(Record)) or 0,
                c.scalar(select(func.count()).select_from(record_versions)) or 0,
            )
    finally:
        engine.dispose()


@pytest.fixture
def rows() -> list[dict[str, object]]:
    rng = random.Random(11)
    return [pseudo_row(rng, src, f"{src[0].upper()}{i:05d}")
            for i in range(300) for src in ("health", "education_leeds", "mis_x")]  # fmt: skip


def test_same_file_twice_adds_nothing_and_changes_add_versions(
    db_url: str, tmp_path: Path, rows: list[dict[str, object]]
) -> None:
    first = write_pseudo_csv(tmp_path / "a.csv", rows)
    engine = make_engine(db_url)
    try:
        summary = ingest_files(engine, [first])
        assert (summary.records_added, summary.versions_added) == (900, 900)
        assert summary.key_ids_registered == ["k0123456789abcde"]
        assert summary.per_source["health"] == SourceCounts(300, 300, 300)
        again = ingest_files(engine, [first])
        assert (again.records_added, again.versions_added, again.unchanged) == (0, 0, 900)
        assert counts(db_url) == (900, 900)

        changed = [dict(r) for r in rows[:5]]
        for row in changed:
            row["postcode_tok"] = 42
        changed.append(dict(rows[5]))  # unchanged
        second = ingest_files(engine, [write_pseudo_csv(tmp_path / "b.csv", changed)])
        assert (second.records_added, second.versions_added, second.unchanged) == (0, 5, 1)
        assert sum(c.versions_added for c in second.per_source.values()) == 5
        assert sum(c.rows for c in second.per_source.values()) == 6
        assert counts(db_url) == (900, 905)
        with engine.connect() as c:
            versions = c.execute(
                select(record_versions.c.version, record_versions.c.postcode_tok)
                .join(Record, Record.id == record_versions.c.record_pk)
                .where(Record.record_id == rows[0]["record_id"])
                .order_by(record_versions.c.version)
            ).all()
            assert [v for v, _ in versions] == [1, 2] and versions[1][1] == 42
            current = c.scalar(
                select(Record.current_version).where(Record.record_id == rows[0]["record_id"])
            )
            assert current == 2
            kinds = dict(c.execute(select(SourceSystem.code, SourceSystem.kind)).all())
            assert kinds == {"health": "health", "education_leeds": "education", "mis_x": "other"}
    finally:
        engine.dispose()


def test_a_later_row_for_the_same_record_wins_within_a_file(db_url: str, tmp_path: Path) -> None:
    rng = random.Random(3)
    a, b = pseudo_row(rng, "health", "H1"), pseudo_row(rng, "health", "H1")
    others = [pseudo_row(rng, source, f"X{i}") for i in range(40) for source in ("mis", "health")]
    given = [*others[:50], a, *others[50:70], b, *others[70:]]
    engine = make_engine(db_url)
    try:
        summary = ingest_files(engine, [write_pseudo_csv(tmp_path / "x.csv", given)])
        assert (summary.records_added, summary.versions_added) == (81, 81)
        with engine.connect() as c:
            query = select(record_versions.c.dob_tok).join(Record).where(Record.record_id == "H1")
            assert c.scalar(query) == b["dob_tok"]
            # Records are numbered in key order (`_in_key_order`), whatever the file's order.
            keys = c.execute(
                select(SourceSystem.code, Record.record_id).join(SourceSystem).order_by(Record.id)
            ).all()
        assert [tuple(k) for k in keys] == sorted(
            {(r["source_system"], r["record_id"]) for r in given}
        )
    finally:
        engine.dispose()


def test_unregistered_key_id_is_refused_with_nothing_ingested(
    db_url: str, tmp_path: Path, rows: list[dict[str, object]]
) -> None:
    engine = make_engine(db_url)
    try:
        ingest_files(engine, [write_pseudo_csv(tmp_path / "a.csv", rows[:10])])
        rng = random.Random(5)
        foreign = [pseudo_row(rng, "health", f"Z{i}") for i in range(20)]
        foreign[-1]["key_id"] = "kffffffffffffff"
        with pytest.raises(UnknownKeyError, match="kffffffffffffff"):
            ingest_files(engine, [write_pseudo_csv(tmp_path / "b.csv", foreign)])
        assert counts(db_url) == (10, 10)
        with engine.connect() as c:
            assert list(c.scalars(select(LinkageKey.key_id))) == ["k0123456789abcde"]
    finally:
        engine.dispose()


def test_cli_ingest_exit_codes(
    sqlite_url: str, tmp_path: Path, rows: list[dict[str, object]]
) -> None:
    good = write_pseudo_csv(tmp_path / "a.csv", rows[:20])
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(good), "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "20 new records" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("source_system,record_id\nhealth,H1\n", encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(bad), "--database-url", sqlite_url])
    assert result.exit_code == 2 and "missing required column" in result.output
    listing = runner.invoke(app, ["sources", "list", "--database-url", sqlite_url])
    assert "health" in listing.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"source_system,record_id,key_id\nhealth,H1,k1\n", "missing required column"),
        (b"\xff\xfe\x00garbage\n", "not UTF-8"),
    ],
)
def test_unusable_files(sqlite_url: str, tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    engine = make_engine(sqlite_url)
    try:
        with pytest.raises(UnusableInputError, match=message):
            ingest_files(engine, [path])
    finally:
        engine.dispose()


def test_bom_is_accepted(sqlite_url: str, tmp_path: Path, rows: list[dict[str, object]]) -> None:
    path = write_pseudo_csv(tmp_path / "a.csv", rows[:3])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    engine = make_engine(sqlite_url)
    try:
        assert ingest_files(engine, [path]).records_added == 3
    finally:
        engine.dispose()


def test_one_refused_file_rolls_back_the_whole_call(
    db_url: str, tmp_path: Path, rows: list[dict[str, object]]
) -> None:
    good = write_pseudo_csv(tmp_path / "a.csv", rows[:10])
    foreign = [dict(r, key_id="kother0000000000") for r in rows[10:20]]
    engine = make_engine(db_url)
    try:
        with pytest.raises(UnknownKeyError, match=r"kother0000000000.*nothing was ingested"):
            ingest_files(engine, [good, write_pseudo_csv(tmp_path / "b.csv", foreign)])
        assert counts(db_url) == (0, 0)
        with engine.connect() as c:  # not even the key id of the first file stays
            assert c.scalar(select(func.count()).select_from(LinkageKey)) == 0
        assert ingest_files(engine, [good]).records_added == 10
    finally:
        engine.dispose()


def test_parquet_ingests_like_csv(
    db_url: str, tmp_path: Path, rows: list[dict[str, object]]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from linkage.pseudonymise.files import ARROW_SCHEMA

    def listed(row: dict[str, object]) -> dict[str, object]:
        canon = row["given_name_canon"]
        return {**row, "given_name_canon": [int(t) for t in str(canon).split()] if canon else []}

    pq.write_table(
        pa.Table.from_pylist([listed(r) for r in rows[:50]], schema=ARROW_SCHEMA),
        tmp_path / "a.parquet",
    )
    engine = make_engine(db_url)
    try:
        assert ingest_files(engine, [tmp_path / "a.parquet"]).records_added == 50
        # The same rows as CSV are the same content: nothing new.
        again = ingest_files(engine, [write_pseudo_csv(tmp_path / "a.csv", rows[:50])])
        assert (again.versions_added, again.unchanged) == (0, 50)
        with engine.connect() as c:
            stored = c.scalar(
                select(record_versions.c.given_name_canon)
                .join(Record, Record.id == record_versions.c.record_pk)
                .where(Record.record_id == rows[0]["record_id"])
            )
            assert stored == rows[0]["given_name_canon"]
    finally:
        engine.dispose()


def test_restricted_flag_follows_the_current_version(db_url: str, tmp_path: Path) -> None:
    rng = random.Random(8)
    row = pseudo_row(rng, "social_care_leeds", "S1")
    row["restricted"] = False
    engine = make_engine(db_url)
    try:
        ingest_files(engine, [write_pseudo_csv(tmp_path / "a.csv", [row])])
        ingest_files(engine, [write_pseudo_csv(tmp_path / "b.csv", [dict(row, restricted=True)])])
        with engine.connect() as c:
            assert c.execute(select(Record.restricted, Record.current_version)).one() == (True, 2)
            kind = c.scalar(select(SourceSystem.kind))
            assert kind == "social_care"
    finally:
        engine.dispose()


def _stored(url: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every record and version row but their timestamps."""
    engine = make_engine(url)
    skip = {"created_at", "updated_at", "ingested_at"}
    try:
        with engine.connect() as c:
            tables = []
            for table in (Record.__table__, record_versions):
                columns = [column for column in table.c if column.name not in skip]
                tables.append([tuple(r) for r in c.execute(select(*columns).order_by(columns[0]))])
            return tables[0], tables[1]
    finally:
        engine.dispose()


def _ingest(url: str, path: Path, **options: Any) -> IngestSummary:
    engine = make_engine(url)
    try:
        return ingest_files(engine, [path], **options)
    finally:
        engine.dispose()


def test_a_first_load_of_records_each_given_once_is_planned_in_bulk(
    db_url: str,
    other_db_url: str,
    tmp_path: Path,
    rows: list[dict[str, object]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pseudonymised_file, "BLOCK_BYTES", 64 << 10)  # several batches
    path = write_pseudo_csv(tmp_path / "a.csv", rows)
    in_bulk: list[int] = []
    plan_all_new = ingest._Load._plan_all_new

    def noting(self: object, batch: pa.Table, *args: object) -> object:
        in_bulk.append(batch.num_rows)
        return plan_all_new(self, batch, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest._Load, "_plan_all_new", noting)
    first = _ingest(db_url, path, planned=lambda load: None)
    assert len(in_bulk) > 1 and sum(in_bulk) == len(rows)
    in_bulk.clear()
    # Not handed over (no `planned`): planned row by row against the registry.
    row_by_row = _ingest(other_db_url, path)
    assert in_bulk == []
    assert first.per_source == row_by_row.per_source
    assert (first.records_added, first.versions_added, first.unchanged) == (900, 900, 0)
    assert _stored(db_url) == _stored(other_db_url)


def test_a_first_load_hands_its_rows_over_as_read_then_its_plan(
    db_url: str, tmp_path: Path, rows: list[dict[str, object]]
) -> None:
    again = dict(rows[0], postcode_tok=42)  # the same record twice: read twice, planned once
    path = write_pseudo_csv(tmp_path / "a.csv", [*rows, again])
    handed: list[tuple[str, pa.Table]] = []
    engine = make_engine(db_url)
    try:
        summary = ingest_files(
            engine,
            [path],
            read=lambda table: handed.append(("read", table)),
            planned=lambda load: handed.append(("planned", load.versions)),
        )
        assert [what for what, _ in handed] == ["read", "planned"]
        (_, read), (_, planned) = handed
        assert read.schema == ROWS_READ_SCHEMA
        assert read["unique_id"].to_pylist() == list(range(1, 902))
        assert planned["unique_id"].to_pylist() == list(range(1, 901))  # the same keys
        # In key order, a record's own rows as given (numbered so: see `_in_key_order`).
        given = sorted([*rows, again], key=lambda r: (r["source_system"], r["record_id"]))
        assert read["dob_tok"].to_pylist() == [r["dob_tok"] for r in given]
        assert read["postcode_tok"].to_pylist() == [r["postcode_tok"] for r in given]
        assert planned.num_rows == summary.records_added == 900
        assert 42 in planned["postcode_tok"].to_pylist()  # the later row won
        # Into a registry that holds records: no rows as read, and the plan is what changes
        # (a record given again as it is adds nothing).
        moved = [dict(r, postcode_tok=int(str(r["postcode_tok"] or 0)) + 1) for r in rows[:3]]
        born = dict(rows[3], record_id="born-since")
        later = write_pseudo_csv(tmp_path / "b.csv", [*moved, rows[4], born])
        handed.clear()
        loads: list[Any] = []
        again_summary = ingest_files(
            engine,
            [later],
            read=lambda table: handed.append(("read", table)),
            planned=loads.append,
        )
        assert handed == []
        (load,) = loads
        assert not load.first_load
        assert again_summary.versions_added == load.versions.num_rows == 4
        assert load.versions["version"].to_pylist() == [2, 2, 2, 1]  # in key order, new last
        assert load.versions["unique_id"].to_pylist()[-1] == 901
        assert set(load.versions["postcode_tok"].to_pylist()[:3]) == {
            r["postcode_tok"] for r in moved
        }
    finally:
        engine.dispose()
