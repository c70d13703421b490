"""Term-frequency tables frozen per model version (DESIGN.md, Concurrency).

A frequent given name agreeing says less than a rare one. The real-time scorer needs the same
frequencies for every request and every worker, so they are counted once per model version,
over the registry's current records, and kept, as one Parquet block per version
(`FrozenTermFrequencies`). Values are stored as decimal text (the NHS number's as its
ciphertext); an empty registry freezes an empty block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, and_, func, insert, select, text

from linkage.contract import ENCODING_COLUMNS
from linkage.store.bulk import from_parquet, to_parquet
from linkage.store.database import write_transaction
from linkage.store.models import FrozenTermFrequencies, Record, record_versions, utcnow

#: Key of the PostgreSQL advisory lock that serialises freezing (any constant unique to it).
FREEZE_LOCK = 0x43434902
_INT_COLUMNS = {c.name for c in ENCODING_COLUMNS if c.type == "int64"}

TermFrequencyTables = dict[str, dict[Any, float]]
#: A version's frozen tables as stored: a row per (column, value).
BLOCK_SCHEMA = pa.schema(
    [("column_name", pa.string()), ("value", pa.string()), ("frequency", pa.float64())]
)


def load_frequencies(connection: Connection, version: int) -> TermFrequencyTables | None:
    """The frozen tables of a model version, or None if none were frozen yet."""
    data = connection.scalar(
        select(FrozenTermFrequencies.parquet).where(FrozenTermFrequencies.model_version == version)
    )
    return None if data is None else _from_block(from_parquet(data))


def _as_block(tables: Mapping[str, Mapping[Any, float]]) -> pa.Table:
    """`tables` as BLOCK_SCHEMA rows, values as decimal text or ciphertext."""
    parts = []
    for column, values in tables.items():
        keys = pa.array(list(values.keys()))
        parts.append(
            pa.table(
                {
                    "column_name": pa.repeat(pa.scalar(column, pa.string()), len(keys)),
                    "value": keys.cast(pa.string()),
                    "frequency": pa.array(list(values.values()), pa.float64()),
                },
                schema=BLOCK_SCHEMA,
            )
        )
    return pa.concat_tables(parts) if parts else BLOCK_SCHEMA.empty_table()


def _from_block(block: pa.Table) -> TermFrequencyTables:
    """The tables `_as_block` stored: integer encodings as ints again."""
    tables: TermFrequencyTables = {}
    for column in pc.unique(block["column_name"]).to_pylist():
        rows = block.filter(pc.equal(block["column_name"], column))
        values = rows["value"]
        keys = values.cast(pa.int64()) if column in _INT_COLUMNS else values
        tables[column] = dict(zip(keys.to_pylist(), rows["frequency"].to_pylist(), strict=True))
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
        block = _as_block(tables)
        connection.execute(
            insert(FrozenTermFrequencies).values(
                model_version=version,
                rows=block.num_rows,
                parquet=to_parquet(block),
                created_at=utcnow(),
            )
        )
        return {column: dict(values) for column, values in tables.items()}
