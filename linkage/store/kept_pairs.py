"""The pairs a linkage run scored and the record versions it scored them at, kept for the
next run with the same model (`KeptPairBlock`): an incremental run scores only what changed
since (`linkage.run`)."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
from sqlalchemy import Connection, delete, insert, select

from linkage.model.incremental import PAIR_SCHEMA
from linkage.store.bulk import from_parquet, to_parquet
from linkage.store.models import KeptPairBlock, utcnow

VERSION_SCHEMA = pa.schema([("unique_id", pa.int64()), ("version", pa.int64())])
#: Rows per block: some 10 MB of Parquet, so neither side holds two copies of everything.
BLOCK_ROWS = 500_000


def keep_pairs(
    connection: Connection, model_version: int, pairs: pa.Table, versions: Mapping[int, int]
) -> None:
    """Replace what is kept by `pairs` (PAIR_SCHEMA) and the `versions` they were scored at."""
    connection.execute(delete(KeptPairBlock))
    scored = pa.table(
        [
            pa.array(list(versions.keys()), pa.int64()),
            pa.array(list(versions.values()), pa.int64()),
        ],
        schema=VERSION_SCHEMA,
    )
    now = utcnow()
    for part, table in (
        ("pairs", pairs.select(PAIR_SCHEMA.names).cast(PAIR_SCHEMA)),
        ("versions", scored),
    ):
        for start in range(0, max(table.num_rows, 1), BLOCK_ROWS):
            block = table.slice(start, BLOCK_ROWS)
            connection.execute(
                insert(KeptPairBlock).values(
                    model_version=model_version,
                    part=part,
                    rows=block.num_rows,
                    parquet=to_parquet(block),
                    created_at=now,
                )
            )


def kept_pairs(connection: Connection) -> tuple[int, pa.Table, dict[int, int]] | None:
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
    scored = dict(
        zip(versions["unique_id"].to_pylist(), versions["version"].to_pylist(), strict=True)
    )
    return models.pop(), pairs, scored
