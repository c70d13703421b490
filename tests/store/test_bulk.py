"""The bulk paths keep every value as it was: NULL apart from an empty string, booleans, floats
to the last bit, timestamps (PostgreSQL's COPY goes through Arrow's CSV both ways)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from sqlalchemy import Boolean, Column, Float, Integer, MetaData, String, Table, select

from linkage.store import bulk, make_engine
from linkage.store.bulk import (
    COPY_CHUNK_ROWS,
    ROWS_PER_STATEMENT,
    bulk_insert,
    copy_out,
    text_out,
)
from linkage.store.models import UtcDateTime, stored_timestamp

_metadata = MetaData()
_sample = Table(
    "bulk_sample",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("text", String(40)),
    Column("flag", Integer),
    Column("weight", Float),
    Column("at", UtcDateTime()),
    Column("ok", Boolean),
)
_COLUMNS = ("id", "text", "flag", "weight", "at", "ok")
_MOMENT = datetime(2026, 12, 4, 15, 30, 1, 123456, tzinfo=UTC)
_TRICKY = ["", None, 'quote " and, comma', "x" * 40, "é ß 中"]


def _rows(count: int) -> list[tuple[object, ...]]:
    return [
        (
            i,
            _TRICKY[i % len(_TRICKY)],
            i % 3 - 1 if i % 4 else None,
            1 / (i + 3),
            _MOMENT,
            i % 5 == 0 if i % 7 else None,
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("variables", [32766, 13])  # SQLite: 200 rows a statement, or 2
def test_rows_and_arrow_tables_go_in_unchanged(
    db_url: str, variables: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "_variable_limit", lambda cursor: variables)
    engine = make_engine(db_url)
    rows = _rows(COPY_CHUNK_ROWS + 7)  # more than one COPY chunk
    head = ROWS_PER_STATEMENT * 2 + 5  # whole statements of rows, and the rest
    try:
        _metadata.create_all(engine)
        with engine.begin() as connection:
            bulk_insert(connection, "bulk_sample", _COLUMNS, rows[:head])
            tail = list(zip(*rows[head:], strict=True))
            table = pa.table({n: pa.array(v) for n, v in zip(_COLUMNS, tail, strict=True)})
            bulk_insert(connection, "bulk_sample", _COLUMNS, table)
            bulk_insert(connection, "bulk_sample", _COLUMNS, [])
        with engine.connect() as connection:
            stored = connection.execute(select(_sample).order_by(_sample.c.id)).all()
        assert [tuple(r) for r in stored] == rows
    finally:
        _metadata.drop_all(engine)
        engine.dispose()


def test_a_row_of_the_wrong_width_is_refused(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        _metadata.create_all(engine)
        with engine.begin() as connection, pytest.raises(ValueError, match="6 values"):
            bulk_insert(connection, "bulk_sample", _COLUMNS, [*_rows(3), (9, "short")])
    finally:
        engine.dispose()


def test_copy_out_reads_what_was_written(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    rows = [(i, _TRICKY[i % len(_TRICKY)], i % 2 == 0, i * 0.1) for i in range(50)]
    schema = pa.schema(
        [("id", pa.int64()), ("text", pa.string()), ("flag", pa.bool_()), ("w", pa.float64())]
    )
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TEMPORARY TABLE sample (id bigint, text text, flag boolean, w float8)"
            )
            bulk_insert(connection, "sample", schema.names, rows)
            tables = list(copy_out(connection, "SELECT * FROM sample ORDER BY id", schema))
        read = pa.concat_tables(tables)
        assert read.schema == schema
        assert list(zip(*(c.to_pylist() for c in read.columns), strict=True)) == rows
    finally:
        engine.dispose()


def test_text_out_reads_what_was_written(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    tricky = [*_TRICKY, "two\nlines", '"', ","]
    rows = [
        (i * (-1) ** i * 2**40 if i % 6 else None, tricky[i % len(tricky)], f"CCI{i}")
        for i in range(60)
    ]
    schema = pa.schema([("n", pa.int64()), ("text", pa.string()), ("plain", pa.string())])
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TEMPORARY TABLE sample (n, text, plain)")
            bulk_insert(connection, "sample", schema.names, rows)
            query = "SELECT n, text, plain FROM sample ORDER BY rowid DESC"
            read = text_out(connection, query, schema, plain=["plain"])
            assert read is not None and read.schema == schema
            assert list(zip(*(c.to_pylist() for c in read.columns), strict=True)) == rows[::-1]
            empty = text_out(connection, f"{query} LIMIT 0", schema)
            assert empty is not None and empty.num_rows == 0
            # A column of NULLs (each an empty line), down to one row of it.
            nulls = pa.schema([("n", pa.int64())])
            for limit in (7, 1):
                only = text_out(connection, f"SELECT NULL AS n FROM sample LIMIT {limit}", nulls)
                assert only is not None and only["n"].to_pylist() == [None] * limit
            # Past SQLite's length limit (or with a type it does not write): None, and the
            # caller reads the rows another way.
            driver = connection.connection.driver_connection
            driver.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 100)
            assert text_out(connection, query, schema) is None
            driver.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1_000_000_000)
            floats = pa.schema([("n", pa.float64())])
            assert text_out(connection, "SELECT n FROM sample", floats) is None
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "constant",
    [
        {"text": 'it\'s "quoted", with a comma', "flag": -1, "weight": 1 / 3, "ok": True},
        {"text": "", "flag": None, "weight": 5e-324, "ok": False},
        {"text": None, "flag": 2**31 - 1, "weight": -0.0, "ok": None},
    ],
)
def test_constants_go_in_as_bound_values_would(db_url: str, constant: dict[str, object]) -> None:
    engine = make_engine(db_url)
    try:
        _metadata.create_all(engine)
        count = ROWS_PER_STATEMENT + 3  # whole statements, and the rest
        with engine.begin() as connection:
            constants = {**constant, "at": stored_timestamp(connection.dialect, _MOMENT)}
            bulk_insert(
                connection,
                "bulk_sample",
                ("id",),
                [(i,) for i in range(count)],
                constants=constants,
            )
        with engine.connect() as connection:
            stored = connection.execute(select(_sample).order_by(_sample.c.id)).all()
        expected = [
            (i, constant["text"], constant["flag"], constant["weight"], _MOMENT, constant["ok"])
            for i in range(count)
        ]
        assert [tuple(r) for r in stored] == expected
    finally:
        _metadata.drop_all(engine)
        engine.dispose()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), b"bytes", _MOMENT])
def test_a_constant_without_an_sqlite_literal_is_refused(sqlite_url: str, value: object) -> None:
    engine = make_engine(sqlite_url)
    try:
        _metadata.create_all(engine)
        with engine.begin() as connection, pytest.raises(TypeError, match="no SQLite literal"):
            bulk_insert(connection, "bulk_sample", ("id",), [(1,)], constants={"text": value})
    finally:
        engine.dispose()
