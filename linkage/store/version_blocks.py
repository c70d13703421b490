"""The columnar copy of record versions (`RecordVersionBlock`): written beside them, read by
a linkage run's snapshot instead of a million rows of `record_versions`."""

from __future__ import annotations

import pyarrow as pa
from sqlalchemy import Connection, insert, select

from linkage.contract import ENCODING_COLUMNS
from linkage.pseudonymised_file import BATCH_SCHEMA
from linkage.store.bulk import from_parquet, to_parquet
from linkage.store.models import RecordVersionBlock, utcnow

#: What a block holds: a version's key and the columns linkage compares.
BLOCK_SCHEMA = pa.schema(
    [("unique_id", pa.int64()), ("version", pa.int64()), BATCH_SCHEMA.field("sex")]
    + [BATCH_SCHEMA.field(c.name) for c in ENCODING_COLUMNS]
)
#: Rows per block: ~2 MB of zstd Parquet, small enough to stream, large enough to compress.
BLOCK_ROWS = 50_000


def store_blocks(connection: Connection, versions: pa.Table) -> None:
    """Add `versions` (BLOCK_SCHEMA's columns, any order, more allowed) as blocks."""
    table = versions.select(BLOCK_SCHEMA.names).cast(BLOCK_SCHEMA)
    for start in range(0, table.num_rows, BLOCK_ROWS):
        part = table.slice(start, BLOCK_ROWS)
        connection.execute(
            insert(RecordVersionBlock).values(
                rows=part.num_rows, parquet=to_parquet(part), created_at=utcnow()
            )
        )


def read_blocks(connection: Connection) -> pa.Table:
    """Every version stored in blocks (BLOCK_SCHEMA), in no particular order."""
    parts = [from_parquet(data) for data in connection.scalars(select(RecordVersionBlock.parquet))]
    return pa.concat_tables(parts).cast(BLOCK_SCHEMA) if parts else BLOCK_SCHEMA.empty_table()
