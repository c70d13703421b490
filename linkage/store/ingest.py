"""Loading pseudonymised files into the registry: idempotent, versioned, in bulk.

- The same (source_system, record_id) with the same content adds nothing.
- Changed content adds a new version; the record points at it. Within a file, a later row for
  the same record wins.
- Unknown source systems are registered with the kind their code suggests.
- The first ingest into an empty registry registers its key id; any other key id is refused,
  and so is an encoding version other than this service's.
- One transaction per call: a refused or broken file leaves nothing of the call behind.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    Connection,
    Engine,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)

from linkage.contract import CLEAR_COLUMNS, ENCODING_COLUMNS, ENCODING_VERSION
from linkage.errors import IngestStopped, UnknownKeyError, UnusableInputError
from linkage.pseudonymised_file import BATCH_SCHEMA, PseudonymisedFile
from linkage.store.bulk import (
    DeferredForeignKeys,
    DeferredIndexes,
    DeferredUniqueConstraints,
    DeferredUpkeep,
    FreshStatistics,
    allocate_ids,
    bulk_insert,
)
from linkage.store.database import upgrade, write_transaction
from linkage.store.models import (
    Event,
    LinkageKey,
    Record,
    SourceSystem,
    record_versions,
    stored_timestamp,
    utcnow,
)
from linkage.store.sources import source_ids
from linkage.store.version_blocks import BLOCK_SCHEMA, store_blocks

#: progress(bytes done, bytes in all files)
Progress = Callable[[int, int], None]
#: Key of the PostgreSQL advisory lock that serialises ingests (any constant unique to it).
INGEST_LOCK = 0x43434901
#: Columns whose values make up a version's content, in contract order (key columns excluded).
CONTENT_COLUMNS: tuple[str, ...] = tuple(c.name for c in CLEAR_COLUMNS + ENCODING_COLUMNS)


@dataclass
class SourceCounts:
    """What one source system's rows did to the registry."""

    rows: int = 0
    records_added: int = 0
    versions_added: int = 0


@dataclass
class IngestSummary:
    """What an ingest read and what it changed. `unchanged` counts rows that added nothing
    (content already current, or overtaken by a later row for the same record in the file)."""

    files: int = 0
    rows_read: int = 0
    records_added: int = 0
    versions_added: int = 0
    unchanged: int = 0
    per_source: dict[str, SourceCounts] = field(default_factory=dict)
    key_ids_registered: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0


def content_hashes(batch: pa.Table) -> list[str]:
    """Digest of each row's content: CONTENT_COLUMNS in contract order, as decimal or
    `true`/`false` text, NULL kept apart from every value. Joined in Arrow, so only the hash
    itself runs per row in Python."""
    joined = pc.binary_join_element_wise(
        *(pc.cast(batch[name], pa.string()) for name in CONTENT_COLUMNS),
        "\x1f",
        null_handling="replace",
        null_replacement="\x00",
    )
    blake2b = hashlib.blake2b
    # As bytes (a zero-copy cast): no Python str made and encoded per row.
    texts = pc.cast(joined, pa.binary()).to_pylist()
    return [blake2b(text, digest_size=16).hexdigest() for text in texts]


def ingest_files(
    engine: Engine,
    paths: Iterable[Path | str],
    *,
    progress: Progress | None = None,
    planned: Callable[[PlannedLoad], None] | None = None,
    read: Callable[[pa.Table], None] | None = None,
    write_after: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> IngestSummary:
    """Ingest pseudonymised files in order, in one transaction (migrating the registry first).

    Raises UnusableInputError or UnknownKeyError when any file cannot go in; the whole call is
    then rolled back, so a delivery is never left half-ingested.

    `planned`: every file is read and checked, and every row planned, before any row is
    written; what will be written is handed to `planned` (`PlannedLoad`), so that a linkage
    run can work on it while the rows and their indexes are written (on the calling thread,
    which `planned` must not hold up). Into an empty registry (a first load) the plan is every
    record; otherwise it is the records the files add or change, each at its new version.

    `read`: with `planned`, a first load hands it every row once all are read and checked,
    before planning them (`ROWS_READ_SCHEMA`): what a model can be trained on meanwhile.

    `write_after`: with `planned`, rows are written once it is set (not before).

    `stop`: checked before each batch is planned or written and each index is made; once it
    is set, the call raises IngestStopped and keeps nothing (the run it was feeding failed).
    """
    upgrade(engine)
    files = [PseudonymisedFile(p) for p in paths]
    summary = IngestSummary()
    started = time.perf_counter()
    # References are all checked or made here (key ids, sources, record keys): `bulk`.
    with write_transaction(engine, bulk=True) as connection:
        _prepare(connection)
        first_load = planned is not None and _empty(connection)
        records = cast(Table, Record.__table__)
        deferred: list[DeferredUpkeep] = [
            DeferredIndexes(record_versions),
            DeferredForeignKeys(records),
            DeferredForeignKeys(record_versions),
        ]
        if first_load:  # it never looks a record up by its key: the key's index can wait
            deferred.insert(1, DeferredUniqueConstraints(records))
        load = _Load(
            connection,
            summary,
            stop,
            deferred,
            FreshStatistics(connection, "records"),
            ahead=planned is not None,
        )
        if planned is not None:
            mark = connection.scalar(select(func.max(Event.cursor))) or 0
            batches = []
            for file, batch, _ in _read_batches(load, files, progress):
                load.check_stop()
                if first_load:  # every row checked before `read` gets them
                    _check_batch(connection, file, batch, summary)
                batches.append((file, batch))
            if first_load and read is not None:
                read(_rows_as_read([batch for _, batch in batches]))
            once = first_load and _each_record_once([batch for _, batch in batches])
            plans = []
            while batches:  # each batch dropped once planned
                file, batch = batches.pop(0)
                plan = load.plan(file, batch, first_load=first_load, all_new=once)
                if plan is not None:
                    plans.append(plan)
            load.unwritten.clear()  # what it was for is done; the run needs the memory more
            load.rows_expected = summary.rows_read
            planned(_planned_load(connection, plans, int(mark), first_load=first_load))
            if write_after is not None:
                write_after.wait()
            plans.reverse()
            while plans:  # each dropped once written
                load.check_stop()
                load.write(plans.pop())
        else:
            for plan, rows_expected in _planned_batches(load, files, progress):
                load.rows_expected = rows_expected
                load.write(plan)
        for upkeep in load.deferred:
            load.check_stop()
            upkeep.restore(connection)
    summary.seconds = time.perf_counter() - started
    return summary


@dataclass(frozen=True)
class PlannedLoad:
    """An ingest as it will be written: what it changes of what a linkage run reads."""

    #: The new current version of each record the ingest adds or changes (BLOCK_SCHEMA with
    #: `unique_id` the record key, in key order) and its source's kind (`source_kind`); into
    #: an empty registry, every record.
    versions: pa.Table
    #: The newest event cursor when the ingest began: events after it (real-time changes
    #: made meanwhile) are carried onto a first load's run (`RegistrySnapshot.event_mark`).
    event_mark: int
    #: Into an empty registry: `versions` are then all there is.
    first_load: bool = True


def _empty(connection: Connection) -> bool:
    return connection.scalar(select(Record.id).limit(1)) is None


def _planned_batches(
    load: _Load, files: list[PseudonymisedFile], progress: Progress | None
) -> Iterator[tuple[_BatchPlan, int]]:
    """Each batch's plan, and the rows the whole call is expected to read (extrapolated from
    the bytes read so far), which decides whether indexes are deferred."""
    for file, batch, expected in _read_batches(load, files, progress):
        plan = load.plan(file, batch, first_load=False)
        if plan is not None:
            yield plan, expected


def _read_batches(
    load: _Load, files: list[PseudonymisedFile], progress: Progress | None
) -> Iterator[tuple[PseudonymisedFile, pa.Table, int]]:
    """Each batch of each file, and the rows the whole call is expected to read (from the
    rows and bytes read so far), reporting progress once the batch has been dealt with."""
    total = sum(f.size for f in files)
    done_before = 0
    rows = 0
    for file in files:
        for batch in file.batches():
            done = max(done_before + file.bytes_read, 1)
            rows += batch.num_rows
            yield file, _in_key_order(batch), rows * max(total, done) // done
            if progress is not None:
                progress(min(done, total), total)
        done_before += file.size
        load.summary.files += 1


def _in_key_order(batch: pa.Table) -> pa.Table:
    """The batch's rows by source system and record id, a record's own rows in the order
    given (Arrow's sort is stable: the later row still wins). New records are numbered in
    this order, so the index of their unique key grows in runs, not at random: on SQLite 1M
    `records` rows sorted in runs of 20,000 went in in 2.2 s against 4.8 s in file order."""
    keys = [("source_system", "ascending"), ("record_id", "ascending")]
    return batch.take(pc.sort_indices(batch, sort_keys=keys))


#: A first load's rows as read (`ingest_files(read=...)`): the columns a model is trained on,
#: `unique_id` the row's position from 1, which is the key its record gets unless the load
#: gives a record twice (it is then there twice). Random sampling draws by key: with the same
#: keys a model trained on these is the one trained on the records once written.
ROWS_READ_SCHEMA = pa.schema(
    [("unique_id", pa.int64()), BATCH_SCHEMA.field("sex")]
    + [BATCH_SCHEMA.field(c.name) for c in ENCODING_COLUMNS]
)


def _rows_as_read(batches: list[pa.Table]) -> pa.Table:
    """`batches` as ROWS_READ_SCHEMA: the same buffers, no copy but the positions."""
    if not batches:
        return ROWS_READ_SCHEMA.empty_table()
    table = pa.concat_tables([batch.select(ROWS_READ_SCHEMA.names[1:]) for batch in batches])
    positions = pa.array(range(1, table.num_rows + 1), pa.int64())
    return table.add_column(0, "unique_id", positions).cast(ROWS_READ_SCHEMA)


def _each_record_once(batches: list[pa.Table]) -> bool:
    """Whether no (source_system, record_id) is given twice in these batches: then every
    row of a first load is a new record, and planning needs no per-row bookkeeping."""
    if not batches:
        return True
    keys = pa.concat_tables([batch.select(["source_system", "record_id"]) for batch in batches])
    distinct = keys.group_by(["source_system", "record_id"]).aggregate([])
    return bool(distinct.num_rows == keys.num_rows)


def _looked_up(
    keys: pa.Array | pa.ChunkedArray, mapping: Mapping[Any, Any], value_type: pa.DataType
) -> pa.Array:
    """`mapping[key]` for each of `keys` (all of them in `mapping`), in Arrow: a source's
    id or kind for each of a million rows, not a dictionary look-up per row."""
    known = pa.array(list(mapping), keys.type)
    at = pc.index_in(keys, value_set=known)
    if isinstance(at, pa.ChunkedArray):
        at = at.combine_chunks()
    if at.null_count:
        raise KeyError(f"{at.null_count} keys missing from the mapping")
    return pa.array(list(mapping.values()), value_type).take(at)


def _planned_load(
    connection: Connection, plans: list[_BatchPlan], mark: int, *, first_load: bool
) -> PlannedLoad:
    """The new current versions of the records `plans` write, with their sources' kinds."""
    kinds = dict(connection.execute(select(SourceSystem.id, SourceSystem.kind)).all())
    tables = [
        plan.versions.select(BLOCK_SCHEMA.names)
        .cast(BLOCK_SCHEMA)
        .append_column("source_kind", _looked_up(plan.source_ids, kinds, pa.string()))
        for plan in plans
    ]
    versions = (
        pa.concat_tables(tables)
        if tables
        else BLOCK_SCHEMA.append(pa.field("source_kind", pa.string())).empty_table()
    )
    if any(plan.changed for plan in plans):  # a record given twice: its later version stands
        order = pc.sort_indices(versions, [("unique_id", "ascending"), ("version", "descending")])
        versions = versions.take(order)
        ids = versions["unique_id"].combine_chunks()
        first = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
        versions = versions.filter(pa.concat_arrays([pa.array([True]), first]))
    return PlannedLoad(versions, mark, first_load)


def _prepare(connection: Connection) -> None:
    """Serialise ingests (SQLite already has: the transaction began IMMEDIATE)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({INGEST_LOCK})")
        # Even with true statistics the planner prefers scanning the table to a few thousand
        # index probes for a batch's key look-up; the probes are several times faster.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")


def content_hash(row: Mapping[str, Any]) -> str:
    """`content_hashes` of one record given as a mapping (the real-time path): the same digest
    for the same content, whichever way the record arrived."""
    parts = []
    for name in CONTENT_COLUMNS:
        value = row.get(name)
        if value is None:
            parts.append("\x00")
        elif isinstance(value, bool):
            parts.append("true" if value else "false")
        else:
            parts.append(str(value))
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def _check_batch(
    connection: Connection, file: PseudonymisedFile, batch: pa.Table, summary: IngestSummary
) -> None:
    """Refuse what the registry must not hold: unregistered key ids, other encoding versions,
    keys longer than their columns."""
    versions = set(pc.unique(batch["encoding_version"]).to_pylist())
    if versions != {ENCODING_VERSION}:
        other = ", ".join(str(v) for v in sorted(versions - {ENCODING_VERSION}))
        raise UnusableInputError(
            f"{file.path}: encoded under encoding version {other}; this registry holds "
            f"version {ENCODING_VERSION} only (re-pseudonymise with a matching pseudonymiser)"
        )
    for name, column in (
        ("source_system", SourceSystem.code),
        ("record_id", Record.record_id),
        ("key_id", LinkageKey.key_id),
    ):
        limit = column.type.length if isinstance(column.type, String) else None
        longest = pc.max(pc.utf8_length(batch[name])).as_py() or 0
        if limit is not None and longest > limit:
            raise UnusableInputError(f"{file.path}: a {name} is longer than {limit} characters")
    _check_key_ids(connection, file, set(pc.unique(batch["key_id"]).to_pylist()), summary)


def _check_key_ids(
    connection: Connection, file: PseudonymisedFile, key_ids: set[str], summary: IngestSummary
) -> None:
    known = dict(connection.execute(select(LinkageKey.key_id, LinkageKey.active)).all())
    if not known:
        if len(key_ids) > 1:
            raise UnknownKeyError(
                f"{file.path}: the first ingest registers one key id, but this file mixes "
                f"{', '.join(sorted(key_ids))}"
            )
        (key_id,) = key_ids
        connection.execute(insert(LinkageKey), [{"key_id": key_id, "registered_at": utcnow()}])
        summary.key_ids_registered.append(key_id)
        return
    refused = sorted(k for k in key_ids if not known.get(k, False))
    if refused:
        accepted = sorted(k for k, active in known.items() if active)
        raise UnknownKeyError(
            f"{file.path}: records encoded under key id {', '.join(refused)}, which this "
            f"registry does not accept (it accepts: {', '.join(accepted) or 'none'}); "
            "nothing was ingested"
        )


#: A version row's columns but its time of ingest, which all of a batch's rows share.
VERSION_COLUMNS = (
    "record_pk",
    "version",
    "key_id",
    "encoding_version",
    "content_hash",
    *CONTENT_COLUMNS,
)


@dataclass
class _BatchPlan:
    """What one batch adds: the version rows to write, those of new records first (`added`
    of them), then those of known records (`changed`: record pk, new version, hash, row).
    Held in Arrow, not Python tuples: a first load keeps every batch's plan until written."""

    added: int
    changed: list[tuple[int, int, str, int]]
    #: VERSION_COLUMNS of the rows to write, and `unique_id` (= record_pk) for the blocks.
    versions: pa.Table
    #: The source system and record id of each version row.
    source_ids: pa.Array
    record_ids: pa.ChunkedArray
    #: Rows the batch had (what the share of them written is taken of).
    batch_rows: int
    #: When it is written, as the database takes it (`stored_timestamp`).
    stamp: Any


class _Load:
    """One ingest call: plans each batch against the registry, writes the plans, and keeps
    what makes a large load fast (indexes and foreign keys made once, at its end)."""

    def __init__(
        self,
        connection: Connection,
        summary: IngestSummary,
        stop: threading.Event | None,
        deferred: list[DeferredUpkeep],
        statistics: FreshStatistics,
        *,
        ahead: bool = False,
    ) -> None:
        self.connection = connection
        self.summary = summary
        self.stop = stop
        self.deferred = deferred
        self.statistics = statistics
        self.rows_expected = 0
        #: Every batch is planned before any is written (`ingest_files(planned=...)`).
        self.ahead = ahead
        #: Records planned by this call but not written yet (`ahead`): key -> (record pk,
        #: version, hash), what `_existing` would find once they are written.
        self.unwritten: dict[tuple[int, str], tuple[int, int, str]] = {}
        self._last_id = 0

    def check_stop(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise IngestStopped("the ingest was stopped before it committed: nothing was kept")

    def plan(
        self, file: PseudonymisedFile, batch: pa.Table, *, first_load: bool, all_new: bool = False
    ) -> _BatchPlan | None:
        """This batch's new records and changed versions (None: nothing new). A `first_load`
        asks the registry nothing about records (it had none); planning `ahead` of writing,
        it remembers what it planned, for the batches after it;
        `all_new`: it gives no record twice (`_each_record_once`), so every row is a new
        record and there is nothing to remember."""
        connection, summary = self.connection, self.summary
        self.check_stop()
        if not first_load:  # a first load checked each batch as it read it
            _check_batch(connection, file, batch, summary)
        # A missing restricted flag means "not restricted" (the pseudonymiser always writes one).
        batch = batch.set_column(
            batch.schema.get_field_index("restricted"),
            "restricted",
            pc.fill_null(batch["restricted"], False),
        )
        sources = source_ids(connection, pc.unique(batch["source_system"]).to_pylist())
        digests = content_hashes(batch)
        summary.rows_read += batch.num_rows
        per_source = [
            (code.as_py(), rows.as_py())
            for code, rows in zip(*pc.value_counts(batch["source_system"]).flatten(), strict=True)
        ]
        for code, rows in per_source:
            _counts(summary, code).rows += rows
        if all_new:
            return self._plan_all_new(batch, sources, digests, per_source) if digests else None
        codes = batch["source_system"].to_pylist()
        record_ids = batch["record_id"].to_pylist()
        # Later rows for the same record win (dict order follows first appearance; harmless).
        latest = {
            (sources[code], record_id): index
            for index, (code, record_id) in enumerate(zip(codes, record_ids, strict=True))
        }
        summary.unchanged += batch.num_rows - len(latest)
        existing = {} if first_load else _existing(connection, latest.keys())
        existing.update((key, self.unwritten[key]) for key in latest if key in self.unwritten)

        added: list[tuple[tuple[int, str], int, str]] = []
        changed: list[tuple[int, int, str, int]] = []
        for key, index in latest.items():
            digest = digests[index]
            found = existing.get(key)
            if found is None:
                added.append((key, index, digest))
            elif found[2] == digest:
                summary.unchanged += 1
            else:
                changed.append((found[0], found[1] + 1, digest, index))
        for code, count in Counter(codes[i] for _, i, _ in added).items():
            _counts(summary, code).records_added += count
            _counts(summary, code).versions_added += count
        for code, count in Counter(codes[i] for *_, i in changed).items():
            _counts(summary, code).versions_added += count
        summary.records_added += len(added)
        summary.versions_added += len(added) + len(changed)
        if not added and not changed:
            return None

        # Keys handed out before their rows are written: above those planned so far.
        ids = allocate_ids(connection, "records", len(added), above=self._last_id)
        self._last_id = max(ids, default=self._last_id)
        if self.ahead:
            for pk, (key, _, digest) in zip(ids, added, strict=True):
                self.unwritten[key] = (pk, 1, digest)
            for (pk, version, digest, index), code in zip(
                changed, (codes[i] for *_, i in changed), strict=True
            ):
                self.unwritten[(sources[code], record_ids[index])] = (pk, version, digest)
        # The rows to write, added then changed, taken out of Arrow column by column: no
        # per-row tuples but the ones handed to the driver.
        rows = [i for _, i, _ in added] + [i for *_, i in changed]
        # Usually every row, in order: then the batch's own buffers, no copy.
        everything = rows == list(range(batch.num_rows))
        return self._batch_plan(
            batch if everything else batch.take(pa.array(rows)),
            added=len(added),
            changed=changed,
            pks=pa.array(ids + [pk for pk, *_ in changed], pa.int64()),
            numbers=pa.array([1] * len(added) + [v for _, v, *_ in changed], pa.int64()),
            digests=pa.array([d for *_, d in added] + [d for _, _, d, _ in changed]),
            sources=pa.array([sources[codes[i]] for i in rows], pa.int64()),
            batch_rows=batch.num_rows,
        )

    def _plan_all_new(
        self,
        batch: pa.Table,
        sources: dict[str, int],
        digests: list[str],
        per_source: list[tuple[str, int]],
    ) -> _BatchPlan:
        """`plan` of a batch whose every row is a new record: in Arrow, nothing per row but
        the digests (on 1M records the per-row bookkeeping took some 2 s of a first load's
        critical path). The batch's own buffers are written, no copy: a first load holds
        them anyway while a model is trained on them."""
        summary, rows = self.summary, batch.num_rows
        for code, count in per_source:
            _counts(summary, code).records_added += count
            _counts(summary, code).versions_added += count
        summary.records_added += rows
        summary.versions_added += rows
        ids = allocate_ids(self.connection, "records", rows, above=self._last_id)
        self._last_id = max(ids, default=self._last_id)
        return self._batch_plan(
            batch,
            added=rows,
            changed=[],
            pks=pa.array(ids, pa.int64()),
            numbers=pa.repeat(pa.scalar(1, pa.int64()), rows),
            digests=pa.array(digests, pa.string()),
            sources=_looked_up(batch["source_system"], sources, pa.int64()),
            batch_rows=rows,
        )

    def _batch_plan(
        self,
        written: pa.Table,
        *,
        added: int,
        changed: list[tuple[int, int, str, int]],
        pks: pa.Array,
        numbers: pa.Array,
        digests: pa.Array,
        sources: pa.Array,
        batch_rows: int,
    ) -> _BatchPlan:
        """The plan writing `written`'s rows as versions `numbers` of records `pks`."""
        stamp = stored_timestamp(self.connection.dialect)
        versions = pa.table(
            {
                "record_pk": pks,
                "version": numbers,
                "key_id": written["key_id"],
                "encoding_version": written["encoding_version"],
                "content_hash": digests,
                **{name: written[name] for name in CONTENT_COLUMNS},
                "unique_id": pks,
            }
        )
        return _BatchPlan(
            added, changed, versions, sources, written["record_id"], batch_rows, stamp
        )

    def write(self, plan: _BatchPlan) -> None:
        """Write a batch's plan: its records, their changes and their versions (rows and
        blocks)."""
        connection, added, changed = self.connection, plan.added, plan.changed
        expected = len(plan.source_ids) * self.rows_expected // plan.batch_rows
        for upkeep in self.deferred:
            upkeep.before_insert(connection, expected)
        versions = plan.versions
        new = versions.slice(0, added)
        # As Arrow columns, which PostgreSQL's COPY takes as they are (as tuples they were
        # turned back into columns: 1.5 s of a 1M-record first load).
        records = pa.table(
            {
                "id": new["record_pk"],
                "source_system_id": plan.source_ids.slice(0, added),
                "record_id": plan.record_ids.slice(0, added),
                "current_version": new["version"],
                "content_hash": new["content_hash"],
                "key_id": new["key_id"],
                "restricted": new["restricted"],
            }
        )
        # What every row shares goes in as constants (on SQLite literals, not bound values).
        bulk_insert(
            connection,
            "records",
            records.column_names,
            records,
            constants={"status": "active", "created_at": plan.stamp, "updated_at": plan.stamp},
        )
        if changed:
            key_ids = versions["key_id"].to_pylist()
            restricted = versions["restricted"].to_pylist()
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
                        "new_restricted": flag,
                        "new_key_id": key_id,
                    }
                    for (pk, version, digest, _), flag, key_id in zip(
                        changed, restricted[added:], key_ids[added:], strict=True
                    )
                ],
            )
        bulk_insert(
            connection,
            "record_versions",
            VERSION_COLUMNS,
            versions,
            constants={"ingested_at": plan.stamp},
        )
        store_blocks(connection, versions)
        self.statistics.added_rows(connection, added)


def _counts(summary: IngestSummary, code: str) -> SourceCounts:
    counts = summary.per_source.get(code)
    if counts is None:
        counts = summary.per_source[code] = SourceCounts()
    return counts


def _existing(
    connection: Connection, keys: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], tuple[int, int, str]]:
    """(source id, record id) -> (record pk, current version, content hash) for known records:
    one query per source system and batch, the batch's record ids passed as one parameter."""
    by_source: dict[int, list[str]] = {}
    for source_id, record_id in keys:
        by_source.setdefault(source_id, []).append(record_id)
    found: dict[tuple[int, str], tuple[int, int, str]] = {}
    for source_id, record_ids in by_source.items():
        if connection.dialect.name == "postgresql":
            # One array parameter (= ANY): nothing per id for SQLAlchemy to compile.
            rows: Iterable[Any] = connection.exec_driver_sql(
                "SELECT record_id, id, current_version, content_hash FROM records "
                "WHERE source_system_id = %s AND record_id = ANY(%s::text[])",
                (source_id, record_ids),
            )
        else:
            # json_each walked first (CROSS JOIN fixes the order), each id a probe of the
            # unique (source_system_id, record_id) index.
            rows = connection.exec_driver_sql(
                "SELECT r.record_id, r.id, r.current_version, r.content_hash "
                "FROM json_each(?) AS j CROSS JOIN records AS r "
                "ON r.source_system_id = ? AND r.record_id = j.value",
                (json.dumps(record_ids), source_id),
            )
        for record_id, pk, version, digest in rows:
            found[(source_id, record_id)] = (pk, version, digest)
    return found
