"""The pairs a linkage run scored and the record versions it scored them at, kept for the
next run with the same model (`KeptPairBlock`): an incremental run scores only what changed
since (`linkage.run`)."""

from __future__ import annotations

import pyarrow as pa
from sqlalchemy import Connection, delete, insert, select

from linkage.model.incremental import PAIR_SCHEMA, VERSION_SCHEMA
from linkage.store.bulk import from_parquet, to_parquet
from linkage.store.models import KeptPairBlock, utcnow

#: Rows per block: some 10 MB of Parquet, so neither side holds two copies of everything.
BLOCK_ROWS = 500_000


#: What `keep_pairs` stores: (part, rows, Parquet) of each block.
KeptBlocks = list[tuple[str, int, bytes]]


def pair_blocks(pairs: pa.Table, versions: pa.Table) -> KeptBlocks:
    """`pairs` (PAIR_SCHEMA) and the `versions` (VERSION_SCHEMA) they were scored at, as the
    blocks `keep_pairs` stores: encoded apart from the database, so a run's write can have
    them encoded beside its inserts (1M records' pairs and versions: some 0.3 s)."""
    blocks: KeptBlocks = []
    for part, table in (
        ("pairs", pairs.select(PAIR_SCHEMA.names).cast(PAIR_SCHEMA)),
        ("versions", versions.select(VERSION_SCHEMA.names).cast(VERSION_SCHEMA)),
    ):
        for start in range(0, max(table.num_rows, 1), BLOCK_ROWS):
            block = table.slice(start, BLOCK_ROWS)
            blocks.append((part, block.num_rows, to_parquet(block)))
    return blocks


def keep_pairs(connection: Connection, model_version: int, blocks: KeptBlocks) -> None:
    """Replace what is kept by these blocks (`pair_blocks`) of pairs the model scored."""
    connection.execute(delete(KeptPairBlock))
    now = utcnow()
    for part, rows, data in blocks:
        connection.execute(
            insert(KeptPairBlock).values(
                model_version=model_version, part=part, rows=rows, parquet=data, created_at=now
            )
        )


def kept_pairs(connection: Connection) -> tuple[int, pa.Table, pa.Table] | None:
    """The model version, pairs and versions kept, or None if nothing is (or, never by
    design, blocks of several model versions are)."""
    parts: dict[str, list[pa.Table]] = {"pairs": [], "versions": []}
    models = set()
    for model_version, part, data in connection.execute(
        select(KeptPairBlock.model_version, KeptPairBlock.part, KeptPairBlock.parquet).order_by(
            KeptPairBlock.id
        )
    ):
        models.add(model_version)
        parts[part].append(from_parquet(data))
    if len(models) != 1:
        return None
    pairs = pa.concat_tables(parts["pairs"]).cast(PAIR_SCHEMA)
    versions = pa.concat_tables(parts["versions"]).cast(VERSION_SCHEMA)
    return models.pop(), pairs, versions
