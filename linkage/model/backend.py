"""Where Splink runs: the DuckDB backend by default (Spark plugs in at the same seam).

Registry records arrive as an Arrow table with the contract's columns plus `unique_id`; the
only reshaping needed is the canonical-name set, stored as text, which Splink compares as an
array on every backend.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from splink import DuckDBAPI

from linkage.settings import linkage_settings

SET_COLUMNS = ("given_name_canon",)


def duckdb_api(*, memory_limit: str | None = None, threads: int | None = None) -> DuckDBAPI:
    """An in-memory DuckDB for Splink with a memory cap (CCI_DUCKDB_MEMORY_LIMIT, default 4GB)."""
    connection = duckdb.connect()
    limit = memory_limit or linkage_settings().duckdb_memory_limit
    connection.execute(f"SET memory_limit = '{limit}'")
    if threads:
        connection.execute(f"SET threads = {int(threads)}")
    return DuckDBAPI(connection)


def as_arrays(records: pa.Table) -> pa.Table:
    """Set columns stored as space-separated text become list<int64>, as Splink compares them."""
    for name in SET_COLUMNS:
        if name not in records.column_names:
            continue
        column = records[name]
        if pa.types.is_list(column.type):
            continue
        as_list = pc.cast(pc.split_pattern(column, " "), pa.list_(pa.int64()))
        records = records.set_column(records.column_names.index(name), name, as_list)
    return records


def register_records(db_api: Any, records: pa.Table, name: str) -> Any:
    """Register registry records with a Splink backend as a SplinkDataFrame."""
    return db_api.register(as_arrays(records), table_name=name)
