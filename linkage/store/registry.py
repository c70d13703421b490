"""Reading the registry for a linkage run, and writing a run's outcome in one transaction."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Table,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)

from linkage.affected import PRIOR_SCHEMA
from linkage.contract import ENCODING_COLUMNS
from linkage.identity.assignment import IDENTIFIER_SCHEMA
from linkage.model.incremental import VERSION_SCHEMA
from linkage.pseudonymised_file import BATCH_SCHEMA
from linkage.run import RegistrySnapshot, ReviewPair, RunOutcome, ScoredState
from linkage.store.bulk import (
    FRESH_MEMORY,
    DeferredForeignKeys,
    DeferredIndexes,
    bulk_insert,
    copy_out,
    driver_executemany,
    text_out,
)
from linkage.store.database import hold_event_order
from linkage.store.identifiers import follow_successors
from linkage.store.ingest import PlannedLoad
from linkage.store.kept_pairs import keep_pairs, kept_pairs, pair_blocks
from linkage.store.models import (
    Assignment,
    Decision,
    Event,
    Identifier,
    LinkageRun,
    Record,
    ReviewItem,
    SourceSystem,
    record_versions,
    stored_timestamp,
    utcnow,
)
from linkage.store.term_frequencies import TermFrequencyTables, freeze_frequencies
from linkage.store.version_blocks import BLOCK_SCHEMA, BlocksRead, read_blocks
from linkage.waterfall import count_frequencies

FETCH_ROWS = 50_000
#: Review pairs explained at a time ahead of the write (`explain_ahead`): some 0.25 s each.
EXPLAIN_SLICE = 5_000
#: Ends a record's current assignment (it gets another, or none if withdrawn).
_END_ASSIGNMENT = "UPDATE assignments SET ended_at = ? WHERE record_pk = ? AND ended_at IS NULL"
SNAPSHOT_SCHEMA = pa.schema(
    [("unique_id", pa.int64()), ("source_kind", pa.string()), ("sex", pa.string())]
    + [BATCH_SCHEMA.field(c.name) for c in ENCODING_COLUMNS]
)
#: A snapshot record as read: SNAPSHOT_SCHEMA and the record's current version number.
_READ_SCHEMA = SNAPSHOT_SCHEMA.append(pa.field("current_version", pa.int64()))
#: The active CCIs as read: their creation time as the database's text (`_active_identifiers`).
_IDENTIFIER_READ_SCHEMA = pa.schema(
    [("cci", pa.string()), ("created_at", pa.string()), ("nhs_anchored", pa.int64())]
)
#: The active records: which version is current, and their source's kind.
_KEY_SCHEMA = pa.schema(
    [("unique_id", pa.int64()), ("current_version", pa.int64()), ("source_kind", pa.string())]
)
#: The active records as read: their source's id, which `read_keys` makes a kind.
_KEY_READ_SCHEMA = pa.schema(
    [("unique_id", pa.int64()), ("current_version", pa.int64()), ("source_system_id", pa.int64())]
)
#: Versions the blocks lack are read by record key up to this many, else all are read.
FETCH_BY_KEY_MAX = 50_000
_REVIEW_COLUMNS = (
    "record_pk_l",
    "record_pk_r",
    "run_id",
    "match_weight",
    "match_probability",
    "reason",
    "explanation",
    "status",
    "created_at",
)


def _literal_sql(connection: Connection, query: Any) -> str:
    return str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))


def _driver_rows(connection: Connection, query: Any) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of `query` in batches, straight from the DB-API cursor: SQLAlchemy's row objects
    cost more than the database itself on a snapshot of a million records. On PostgreSQL a
    server-side cursor keeps memory bounded."""
    sql = _literal_sql(connection, query)
    driver: Any = connection.connection.driver_connection
    postgres = connection.dialect.name == "postgresql"
    cursor = driver.cursor(name="cci_snapshot") if postgres else driver.cursor()
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(FETCH_ROWS):
            yield rows
    finally:
        cursor.close()


@dataclass(frozen=True)
class RecordsRead:
    """The active records as `read_records` found them, before their current versions are
    taken out (`current_records`): their keys, every version they can be at, and where."""

    #: Which version of each active record is current, and its source's kind (_KEY_SCHEMA,
    #: by record key).
    keys: pa.Table
    #: The versions stored in blocks, up to the last block read.
    blocks: BlocksRead
    #: Current versions the blocks lacked, read from `record_versions` (BLOCK_SCHEMA): the
    #: run adds them to the blocks.
    uncached: pa.Table
    #: Where each record's current version is (`_current_positions` of `keys` in `versions`).
    positions: tuple[pa.Array, pa.Array]

    @property
    def versions(self) -> pa.Table:
        """Every version read (BLOCK_SCHEMA): the blocks', then the uncached."""
        if not self.uncached.num_rows:
            return self.blocks.versions
        return pa.concat_tables([self.blocks.versions, self.uncached.cast(BLOCK_SCHEMA)])


def read_keys(connection: Connection) -> pa.Table:
    """Which version of each active record is current, and its source's kind (_KEY_SCHEMA).
    The kinds are put in by Arrow: a million of them written out by the database cost more
    than the rest of the read."""
    keys = _arrow_rows(
        connection,
        select(Record.id, Record.current_version, Record.source_system_id)
        .where(Record.status == "active")
        .order_by(Record.id),
        _KEY_READ_SCHEMA,
    )
    sources = connection.execute(select(SourceSystem.id, SourceSystem.kind)).all()
    known = pa.array([source_id for source_id, _ in sources], pa.int64())
    kinds = pa.array([kind for _, kind in sources], pa.string())
    at = pc.index_in(keys["source_system_id"], value_set=known)
    return pa.table(
        [keys["unique_id"], keys["current_version"], kinds.take(at)], schema=_KEY_SCHEMA
    )


def read_records(
    connection: Connection, blocks: BlocksRead | None = None, keys: pa.Table | None = None
) -> RecordsRead:
    """The active records' keys (`keys`, if read before: in this transaction, or in one that
    began before it), and their versions: from the version blocks (those of `blocks` read
    before, in this transaction or any other, and any added since), and from
    `record_versions` those the blocks lack."""
    keys = read_keys(connection) if keys is None else keys
    read = read_blocks(connection, since=blocks)
    at, rows = _current_positions(keys, read.versions)
    if len(at) == keys.num_rows:  # `at` is a subset of `keys`' positions, without repeats
        return RecordsRead(keys, read, BLOCK_SCHEMA.empty_table(), (at, rows))
    found = keys["unique_id"].combine_chunks().take(at)
    missing = pc.invert(pc.is_in(keys["unique_id"], value_set=found))
    uncached = _versions_of(connection, keys.filter(missing))
    records = RecordsRead(keys, read, uncached, (at, rows))
    return replace(records, positions=_current_positions(keys, records.versions))


def current_records(records: RecordsRead, delivered: PlannedLoad | None = None) -> pa.Table:
    """The current version of each active record (`_READ_SCHEMA`, by record key): as read,
    or once an ingest not yet committed (`delivered`, `ingest_files(planned=...)`) has added
    and changed what it plans to."""
    keys, versions = records.keys, records.versions
    at, rows = records.positions
    if delivered is not None and delivered.versions.num_rows:
        given = delivered.versions
        keys, rows = _delivered(keys, at, rows, given, start=versions.num_rows)
        versions = pa.concat_tables([versions, given.select(BLOCK_SCHEMA.names).cast(BLOCK_SCHEMA)])
        at = pa.array(range(keys.num_rows), pa.int64())
    return _current_of(keys, versions, at, rows)


def _delivered(
    keys: pa.Table, at: pa.Array, rows: pa.Array, given: pa.Table, *, start: int
) -> tuple[pa.Table, pa.Array]:
    """`keys` (_KEY_SCHEMA) and where their current versions are (`at`, `rows`), once the
    records of `given` (BLOCK_SCHEMA and `source_kind`) are active at its versions, which
    are put after the versions read (from `start`): adjusting what was worked out, rather than
    working it out again for a million records."""
    ids = given["unique_id"].combine_chunks()
    placed = keys.take(at)
    kept = pc.invert(pc.is_in(placed["unique_id"], value_set=ids)).combine_chunks()
    merged = pa.concat_tables(
        [
            placed.filter(kept),
            pa.table([ids, given["version"], given["source_kind"]], schema=_KEY_SCHEMA),
        ]
    )
    added = pa.array(range(start, start + len(ids)), pa.uint64())
    # One array: a take from a chunked array resolved each index's chunk (1M: 0.9 s).
    positions = pa.concat_arrays([rows.cast(pa.uint64()).filter(kept), added])
    order = pc.sort_indices(merged["unique_id"])
    return merged.take(order), positions.take(order)


def _current_positions(keys: pa.Table, versions: pa.Table) -> tuple[pa.Array, pa.Array]:
    """Where the current version of each record of `keys` (_KEY_SCHEMA, by unique_id) is in
    `versions` (BLOCK_SCHEMA): positions in `keys` and in `versions`, in `keys` order, once
    each. Index arithmetic rather than Arrow's hash join, which took 3.8 s to carry the 26
    columns of a million records along."""
    if not keys.num_rows:
        return pa.array([], pa.int32()), pa.array([], pa.uint64())
    ids = versions["unique_id"].combine_chunks()
    at = pc.index_in(ids, value_set=keys["unique_id"].combine_chunks())  # position in keys
    current = pc.equal(
        versions["version"].combine_chunks(), keys["current_version"].take(pc.fill_null(at, 0))
    )
    current = pc.fill_null(current, False).combine_chunks()
    at = at.filter(current)
    rows = pc.indices_nonzero(current)  # position in versions
    order = pc.sort_indices(at)
    at, rows = at.take(order), rows.take(order)
    if len(at) > 1:  # a version stored twice (never by design): keep one
        first = pc.not_equal(at.slice(1), at.slice(0, len(at) - 1))
        keep = pa.concat_arrays([pa.array([True]), first])
        at, rows = at.filter(keep), rows.filter(keep)
    return at, rows


def _current_of(keys: pa.Table, versions: pa.Table, at: pa.Array, rows: pa.Array) -> pa.Table:
    """The current versions at those positions (`_current_positions`), as `_READ_SCHEMA`."""
    if not keys.num_rows:
        return _READ_SCHEMA.empty_table()
    taken = pc.take(versions, rows, memory_pool=FRESH_MEMORY)
    columns = {
        "unique_id": keys["unique_id"].take(at),
        "source_kind": keys["source_kind"].take(at),
        **{name: taken[name] for name in _READ_SCHEMA.names[2:-1]},
        "current_version": keys["current_version"].take(at),
    }
    return pa.table(columns, schema=_READ_SCHEMA)


def _versions_of(connection: Connection, wanted: pa.Table) -> pa.Table:
    """The versions `wanted` names (_KEY_SCHEMA: record and current version), read from
    `record_versions` (BLOCK_SCHEMA). A few are read by record and picked by version, so any
    snapshot that holds them reads the same; many (a registry from before the blocks), as the
    current versions of all records in this snapshot."""
    ids = wanted["unique_id"].combine_chunks()
    if not len(ids):
        return BLOCK_SCHEMA.empty_table()
    v = record_versions.c
    columns = (v.record_pk, v.version, v.sex, *(v[c.name] for c in ENCODING_COLUMNS))
    if len(ids) > FETCH_BY_KEY_MAX:
        query = (
            select(*columns)
            .join(Record, and_(v.record_pk == Record.id, v.version == Record.current_version))
            .where(Record.status == "active")
        )
        found = _arrow_rows(connection, query, BLOCK_SCHEMA)
    else:
        found = pa.concat_tables(
            _arrow_rows(connection, select(*columns).where(v.record_pk.in_(chunk)), BLOCK_SCHEMA)
            for chunk in _chunks(set(ids.to_pylist()))
        )
    _, rows = _current_positions(wanted, found)
    return found.take(rows)


def _arrow_rows(
    connection: Connection, query: Any, schema: pa.Schema, plain: Sequence[str] = ()
) -> pa.Table:
    """`query`'s rows as an Arrow table of `schema` (its columns in order). `plain`: text
    columns whose values are never empty and hold no quote or line break."""
    if connection.dialect.name == "postgresql":
        tables = list(copy_out(connection, _literal_sql(connection, query), schema))
    else:
        labelled = zip(query.selected_columns, schema.names, strict=True)
        named = query.with_only_columns(
            *(column.label(name) for column, name in labelled), maintain_column_froms=True
        )
        table = text_out(connection, _literal_sql(connection, named), schema, plain)
        if table is not None:
            return table
        # Arrow converts the driver's tuples as structs: twice as fast as transposing them
        # into columns in Python (1.17M records: 2.5 s against 8.7 s).
        row = pa.struct(list(schema))
        tables = [
            pa.Table.from_batches([pa.RecordBatch.from_struct_array(pa.array(rows, type=row))])
            for rows in _driver_rows(connection, query)
        ]
    return pa.concat_tables(tables) if tables else schema.empty_table()


@dataclass(frozen=True)
class Identities:
    """What a snapshot reads besides the records: current assignments, active CCIs, the
    records superseded CCIs held, the decisions' constraints, and the marks of the newest
    event and decision. An ingest changes none of it, so `cci link --input` reads it while the
    ingest writes (`read_identities`), and the snapshot after the ingest takes it as read if
    nothing else changed it meanwhile (its `Changes` are the same then)."""

    prior: pa.Table
    identifiers: pa.Table
    members_when_superseded: dict[str, tuple[str, frozenset[int]]]
    must_link: list[tuple[int, int]]
    cannot_link: list[tuple[int, int]]
    decision_mark: int
    changes: Changes


@dataclass(frozen=True)
class Changes:
    """Counters that move whenever assignments or CCIs may have changed: every real-time
    submission and withdrawal writes an event (cursors are handed out in commit order,
    `hold_event_order`), every decision a row (counted: on PostgreSQL a smaller id can commit
    after a larger one), and a run's result commits with its run marked finished (a run can
    change a CCI's anchoring and write no event)."""

    event_mark: int
    decisions: int
    runs_finished: int


def _changes(connection: Connection) -> Changes:
    return Changes(
        int(connection.scalar(select(func.max(Event.cursor))) or 0),
        int(connection.scalar(select(func.count()).select_from(Decision)) or 0),
        int(
            connection.scalar(
                select(func.count()).select_from(LinkageRun).where(LinkageRun.status != "running")
            )
            or 0
        ),
    )


def read_identities(connection: Connection) -> Identities:
    """`Identities` as of the connection's transaction (a snapshot transaction)."""
    changes = _changes(connection)
    ended: Any = Assignment.ended_at
    if connection.dialect.name == "sqlite":
        # A unary plus keeps SQLite off the index of current assignments: walking it costs a
        # look-up of each entry's row, and scanning the table is faster (1M records: 3.8 s
        # against 1.1 s).
        ended = literal_column("+assignments.ended_at")
    current = select(Assignment.record_pk, Assignment.cci).where(ended.is_(None))
    prior = _arrow_rows(connection, current, PRIOR_SCHEMA, plain=["cci"])
    latest: dict[tuple[int, int], str] = {}  # the latest verdict on a pair stands
    decision_mark = 0
    for decision_id, left, right, verdict in connection.execute(
        select(Decision.id, Decision.record_pk_l, Decision.record_pk_r, Decision.verdict)
        .where(Decision.verdict != "unsure")
        .order_by(Decision.id)
    ):
        latest[(min(left, right), max(left, right))] = verdict
        decision_mark = decision_id
    return Identities(
        prior=prior,
        identifiers=_active_identifiers(connection),
        members_when_superseded=_superseded_members(connection),
        must_link=[pair for pair, verdict in latest.items() if verdict == "same"],
        cannot_link=[pair for pair, verdict in latest.items() if verdict == "different"],
        decision_mark=int(decision_mark),
        changes=changes,
    )


def load_snapshot(
    connection: Connection,
    blocks: BlocksRead | None = None,
    identities: Identities | None = None,
) -> RegistrySnapshot:
    """Read in one snapshot transaction (`snapshot_transaction`), so the records, assignments
    and event mark all describe the same moment. `blocks`: version blocks read before (they
    never change), of which only those added since are read. `identities`: read before, and
    taken as they are if nothing changed them since (else read again)."""
    if identities is None or identities.changes != _changes(connection):
        identities = read_identities(connection)
    records = read_records(connection, blocks)
    return _snapshot(current_records(records), records.uncached, identities)


def _snapshot(read: pa.Table, uncached: pa.Table, identities: Identities) -> RegistrySnapshot:
    """`read`: the current versions of the active records (`current_records`), `uncached`
    those of them the blocks lack."""
    versions = pa.table([read["unique_id"], read["current_version"]], schema=VERSION_SCHEMA)
    return RegistrySnapshot(
        records=read.select(SNAPSHOT_SCHEMA.names),
        versions=versions,
        prior=identities.prior,
        identifiers=identities.identifiers,
        members_when_superseded=identities.members_when_superseded,
        must_link=identities.must_link,
        cannot_link=identities.cannot_link,
        event_mark=identities.changes.event_mark,
        decision_mark=identities.decision_mark,
        uncached_versions=uncached,
    )


@dataclass(frozen=True)
class RegistryMark:
    """What moves whenever anything a snapshot reads changes: the `Changes` (assignments,
    CCIs, decisions, runs), and the number of active records and the sum of their current
    version numbers. Versions only ever go up, and a record leaves the active ones only by a
    withdrawal, which writes an event; so any version stored (an ingest's, or a real-time
    submission's, which writes no event when the record keeps its CCI) raises the sum."""

    changes: Changes
    active_records: int
    versions_sum: int


def registry_mark(connection: Connection) -> RegistryMark:
    active, total = connection.execute(
        select(func.count(), func.coalesce(func.sum(Record.current_version), 0)).where(
            Record.status == "active"
        )
    ).one()
    return RegistryMark(_changes(connection), int(active), int(total))


@dataclass(frozen=True)
class DeliveredSnapshot:
    """A snapshot of the registry once an ingest not yet committed has: what `load_snapshot`
    will read after its commit if nothing else changes the registry first (`mark`)."""

    snapshot: RegistrySnapshot
    #: `registry_mark` as it must be once the ingest has committed for `snapshot` to stand.
    mark: RegistryMark


def delivered_snapshot(
    current: pa.Table, uncached: pa.Table, identities: Identities
) -> DeliveredSnapshot:
    """The records as read before or while an ingest writes, with what it adds and changes
    (`current_records(records, delivered)`; `uncached`: `records.uncached`), and the
    identities as read then. The two may come from two snapshots: if either missed a change,
    or another change lands before the ingest commits, the registry's mark will differ from
    the one returned."""
    snapshot = _snapshot(current, uncached, identities)
    current = snapshot.versions["version"]
    mark = RegistryMark(identities.changes, len(current), int(pc.sum(current).as_py() or 0))
    return DeliveredSnapshot(snapshot, mark)


def _active_identifiers(connection: Connection) -> pa.Table:
    """The active CCIs (IDENTIFIER_SCHEMA): read as text, whose times Arrow parses (as
    PriorIdentifier objects they took 1.5 s of a re-run's 3.9 s snapshot of 1M records)."""
    query = select(
        Identifier.cci, Identifier.created_at, cast(Identifier.nhs_anchored, Integer)
    ).where(Identifier.status == "active")
    read = _arrow_rows(connection, query, _IDENTIFIER_READ_SCHEMA, plain=["cci", "created_at"])
    created = read["created_at"]
    if connection.dialect.name == "sqlite":  # SQLite keeps no zone: everything written is UTC
        created = created.cast(pa.timestamp("us"))
    columns = [
        read["cci"],
        created.cast(IDENTIFIER_SCHEMA.field("created_at").type),
        pc.not_equal(read["nhs_anchored"], 0),
    ]
    return pa.table(columns, schema=IDENTIFIER_SCHEMA)


def first_load_snapshot(load: PlannedLoad) -> RegistrySnapshot:
    """What `load_snapshot` reads once a first load (`ingest_files(planned=...)`) has
    committed and before anything else happened to the registry: its records, each at its
    current version, and nothing else (no CCIs, decisions or kept pairs yet)."""
    versions = load.versions
    return RegistrySnapshot(
        records=versions.select(SNAPSHOT_SCHEMA.names).cast(SNAPSHOT_SCHEMA),
        versions=versions.select(VERSION_SCHEMA.names).cast(VERSION_SCHEMA),
        event_mark=load.event_mark,
    )


def load_scored_state(connection: Connection) -> ScoredState | None:
    """The pairs kept by earlier runs, if they all came from one model version and the last
    succeeded run says at which review weight (else None: the next run scores everything)."""
    summary = connection.scalar(
        select(LinkageRun.summary)
        .where(LinkageRun.status == "succeeded")
        .order_by(LinkageRun.id.desc())
        .limit(1)
    )
    review_weight = (summary or {}).get("review_weight")
    if review_weight is None:
        return None
    kept = kept_pairs(connection)
    if kept is None:
        return None
    model_version, pairs, versions = kept
    return ScoredState(model_version, float(review_weight), pairs, versions)


def _superseded_members(connection: Connection) -> dict[str, tuple[str, frozenset[int]]]:
    """Each superseded CCI -> (the active CCI it now resolves to, the records it held)."""
    successor: dict[str, str] = {
        cci: after
        for cci, after in connection.execute(
            select(Identifier.cci, Identifier.successor_cci).where(
                Identifier.status == "superseded"
            )
        )
        if after is not None
    }
    if not successor:
        return {}
    members: dict[str, set[int]] = {}
    for record_pk, cci in connection.execute(
        select(Assignment.record_pk, Assignment.cci).where(Assignment.cci.in_(successor))
    ):
        members.setdefault(cci, set()).add(record_pk)

    def resolve(cci: str) -> str:
        seen: set[str] = set()
        while cci in successor and cci not in seen:
            seen.add(cci)
            cci = successor[cci]
        return cci

    return {cci: (resolve(cci), frozenset(members.get(cci, ()))) for cci in successor}


def freeze_snapshot_frequencies(
    engine: Engine, version: int, columns: Sequence[str], records: pa.Table
) -> TermFrequencyTables:
    """The model version's frozen term-frequency tables (`linkage.store.term_frequencies`),
    counted from the run's snapshot when none are frozen yet."""
    return freeze_frequencies(
        engine, version, columns, count=lambda: count_frequencies(records, columns)
    )


def start_run(connection: Connection, model_version: int | None) -> int:
    run_id = connection.scalar(
        insert(LinkageRun)
        .values(status="running", model_version=model_version, started_at=utcnow())
        .returning(LinkageRun.id)
    )
    assert run_id is not None
    return int(run_id)


def apply_outcome(
    connection: Connection, run_id: int, outcome: RunOutcome, *, since: int | None = None
) -> None:
    """Write identifiers, assignments, events, review items, kept pairs and the run summary
    (one transaction). Rows go through the DB-API (COPY on PostgreSQL): SQLAlchemy's
    executemany of dictionaries cost more than the rest of a run's writing.

    `since` is the snapshot's event mark: records that changed after it (the service kept
    answering while the run scored) are reconciled with the run's result, see `_carry_over`."""
    with ThreadPoolExecutor(1, thread_name_prefix="cci-keep-pairs") as pool:
        # Encoded (C++, no GIL) while the rows below go in.
        scored = outcome.scored
        kept = pool.submit(pair_blocks, scored.pairs, scored.versions)
        _apply_outcome(connection, run_id, outcome, since)
        keep_pairs(connection, scored.model_version, kept.result())
        connection.execute(
            update(LinkageRun)
            .where(LinkageRun.id == run_id)
            .values(status="succeeded", summary=outcome.stats, finished_at=utcnow())
        )


def _apply_outcome(
    connection: Connection, run_id: int, outcome: RunOutcome, since: int | None
) -> None:
    now = utcnow()
    stamp = stored_timestamp(connection.dialect, now)
    plan = outcome.plan
    # Held from here to commit: real-time submissions, withdrawals and decisions wait, so none
    # lands between reading what changed since the snapshot and writing the run's result.
    hold_event_order(connection)
    touched = _records_changed_since(connection, since) if since is not None else set()
    held = _current_ccis(connection, touched)
    anchored = {
        cci: flag for cci, flag in zip(plan.cci_of_cluster, outcome.nhs_anchored, strict=True)
    }
    # Records that had no CCI (all of them on a first run): their events repeat their new
    # assignment rows, so the database copies them (1M records: 0.2 s, against 1.5 s for the
    # rows sent one by one). They come last in the plan's events, in the assignments' order.
    copied = all(before is None for before, _ in plan.reassigned.values())
    # On SQLite, when CCIs are only created (a first run), their `created` events are copied
    # from the identifier rows too, in the rows' (CCI) order: 580,000 cost 0.5 s sent.
    created_copied = (
        copied
        and connection.dialect.name == "sqlite"
        and all(e.type == "created" for e in plan.identifier_events)
    )
    last_identifier = (
        connection.exec_driver_sql("SELECT max(rowid) FROM identifiers").scalar() or 0
        if created_copied
        else 0
    )
    bulk_insert(
        connection,
        "identifiers",
        ("cci", "nhs_anchored"),
        [(c, anchored[c]) for c in sorted(plan.created)],  # in B-tree order
        constants={"status": "active", "created_at": stamp, "changed_at": stamp},
    )
    driver_executemany(
        connection,
        "UPDATE identifiers SET status = 'active', successor_cci = NULL, nhs_anchored = ?, "
        "changed_at = ? WHERE cci = ?",
        [(anchored[c], stamp, c) for c in plan.reinstated]
        + [(anchored[c], stamp, c) for c in outcome.anchoring_changed],
    )
    driver_executemany(
        connection,
        "UPDATE identifiers SET status = 'superseded', successor_cci = ?, changed_at = ? "
        "WHERE cci = ?",
        [(new, stamp, old) for old, new in plan.superseded.items()],
    )
    driver_executemany(
        connection,
        "UPDATE identifiers SET status = 'retired', changed_at = ? WHERE cci = ?",
        [(stamp, c) for c in plan.retired],
    )
    driver_executemany(
        connection,
        _END_ASSIGNMENT,
        [
            (stamp, r)
            for r, (before, _) in plan.reassigned.items()
            if before is not None or r in held  # assigned in real time after the snapshot
        ],
    )
    # A first run writes a row per record into each: building their indexes (and on
    # PostgreSQL checking their foreign keys) once costs less than row by row, as in ingest.
    assignments, events = _table(Assignment), _table(Event)
    deferred = [
        (DeferredIndexes(assignments), len(plan.reassigned)),
        (DeferredIndexes(events), len(plan.identifier_events) + len(plan.reassigned)),
        (DeferredForeignKeys(assignments), len(plan.reassigned)),
    ]
    for upkeep, rows in deferred:
        upkeep.before_insert(connection, rows)
    last_assignment = (connection.scalar(select(func.max(Assignment.id))) or 0) if copied else 0
    bulk_insert(
        connection,
        "assignments",
        ("record_pk", "cci"),
        [(r, after) for r, (_, after) in plan.reassigned.items()],
        constants={"run_id": run_id, "method": "auto", "assigned_at": stamp},
    )
    if created_copied:
        connection.exec_driver_sql(
            "INSERT INTO events (type, cci, run_id, created_at) SELECT 'created', cci, ?, "
            "created_at FROM identifiers WHERE rowid > ? ORDER BY rowid",
            (run_id, last_identifier),
        )
    else:
        sent = plan.identifier_events if copied else plan.events
        bulk_insert(
            connection,
            "events",
            ("type", "cci", "related_cci", "record_pk"),
            [(e.type, e.cci, e.related_cci, e.record) for e in sent],
            constants={"run_id": run_id, "created_at": stamp},
        )
    if copied and plan.reassigned:
        _copy_first_assignment_events(connection, run_id, after=last_assignment)
    open_items = _open_review_items(connection)
    fresh = _new_review_pairs(outcome, open_items)
    with _explaining(outcome, [(p.record_l, p.record_r) for p in fresh]) as explained:
        for upkeep, _ in deferred:
            upkeep.restore(connection)
        if touched:
            _carry_over(connection, run_id, touched, held, stamp)
        explained()
    _replace_review_items(connection, run_id, outcome, open_items, fresh, now)


def _copy_first_assignment_events(connection: Connection, run_id: int, *, after: int) -> None:
    """A `reassigned` event (from no CCI) for each assignment this run made after the
    assignment `after`, in their order."""
    assigned = (
        select(
            literal("reassigned"),
            Assignment.cci,
            Assignment.record_pk,
            Assignment.run_id,
            Assignment.assigned_at,
        )
        .where(Assignment.run_id == run_id, Assignment.id > after)
        .order_by(Assignment.id)
    )
    columns = ["type", "cci", "record_pk", "run_id", "created_at"]
    connection.execute(insert(Event).from_select(columns, assigned))


def _records_changed_since(connection: Connection, mark: int) -> set[int]:
    """Records that real-time submissions, withdrawals or decisions touched after the mark
    (each such change writes an event naming its record)."""
    query = select(Event.record_pk).where(Event.cursor > mark, Event.record_pk.is_not(None))
    return {int(pk) for pk in connection.scalars(query) if pk is not None}


def _chunks(pks: set[int], size: int = 500) -> Iterator[list[int]]:
    """Record keys in slices small enough for an IN list on every database."""
    ordered = sorted(pks)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _current_ccis(connection: Connection, records: set[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for chunk in _chunks(records):
        query = select(Assignment.record_pk, Assignment.cci).where(
            Assignment.record_pk.in_(chunk), Assignment.ended_at.is_(None)
        )
        found.update(connection.execute(query).all())
    return found


def _carry_over(
    connection: Connection, run_id: int, touched: set[int], held: dict[int, str], stamp: Any
) -> None:
    """Keep the registry's invariants for the records `touched` while the run was scoring
    (`held`: the CCIs of those that had one just before the run wrote):
    - a withdrawn record carries no CCI, even if the run placed it;
    - a record left on a CCI the run superseded moves to the end of its successor chain;
    - a CCI the run retired that still holds such a record is active again;
    - a CCI given in real time that the run emptied (it placed the record elsewhere) is
      superseded by where its record went, so the agency's copy still resolves.
    The next run scores these records like any other change."""
    withdrawn = {
        int(pk)
        for chunk in _chunks(touched)
        for pk in connection.scalars(
            select(Record.id).where(Record.id.in_(chunk), Record.status == "withdrawn")
        )
    }
    current = _current_ccis(connection, touched)
    ended = sorted(withdrawn & set(current))
    driver_executemany(connection, _END_ASSIGNMENT, [(stamp, r) for r in ended])
    current = {r: c for r, c in current.items() if r not in withdrawn}
    state = _states(connection, set(current.values()) | set(held.values()))
    events: list[tuple[Any, ...]] = []
    revived = sorted({c for c in current.values() if state[c][0] == "retired"})
    driver_executemany(
        connection,
        "UPDATE identifiers SET status = 'active', changed_at = ? WHERE cci = ?",
        [(stamp, cci) for cci in revived],
    )
    events += [("reinstated", cci, None, None, run_id, stamp) for cci in revived]
    moves = [
        (r, cci, follow_successors(connection, cci, *state[cci])[0])
        for r, cci in sorted(current.items())
        if state[cci][0] == "superseded"
    ]
    driver_executemany(connection, _END_ASSIGNMENT, [(stamp, r) for r, _, _ in moves])
    driver_executemany(
        connection,
        "INSERT INTO assignments (record_pk, cci, run_id, method, assigned_at) "
        "VALUES (?, ?, ?, 'auto', ?)",
        [(r, after, run_id, stamp) for r, _, after in moves],
    )
    events += [("reassigned", after, before, r, run_id, stamp) for r, before, after in moves]
    current.update((r, after) for r, _, after in moves)
    emptied = {c for c in set(held.values()) - set(current.values()) if state[c][0] == "active"}
    still_held = set(
        connection.scalars(
            select(Assignment.cci)
            .where(Assignment.cci.in_(emptied), Assignment.ended_at.is_(None))
            .distinct()
        )
    )
    for cci in sorted(emptied - still_held):
        went = sorted(current[r] for r, c in held.items() if c == cci and r in current)
        if went:
            driver_executemany(
                connection,
                "UPDATE identifiers SET status = 'superseded', successor_cci = ?, changed_at = ? "
                "WHERE cci = ?",
                [(went[0], stamp, cci)],
            )
            events.append(("superseded", cci, went[0], None, run_id, stamp))
        else:
            driver_executemany(
                connection,
                "UPDATE identifiers SET status = 'retired', changed_at = ? WHERE cci = ?",
                [(stamp, cci)],
            )
            events.append(("retired", cci, None, None, run_id, stamp))
    driver_executemany(
        connection,
        "INSERT INTO events (type, cci, related_cci, record_pk, run_id, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        events,
    )


def _states(connection: Connection, ccis: set[str]) -> dict[str, tuple[str, str | None]]:
    """Each CCI's status and successor."""
    query = select(Identifier.cci, Identifier.status, Identifier.successor_cci).where(
        Identifier.cci.in_(sorted(ccis))
    )
    return {cci: (status, successor) for cci, status, successor in connection.execute(query)}


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def explain_ahead(
    outcome: RunOutcome,
    pairs: Sequence[tuple[int, int]] | None = None,
    *,
    until: Callable[[], bool] | None = None,
) -> None:
    """Work out the explanations, as stored, of these review pairs (default: all of the
    run's) that are not worked out yet (1M records, 45,000 pairs: about 2.3 s), a slice at a
    time until `until()` says to stop. A run that must wait before it writes (a first load
    still being written) spends the wait on them; the write works out the rest of those its
    new items need while the database builds its indexes."""
    if pairs is None:
        pairs = [(p.record_l, p.record_r) for p in outcome.review]
    pairs = [pair for pair in pairs if pair not in outcome.explained]
    for start in range(0, len(pairs), EXPLAIN_SLICE):
        if until is not None and until():
            return
        part = pairs[start : start + EXPLAIN_SLICE]
        outcome.explained.update(zip(part, map(json.dumps, outcome.explain(part)), strict=True))


@contextmanager
def _explaining(outcome: RunOutcome, pairs: list[tuple[int, int]]) -> Iterator[Callable[[], None]]:
    """Work out the explanations still missing on a second thread while the block runs (the
    write's index builds, which hold no GIL: a thread beside the row inserts would slow each
    of them by waiting for the GIL). Yields `wait`, which returns once they are all worked
    out and raises what stopped the thread, if anything."""
    with ThreadPoolExecutor(1, thread_name_prefix="cci-explain") as pool:
        done = pool.submit(explain_ahead, outcome, pairs)
        yield done.result


def _explanation_texts(outcome: RunOutcome, pairs: list[tuple[int, int]]) -> list[str]:
    """The JSON text of each pair's explanation: worked out ahead, or now."""
    missing = [pair for pair in pairs if pair not in outcome.explained]
    now = dict(zip(missing, map(json.dumps, outcome.explain(missing)), strict=True))
    return [outcome.explained.get(pair) or now[pair] for pair in pairs]


def _open_review_items(connection: Connection) -> dict[frozenset[int], int]:
    """The open review items' ids by their pair of records."""
    return {
        frozenset((left, right)): item_id
        for item_id, left, right in connection.execute(
            select(ReviewItem.id, ReviewItem.record_pk_l, ReviewItem.record_pk_r).where(
                ReviewItem.status == "open"
            )
        )
    }


def _new_review_pairs(
    outcome: RunOutcome, open_items: dict[frozenset[int], int]
) -> list[ReviewPair]:
    """The run's review pairs that no open item (`_open_review_items`) holds, each once."""
    wanted = {frozenset((p.record_l, p.record_r)): p for p in outcome.review}
    return [p for pair, p in wanted.items() if pair not in open_items]


def _replace_review_items(
    connection: Connection,
    run_id: int,
    outcome: RunOutcome,
    open_items: dict[frozenset[int], int],
    fresh: list[ReviewPair],
    now: datetime,
) -> None:
    """Open items for the run's new review pairs (`fresh`); open items no longer in the
    band become obsolete."""
    wanted = {frozenset((p.record_l, p.record_r)) for p in outcome.review}
    stale = [{"key": item_id} for pair, item_id in open_items.items() if pair not in wanted]
    if stale:
        connection.execute(
            update(ReviewItem)
            .where(ReviewItem.id == bindparam("key"))
            .values(status="obsolete", decided_at=now),
            stale,
        )
    explanations = _explanation_texts(outcome, [(p.record_l, p.record_r) for p in fresh])
    # Through the DB-API, the explanation as the JSON text SQLAlchemy's JSON type would
    # store: a first run opens tens of thousands of items, and the ORM's insert of them
    # cost more than working out their explanations.
    stamp = stored_timestamp(connection.dialect, now)
    bulk_insert(
        connection,
        "review_items",
        _REVIEW_COLUMNS,
        [
            (
                p.record_l,
                p.record_r,
                run_id,
                p.match_weight,
                p.match_probability,
                p.reason,
                explanation,
                "open",
                stamp,
            )
            for p, explanation in zip(fresh, explanations, strict=True)
        ],
    )
