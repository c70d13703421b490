"""The columnar copy of record versions (`RecordVersionBlock`): written beside them, read by
a linkage run's snapshot instead of a million rows of `record_versions`."""

from __future__ import annotations

from dataclasses import dataclass

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
#: Rows per block at most (an ingest writes a block per batch it reads).
BLOCK_ROWS = 50_000
#: Uncompressed: the encodings are random 64-bit tokens, and zstd took 18% off a million
#: records' blocks (105 MB to 86 MB) for 0.25 s more of a first load's ingest and 0.1 s more
#: of every run's read.
BLOCK_COMPRESSION = "none"


def store_blocks(connection: Connection, versions: pa.Table) -> None:
    """Add `versions` (BLOCK_SCHEMA's columns, any order, more allowed) as blocks."""
    table = versions.select(BLOCK_SCHEMA.names).cast(BLOCK_SCHEMA)
    for start in range(0, table.num_rows, BLOCK_ROWS):
        part = table.slice(start, BLOCK_ROWS)
        connection.execute(
            insert(RecordVersionBlock).values(
                rows=part.num_rows,
                parquet=to_parquet(part, compression=BLOCK_COMPRESSION),
                created_at=utcnow(),
            )
        )


@dataclass(frozen=True)
class BlocksRead:
    """Versions read from the blocks (BLOCK_SCHEMA), up to block `last`. Blocks are only ever
    added, never changed or removed: a later read needs only those added after it. (On
    PostgreSQL a block committed later under a smaller id is missed; its versions are then
    read from their rows, as any the blocks lack, see `registry.current_records`.)"""

    versions: pa.Table
    last: int = 0


def read_blocks(connection: Connection, since: BlocksRead | None = None) -> BlocksRead:
    """Every version stored in blocks, in no particular order: those read before (`since`),
    and those of the blocks added after them."""
    query = select(RecordVersionBlock.id, RecordVersionBlock.parquet).order_by(
        RecordVersionBlock.id
    )
    parts, last = ([since.versions], since.last) if since else ([], 0)
    if since:
        query = query.where(RecordVersionBlock.id > since.last)
    for block_id, data in connection.execute(query):
        parts.append(from_parquet(data).cast(BLOCK_SCHEMA))
        last = block_id
    versions = pa.concat_tables(parts) if parts else BLOCK_SCHEMA.empty_table()
    return BlocksRead(versions, last)
