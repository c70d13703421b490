"""Fast bulk inserts and reads: many-row INSERTs on SQLite, COPY on PostgreSQL.

ORM or Core executemany with dictionaries costs tens of microseconds a row; these paths cost a
few, which is what makes a million-row ingest take seconds rather than minutes. On PostgreSQL
COPY's CSV is written and parsed by Arrow, so no Python object is made per value.
"""

from __future__ import annotations

import io
import math
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy import Connection, Table, UniqueConstraint, text
from sqlalchemy.schema import (
    AddConstraint,
    CreateIndex,
    DropConstraint,
    DropIndex,
    ExecutableDDLElement,
)

#: Rows per INSERT statement on SQLite (fewer if its variable limit says so): pysqlite's
#: executemany pays a reset, a step and a hand-over of the GIL per statement, and one
#: statement of many rows took 0.84 s where a statement per row took 2.2 s (1M assignments).
ROWS_PER_STATEMENT = 200
#: Deferring index upkeep pays from this many new rows on ...
DEFER_MIN_ROWS = 50_000
#: ... and when they are at least this share of the rows already in the table.
DEFER_MIN_SHARE = 0.3
#: PostgreSQL statistics are refreshed once this many rows changed (and the table doubled).
ANALYZE_MIN_ROWS = 5_000
#: Rows per CSV chunk sent to PostgreSQL's COPY: a few MB each, so memory stays flat.
COPY_CHUNK_ROWS = 20_000
#: Bytes of COPY output parsed at a time.
COPY_OUT_BYTES = 16 << 20
#: Where a large copy gets its memory: Arrow's default allocator (mimalloc) commits fresh
#: memory a page at a time, and a copy of a million records' 26 columns took 0.86 s from it
#: against 0.34 s from the system's. (For the many smaller allocations of a load the default
#: is faster: a first load took 2 s longer with the system's throughout.)
FRESH_MEMORY = pa.system_memory_pool()
#: Arrow's CSV rendering is PostgreSQL's: NULL unquoted and empty, an empty string quoted.
_CSV_OPTIONS = pa_csv.WriteOptions(include_header=False, quoting_style="needed")


def bulk_insert(
    connection: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]] | pa.Table,
    *,
    constants: Mapping[str, Any] | None = None,
) -> None:
    """Insert `rows` (tuples in `columns` order, or an Arrow table with those columns).

    `constants`: columns that hold one value in every row (a run's id, its time). On SQLite
    they are written into the statement as literals, not bound row by row: 1M assignments
    with three of their five columns so took 0.25 s to insert against 0.65 s."""
    if not len(rows):
        return
    constants = dict(constants or {})
    if connection.dialect.name == "postgresql":
        data = (
            rows.select(list(columns))
            if isinstance(rows, pa.Table)
            else _arrow_table(columns, rows)
        )
        for name, value in constants.items():
            data = data.append_column(name, pa.array([value] * data.num_rows))
        names = ", ".join(data.column_names)
        copy_csv(connection, f"COPY {table} ({names}) FROM STDIN (FORMAT csv)", data)
        return
    width = len(columns)
    if isinstance(rows, pa.Table):  # the columns interleaved by slice assignment, in C
        values: list[Any] = [None] * (rows.num_rows * width)
        for at, name in enumerate(columns):
            values[at::width] = _sqlite_values(rows[name])
    else:
        values = list(chain.from_iterable(rows))
        if len(values) != len(rows) * width:
            raise ValueError(f"rows for {table} must each hold {width} values")
    count = len(values) // width
    names = ", ".join([*columns, *constants])
    row = "(" + ", ".join(["?"] * width + [_sqlite_literal(v) for v in constants.values()]) + ")"
    with driver_cursor(connection) as cursor:
        per = min(ROWS_PER_STATEMENT, _variable_limit(cursor) // max(width, 1)) or 1
        whole = count - count % per
        if whole:
            step = per * width
            cursor.executemany(
                _insert_rows(table, names, row, per),
                (values[at : at + step] for at in range(0, whole * width, step)),
            )
        if whole < count:
            cursor.execute(_insert_rows(table, names, row, count - whole), values[whole * width :])


def _insert_rows(table: str, names: str, row: str, rows: int) -> str:
    return f"INSERT INTO {table} ({names}) VALUES " + ", ".join([row] * rows)


def _sqlite_literal(value: Any) -> str:
    """`value` as an SQLite literal, stored as pysqlite would bind it (booleans as 0 and 1)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool | int):
        return str(int(value))
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQLite literal for {type(value).__name__}")


def _variable_limit(cursor: Any) -> int:
    """How many `?` one statement may hold on this SQLite build (999 before 3.32)."""
    return int(cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))


def _sqlite_values(column: pa.ChunkedArray) -> list[Any]:
    """A column's values for pysqlite. Booleans become 0 and 1, which is what SQLite stores
    for them anyway: pysqlite binds an int directly but sends a bool through its adapter
    look-up (0.3 µs a value: 0.2 s of a 581,000-row insert)."""
    if pa.types.is_boolean(column.type):
        column = column.cast(pa.int8())
    values: list[Any] = column.to_pylist()
    return values


def copy_csv(connection: Connection, statement: str, data: pa.Table) -> None:
    """Stream `data` to a PostgreSQL COPY ... FROM STDIN (FORMAT csv), rendered by Arrow.

    Rendering in Arrow's C++ rather than row by row in Python (psycopg's write_row), and the
    server parses one chunk while the next renders: a 1M-record run's write stage took 54 s
    against 65 s. (Ingest did not gain: there the server's index upkeep is the cost.)"""
    driver = connection.connection.driver_connection
    assert driver is not None
    buffer = io.BytesIO()
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for start in range(0, data.num_rows, COPY_CHUNK_ROWS):
            buffer.seek(0)
            buffer.truncate()
            pa_csv.write_csv(data.slice(start, COPY_CHUNK_ROWS), buffer, _CSV_OPTIONS)
            copy.write(buffer.getvalue())


def copy_out(connection: Connection, query: str, schema: pa.Schema) -> Iterator[pa.Table]:
    """Rows of a PostgreSQL `query` whose columns are `schema`'s, as Arrow tables of a few MB,
    through COPY ... TO STDOUT (FORMAT csv): parsed by Arrow (in a C++ thread pool), not made
    into Python tuples first (1M records' snapshot: 7.6 s against 11.2 s)."""
    driver = connection.connection.driver_connection
    assert driver is not None
    options = _csv_options(schema)
    parts: list[bytes] = []
    size = 0
    with driver.cursor() as cursor, cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
        for row in copy:  # libpq hands COPY data over one whole row at a time
            parts.append(bytes(row))
            size += len(row)
            if size >= COPY_OUT_BYTES:
                yield pa_csv.read_csv(pa.BufferReader(b"".join(parts)), **options)
                parts, size = [], 0
    if parts:
        yield pa_csv.read_csv(pa.BufferReader(b"".join(parts)), **options)


def _csv_options(schema: pa.Schema) -> dict[str, Any]:
    return {
        "read_options": pa_csv.ReadOptions(column_names=schema.names),
        "convert_options": pa_csv.ConvertOptions(
            column_types=schema,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,  # "" is an empty string, nothing is NULL
            true_values=["t"],
            false_values=["f"],
        ),
    }


def text_out(
    connection: Connection, query: str, schema: pa.Schema, plain: Sequence[str] = ()
) -> pa.Table | None:
    """Rows of an SQLite `query` whose columns are named and typed as `schema`'s (64-bit
    integers and text only), as an Arrow table: SQLite writes each column as one text, a value
    a line, in C, and Arrow parses it in its C++ thread pool; no Python object is made per
    value (1M rows of three integers: 0.4 s against 0.97 s as driver tuples). `plain`: text
    columns whose values are never empty and hold no quote or line break (CCIs, times),
    written as they are: quoting costs SQLite a string built per value. None if `schema` has
    another type, or a text would pass SQLite's length limit."""
    if not all(pa.types.is_int64(f.type) or pa.types.is_string(f.type) for f in schema):
        return None
    # A value is written as its digits, as it is (`plain`) or "quoted" (quotes doubled), and
    # NULL as an empty line. The separator is a literal: char(10) was called for every row,
    # and took half the time. The last line is ended too, so an empty one is still a line.
    texts = [
        f"""CAST(group_concat({_text_cell(f, plain)}, '\n') || '\n' AS BLOB)""" for f in schema
    ]
    driver: Any = connection.connection.driver_connection
    try:
        row = driver.execute(f"SELECT {', '.join(texts)} FROM ({query})").fetchone()
    except sqlite3.DataError:  # string or blob too big
        return None
    if row[0] is None:  # no rows
        return schema.empty_table()
    read = pa_csv.ReadOptions(column_names=["value"])
    lines = pa_csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False)
    columns = []
    for data, field in zip(row, schema, strict=True):
        convert = _csv_options(pa.schema([field.with_name("value")]))["convert_options"]
        table = pa_csv.read_csv(
            pa.py_buffer(data), read_options=read, parse_options=lines, convert_options=convert
        )
        columns.append(table["value"])
    return pa.table(columns, schema=schema)


def _text_cell(field: pa.Field, plain: Sequence[str]) -> str:
    name = f'"{field.name}"'
    if pa.types.is_string(field.type) and field.name not in plain:
        return f"""coalesce('"' || replace({name}, '"', '""') || '"', '')"""
    return f"coalesce({name}, '')"


@contextmanager
def driver_cursor(connection: Connection) -> Iterator[Any]:
    """A cursor of the DB-API driver under `connection`, closed after the block: SQLAlchemy's
    row objects and parameter dictionaries cost more than the database itself on 100,000s of
    rows."""
    cursor: Any = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    finally:
        cursor.close()


def driver_fetchall(
    connection: Connection, sql: str, parameters: Sequence[Any] = ()
) -> list[tuple[Any, ...]]:
    """Every row of a statement with `?` marks, as the driver's tuples."""
    with driver_cursor(connection) as cursor:
        cursor.execute(_driver_marks(connection, sql), tuple(parameters))
        return list(cursor.fetchall())


def driver_executemany(connection: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """One statement with `?` marks over many rows, through the driver's cursor."""
    if rows:
        with driver_cursor(connection) as cursor:
            cursor.executemany(_driver_marks(connection, sql), rows)


def _driver_marks(connection: Connection, sql: str) -> str:
    """`?` marks as the driver wants them (`%s` on psycopg)."""
    return sql.replace("?", "%s") if connection.dialect.name == "postgresql" else sql


def _arrow_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Rows as Arrow columns, each column's type inferred from its values."""
    values = zip(*rows, strict=True)
    return pa.table({name: pa.array(v) for name, v in zip(columns, values, strict=True)})


def to_parquet(table: pa.Table, *, compression: str = "zstd") -> bytes:
    """`table` as Parquet, for a BLOB column (columnar copies the runs read whole)."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression=compression)
    return buffer.getvalue()


def from_parquet(data: bytes | memoryview) -> pa.Table:
    """A table `to_parquet` stored (drivers hand BLOBs back as bytes or memoryview)."""
    return pq.read_table(pa.BufferReader(bytes(data)))


def allocate_ids(connection: Connection, table: str, count: int, *, above: int = 0) -> list[int]:
    """`count` fresh primary keys for `table` (inside a write transaction), all greater than
    `above`: keys already handed out in this transaction for rows not written yet."""
    if count == 0:
        return []
    if connection.dialect.name == "postgresql":
        # One array, not `count` rows: fetching row by row cost more than the sequence.
        ids: list[int] = connection.scalar(
            text(
                f"SELECT array_agg(nextval(pg_get_serial_sequence('{table}', 'id'))) "
                "FROM generate_series(1, :n)"
            ),
            {"n": count},
        )
        return ids
    start = connection.scalar(text(f"SELECT coalesce(max(id), 0) FROM {table}")) or 0
    start = max(start, above)
    return list(range(start + 1, start + 1 + count))


class DeferredUpkeep(ABC):
    """Schema items a large load drops at its first insert and makes again before commit.

    Which loads: 50,000 rows or more (DEFER_MIN_ROWS). On SQLite, any that adds at least
    DEFER_MIN_SHARE of the table's rows: readers keep their WAL snapshot with the items. On
    PostgreSQL, only into an empty table (a first national ingest, a first run): dropping
    locks every reader out of the table until commit, and nobody reads an empty table's rows.
    """

    #: False where SQLite never needs it.
    on_sqlite = True

    def __init__(self, table: Table, items: Sequence[Any]) -> None:
        self.table = table
        self.items = list(items)
        self.decided = False
        self.dropped = False

    def before_insert(self, connection: Connection, expected_rows: int) -> None:
        """Decide once, at the first insert of the load, from the rows it expects to add."""
        if self.decided or not expected_rows:
            return
        self.decided = True
        if self.items and self._large_load(connection, expected_rows):
            for item in self.items:
                connection.execute(self._drop(item))
            self.dropped = True

    def restore(self, connection: Connection) -> None:
        """Make again what was dropped (inside the same transaction, before it commits)."""
        if self.dropped:
            for item in self.items:
                connection.execute(self._create(item))
            self.dropped = False

    def _large_load(self, connection: Connection, expected_rows: int) -> bool:
        if expected_rows < DEFER_MIN_ROWS:
            return False
        name = self.table.name
        if connection.dialect.name == "sqlite":
            if not self.on_sqlite:
                return False
            present = connection.scalar(text(f"SELECT coalesce(max(rowid), 0) FROM {name}"))
            return expected_rows >= DEFER_MIN_SHARE * (present or 0)
        return not connection.scalar(text(f"SELECT EXISTS (SELECT 1 FROM {name})"))

    @abstractmethod
    def _drop(self, item: Any) -> ExecutableDDLElement: ...

    @abstractmethod
    def _create(self, item: Any) -> ExecutableDDLElement: ...


class DeferredIndexes(DeferredUpkeep):
    """Secondary indexes of a table, rebuilt once before commit: sorting all keys once costs
    about a fifth of updating each B-tree row by row (measured on SQLite: 6 lookup indexes,
    100k rows: 0.6 s rebuilt against 2.8 s maintained; on PostgreSQL a first 1M-record ingest
    took 44-49 s against 73 s)."""

    def __init__(self, table: Table) -> None:
        super().__init__(table, sorted(table.indexes, key=lambda i: str(i.name)))

    def _drop(self, item: Any) -> ExecutableDDLElement:
        return DropIndex(item, if_exists=True)

    def _create(self, item: Any) -> ExecutableDDLElement:
        return CreateIndex(item)


class _DeferredConstraints(DeferredUpkeep):
    """Constraints of a table, dropped and added back with ALTER TABLE: PostgreSQL only (SQLite
    cannot drop a table's constraints, so there they stay)."""

    on_sqlite = False

    def _drop(self, item: Any) -> ExecutableDDLElement:
        return DropConstraint(item)

    def _create(self, item: Any) -> ExecutableDDLElement:
        return AddConstraint(item)


class DeferredForeignKeys(_DeferredConstraints):
    """Foreign keys of a table, added back before commit, when PostgreSQL checks every row in
    one join (IntegrityError then: nothing commits).

    A row-by-row check locks the parent row (FOR KEY SHARE), so each distinct parent's page
    is written and logged again: 1M assignments took 14-16 s to COPY with their three foreign
    keys against 3 s without, and 1M records 17.6 s against 10.4 s. On SQLite the bulk writer
    checks no foreign keys (`write_transaction(bulk=True)`).
    """

    def __init__(self, table: Table) -> None:
        super().__init__(table, sorted(table.foreign_key_constraints, key=lambda c: str(c.name)))


class DeferredUniqueConstraints(_DeferredConstraints):
    """Unique constraints of a table, added back before commit, when PostgreSQL builds each
    index once by sorting and checks it (IntegrityError then: nothing commits). Row by row,
    a first load's random record ids made every COPY'd row a probe into a B-tree growing
    past the server's cache."""

    def __init__(self, table: Table) -> None:
        unique = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
        super().__init__(table, sorted(unique, key=lambda c: str(c.name)))


class FreshStatistics:
    """Keeps PostgreSQL's statistics of a table true while a load grows it.

    Each batch's key look-up is planned from them. On a table grown since they were taken (or
    never analysed) the planner expects a handful of rows per source system, and then reads
    every record of the source on each look-up: a load becomes quadratic in its size (measured:
    a 1M-row reload at 13k rows/s). ANALYZE runs inside the load's transaction, which it sees:
    once at the start when the statistics are stale, then whenever the table has doubled.
    """

    def __init__(self, connection: Connection, table: str) -> None:
        self.table = table
        self.active = connection.dialect.name == "postgresql"
        self.rows_then = 0
        self.added = 0
        if self.active:
            rows, changed = connection.execute(
                text(
                    "SELECT c.reltuples, coalesce(s.n_mod_since_analyze, 0) FROM pg_class c "
                    "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
                    "WHERE c.oid = CAST(:table AS regclass)"
                ),
                {"table": table},
            ).one()
            self.rows_then = max(int(rows), 0)
            if rows < 0 or changed >= max(ANALYZE_MIN_ROWS, 0.2 * rows):
                self._analyze(connection)

    def added_rows(self, connection: Connection, count: int) -> None:
        """Note `count` new rows; re-analyse once the table has doubled since last time."""
        if not self.active:
            return
        self.added += count
        if self.added >= max(ANALYZE_MIN_ROWS, self.rows_then):
            self._analyze(connection)

    def _analyze(self, connection: Connection) -> None:
        connection.exec_driver_sql(f"ANALYZE {self.table}")
        rows = connection.scalar(
            text("SELECT reltuples FROM pg_class WHERE oid = CAST(:table AS regclass)"),
            {"table": self.table},
        )
        self.rows_then = max(int(rows or 0), 0)
        self.added = 0
