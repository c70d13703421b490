"""Term-frequency tables frozen per model version (DESIGN.md, Concurrency).

A frequent given name agreeing says less than a rare one. The real-time scorer needs the same
frequencies for every request and every worker, so they are counted once per model version,
over the registry's current records, and kept. Values are stored as decimal text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select, text

from linkage.contract import ENCODING_COLUMNS
from linkage.store.bulk import bulk_insert, driver_fetchall
from linkage.store.database import write_transaction
from linkage.store.models import Record, record_versions

#: Key of the PostgreSQL advisory lock that serialises freezing (any constant unique to it).
FREEZE_LOCK = 0x43434902
_INT_COLUMNS = {c.name for c in ENCODING_COLUMNS if c.type == "int64"}

TermFrequencyTables = dict[str, dict[Any, float]]


def load_frequencies(connection: Connection, version: int) -> TermFrequencyTables | None:
    """The frozen tables of a model version, or None if none were frozen yet.

    A column at a time, each made into a dict by `zip` and `map` over the driver's rows: a
    million-record registry freezes some 360,000 values, and every run and service worker
    reads them (1.1 s row by row through SQLAlchemy; 0.6-0.9 s so, on SQLite)."""
    columns = driver_fetchall(
        connection,
        "SELECT DISTINCT column_name FROM model_term_frequencies WHERE model_version = ?",
        (version,),
    )
    if not columns:
        return None
    tables: TermFrequencyTables = {}
    for (column,) in columns:
        if not column:  # "" is the marker of a registry that was empty when frozen
            continue
        rows = driver_fetchall(
            connection,
            "SELECT value, frequency FROM model_term_frequencies "
            "WHERE model_version = ? AND column_name = ?",
            (version, column),
        )
        values, frequencies = zip(*rows, strict=True) if rows else ((), ())
        keys = map(int, values) if column in _INT_COLUMNS else values
        tables[column] = dict(zip(keys, frequencies, strict=True))
    return tables


def count_frequencies(connection: Connection, columns: tuple[str, ...]) -> TermFrequencyTables:
    """Splink's definition: count of each value / count of non-null values, current records."""
    v = record_versions.c
    tables: TermFrequencyTables = {}
    for column in columns:
        query = (
            select(v[column], func.count())
            .join(Record, and_(Record.id == v.record_pk, Record.current_version == v.version))
            .where(Record.status == "active", v[column].is_not(None))
            .group_by(v[column])
        )
        counts = connection.execute(query).all()
        total = sum(count for _, count in counts)
        tables[column] = {value: count / total for value, count in counts}
    return tables


def freeze_frequencies(
    engine: Engine,
    version: int,
    columns: Sequence[str],
    count: Callable[[], Mapping[str, Mapping[Any, float]]] | None = None,
) -> TermFrequencyTables:
    """Count and keep the tables for `version`, unless another process already did. `count`
    counts them some other way than over the current records in SQL (a run counts its
    snapshot in Arrow: the same definition in a fortieth of the time)."""
    with write_transaction(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FREEZE_LOCK})
        found = load_frequencies(connection, version)
        if found is not None:
            return found
        tables = count() if count is not None else count_frequencies(connection, tuple(columns))
        rows = [
            (version, column, str(value), frequency)
            for column, values in tables.items()
            for value, frequency in values.items()
        ]
        rows.sort()  # the primary key's order: appended to its B-tree, not scattered
        # An empty registry still freezes: one marker row says "counted, nothing there".
        if not rows:
            rows = [(version, "", "", 0.0)]
        bulk_insert(
            connection,
            "model_term_frequencies",
            ("model_version", "column_name", "value", "frequency"),
            rows,
        )
        return {column: dict(values) for column, values in tables.items()}
