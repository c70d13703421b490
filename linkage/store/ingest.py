"""Loading pseudonymised files into the registry: idempotent, versioned, in bulk.

- The same (source_system, record_id) with the same content adds nothing.
- Changed content adds a new version; the record points at it.
- The first ingest into an empty registry registers its key id; any other key id is refused.
- One transaction per file: a refused or broken file leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from linkage.contract import CLEAR_COLUMNS, ENCODING_COLUMNS
from linkage.errors import UnknownKeyError, UnusableInputError
from linkage.pseudonymised_file import read_pseudonymised
from linkage.store.bulk import allocate_ids, bulk_insert
from linkage.store.database import upgrade, write_transaction
from linkage.store.models import LinkageKey, Record, record_versions, utcnow
from linkage.store.sources import source_ids

Progress = Callable[[int, int], None]
LOOKUP_CHUNK = 2_000
#: Columns whose values make up a version's content (key columns excluded).
CONTENT_COLUMNS: tuple[str, ...] = tuple(c.name for c in CLEAR_COLUMNS + ENCODING_COLUMNS)


@dataclass
class IngestSummary:
    files: int = 0
    rows_read: int = 0
    records_added: int = 0
    versions_added: int = 0
    unchanged: int = 0
    per_source: Counter[str] = field(default_factory=Counter)
    key_ids_registered: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0


def content_hash(values: Sequence[Any]) -> str:
    return hashlib.blake2b(repr(tuple(values)).encode(), digest_size=16).hexdigest()


def ingest_files(
    engine: Engine, paths: Iterable[Path | str], *, progress: Progress | None = None
) -> IngestSummary:
    """Ingest pseudonymised files in order, one transaction each (migrates first)."""
    upgrade(engine)
    summary = IngestSummary()
    started = time.perf_counter()
    for path in paths:
        with write_transaction(engine) as connection:
            _ingest_file(connection, Path(path), summary, progress)
        summary.files += 1
    summary.seconds = time.perf_counter() - started
    return summary


def _check_key_ids(connection: Connection, key_ids: set[str], summary: IngestSummary) -> None:
    registered = set(connection.scalars(select(LinkageKey.key_id)))
    if not registered and len(key_ids) == 1:
        (key_id,) = key_ids
        connection.execute(insert(LinkageKey), [{"key_id": key_id, "registered_at": utcnow()}])
        summary.key_ids_registered.append(key_id)
        return
    unknown = sorted(key_ids - registered)
    if unknown:
        raise UnknownKeyError(
            f"records encoded under unregistered key id(s) {', '.join(unknown)}; "
            f"this registry accepts {', '.join(sorted(registered))}"
        )


def _ingest_file(
    connection: Connection, path: Path, summary: IngestSummary, progress: Progress | None
) -> None:
    total_bytes = path.stat().st_size if path.exists() else 0
    done_bytes = 0
    if connection.dialect.name == "postgresql":
        # The records table grows inside this transaction with no fresh statistics, so the
        # planner would scan it whole for every batch's key look-up: quadratic in file size.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    for batch in read_pseudonymised(path):
        if batch.num_rows == 0:
            continue
        key_ids = set(batch["key_id"].to_pylist())
        if None in key_ids:
            raise UnusableInputError(f"{path}: a row has no key_id")
        _check_key_ids(connection, key_ids, summary)
        _ingest_batch(connection, batch, summary)
        summary.rows_read += batch.num_rows
        done_bytes += batch.nbytes
        if progress is not None:
            progress(min(done_bytes, total_bytes), total_bytes)


RECORD_COLUMNS = (
    "id",
    "source_system_id",
    "record_id",
    "current_version",
    "content_hash",
    "key_id",
    "restricted",
    "status",
    "created_at",
    "updated_at",
)
VERSION_COLUMNS = (
    "record_pk",
    "version",
    "key_id",
    "encoding_version",
    "content_hash",
    *CONTENT_COLUMNS,
    "ingested_at",
)
RESTRICTED = CONTENT_COLUMNS.index("restricted")


def _ingest_batch(connection: Connection, batch: pa.Table, summary: IngestSummary) -> None:
    sources = source_ids(connection, set(batch["source_system"].to_pylist()))
    content = list(zip(*(batch[c].to_pylist() for c in CONTENT_COLUMNS), strict=True))
    codes = batch["source_system"].to_pylist()
    record_ids = batch["record_id"].to_pylist()
    key_ids = batch["key_id"].to_pylist()
    encoding_versions = batch["encoding_version"].to_pylist()

    # Later rows for the same record win within a batch.
    latest: dict[tuple[int, str], int] = {}
    for index, (code, record_id) in enumerate(zip(codes, record_ids, strict=True)):
        latest[(sources[code], record_id)] = index
    summary.unchanged += batch.num_rows - len(latest)
    existing = _existing(connection, latest.keys())

    new_rows: list[tuple[tuple[int, str], int, str]] = []
    changed: list[tuple[int, int, str, int]] = []  # (record pk, new version, hash, row index)
    for key, index in latest.items():
        digest = content_hash(content[index])
        found = existing.get(key)
        if found is None:
            new_rows.append((key, index, digest))
        elif found[2] == digest:
            summary.unchanged += 1
            continue
        else:
            changed.append((found[0], found[1] + 1, digest, index))
        summary.per_source[codes[index]] += 1

    stamp = _timestamp(connection)
    ids = allocate_ids(connection, "records", len(new_rows))
    bulk_insert(
        connection,
        "records",
        RECORD_COLUMNS,
        [
            (
                pk,
                source_id,
                record_id,
                1,
                digest,
                key_ids[index],
                bool(content[index][RESTRICTED]),
                "active",
                stamp,
                stamp,
            )
            for pk, ((source_id, record_id), index, digest) in zip(ids, new_rows, strict=True)
        ],
    )
    if changed:
        connection.execute(
            update(Record)
            .where(Record.id == bindparam("pk"))
            .values(
                current_version=bindparam("new_version"),
                content_hash=bindparam("new_hash"),
                restricted=bindparam("new_restricted"),
                key_id=bindparam("new_key_id"),
                status="active",
                updated_at=utcnow(),
            ),
            [
                {
                    "pk": pk,
                    "new_version": version,
                    "new_hash": digest,
                    "new_restricted": bool(content[index][RESTRICTED]),
                    "new_key_id": key_ids[index],
                }
                for pk, version, digest, index in changed
            ],
        )
    added = [(pk, 1, digest, index) for pk, (_, index, digest) in zip(ids, new_rows, strict=True)]
    bulk_insert(
        connection,
        "record_versions",
        VERSION_COLUMNS,
        [
            (pk, version, key_ids[index], encoding_versions[index], digest, *content[index], stamp)
            for pk, version, digest, index in added + changed
        ],
    )
    summary.records_added += len(new_rows)
    summary.versions_added += len(new_rows) + len(changed)


def _timestamp(connection: Connection) -> Any:
    """Now, as the dialect stores a DateTime (bulk paths bypass SQLAlchemy's type handling)."""
    column_type = record_versions.c.ingested_at.type
    processor = column_type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
    now = utcnow()
    return processor(now) if processor else now


def _existing(
    connection: Connection, keys: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], tuple[int, int, str]]:
    """(source id, record id) -> (record pk, current version, content hash) for known records."""
    by_source: dict[int, list[str]] = {}
    for source_id, record_id in keys:
        by_source.setdefault(source_id, []).append(record_id)
    found: dict[tuple[int, str], tuple[int, int, str]] = {}
    for source_id, record_ids in by_source.items():
        for start in range(0, len(record_ids), LOOKUP_CHUNK):
            chunk = record_ids[start : start + LOOKUP_CHUNK]
            rows = connection.execute(
                select(Record.record_id, Record.id, Record.current_version, Record.content_hash)
                .where(Record.source_system_id == source_id)
                .where(Record.record_id.in_(chunk))
            )
            for record_id, pk, version, digest in rows:
                found[(source_id, record_id)] = (pk, version, digest)
    return found
