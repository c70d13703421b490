"""Reading the registry for a linkage run, and writing a run's outcome in one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, and_, bindparam, insert, select, update

from linkage.contract import COLUMN_TYPES, ENCODING_COLUMNS
from linkage.identity.assignment import PriorIdentifier
from linkage.run import RegistrySnapshot, RunOutcome
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
    utcnow,
)

FETCH_ROWS = 50_000
_ARROW = {"int64": pa.int64(), "int64_set": pa.string(), "text": pa.string(), "bool": pa.bool_()}
SNAPSHOT_SCHEMA = pa.schema(
    [("unique_id", pa.int64()), ("source_kind", pa.string()), ("sex", pa.string())]
    + [(c.name, _ARROW[COLUMN_TYPES[c.name]]) for c in ENCODING_COLUMNS]
)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def current_records(connection: Connection) -> Iterator[pa.RecordBatch]:
    """Current versions of active records, as Arrow batches of SNAPSHOT_SCHEMA."""
    v = record_versions.c
    query = (
        select(Record.id, SourceSystem.kind, v.sex, *(v[c.name] for c in ENCODING_COLUMNS))
        .join(SourceSystem, SourceSystem.id == Record.source_system_id)
        .join(record_versions, and_(v.record_pk == Record.id, v.version == Record.current_version))
        .where(Record.status == "active")
        .order_by(Record.id)
    )
    result = connection.execution_options(yield_per=FETCH_ROWS).execute(query)
    for rows in result.partitions():
        columns = list(zip(*rows, strict=True))
        yield pa.RecordBatch.from_arrays(
            [pa.array(col, type=f.type) for col, f in zip(columns, SNAPSHOT_SCHEMA, strict=True)],
            schema=SNAPSHOT_SCHEMA,
        )


def load_snapshot(connection: Connection) -> RegistrySnapshot:
    batches = list(current_records(connection))
    records = pa.Table.from_batches(batches, schema=SNAPSHOT_SCHEMA)
    prior = dict(
        connection.execute(
            select(Assignment.record_pk, Assignment.cci).where(Assignment.ended_at.is_(None))
        ).all()
    )
    identifiers = {
        cci: PriorIdentifier(cci, _aware(created), bool(anchored))
        for cci, created, anchored in connection.execute(
            select(Identifier.cci, Identifier.created_at, Identifier.nhs_anchored).where(
                Identifier.status == "active"
            )
        )
    }
    must, cannot = [], []
    for left, right, verdict in connection.execute(
        select(Decision.record_pk_l, Decision.record_pk_r, Decision.verdict).order_by(Decision.id)
    ):
        if verdict == "same":
            must.append((left, right))
        elif verdict == "different":
            cannot.append((left, right))
    return RegistrySnapshot(
        records=records,
        prior_cci=prior,
        identifiers=identifiers,
        members_when_superseded=_superseded_members(connection),
        must_link=must,
        cannot_link=cannot,
    )


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


def start_run(connection: Connection, model_version: int | None) -> int:
    run_id = connection.scalar(
        insert(LinkageRun)
        .values(status="running", model_version=model_version, started_at=utcnow())
        .returning(LinkageRun.id)
    )
    assert run_id is not None
    return int(run_id)


def apply_outcome(connection: Connection, run_id: int, outcome: RunOutcome) -> None:
    """Write identifiers, assignments, events, review items and the run summary (one txn)."""
    now = utcnow()
    plan = outcome.plan
    anchored = {
        cci: flag for cci, flag in zip(plan.cci_of_cluster, outcome.nhs_anchored, strict=True)
    }
    if plan.created:
        connection.execute(
            insert(Identifier),
            [
                {
                    "cci": c,
                    "status": "active",
                    "nhs_anchored": anchored[c],
                    "created_at": now,
                    "changed_at": now,
                }
                for c in plan.created
            ],
        )
    live = plan.kept + plan.reinstated
    if live:
        connection.execute(
            update(Identifier)
            .where(Identifier.cci == bindparam("key"))
            .values(
                status="active",
                successor_cci=None,
                nhs_anchored=bindparam("anchored"),
                changed_at=now,
            ),
            [{"key": c, "anchored": anchored[c]} for c in live],
        )
    if plan.superseded:
        connection.execute(
            update(Identifier)
            .where(Identifier.cci == bindparam("key"))
            .values(status="superseded", successor_cci=bindparam("successor"), changed_at=now),
            [{"key": old, "successor": new} for old, new in plan.superseded.items()],
        )
    if plan.retired:
        connection.execute(
            update(Identifier)
            .where(Identifier.cci == bindparam("key"))
            .values(status="retired", changed_at=now),
            [{"key": c} for c in plan.retired],
        )
    if plan.reassigned:
        ended = [{"key": r} for r, (before, _) in plan.reassigned.items() if before is not None]
        if ended:
            connection.execute(
                update(Assignment)
                .where(Assignment.record_pk == bindparam("key"), Assignment.ended_at.is_(None))
                .values(ended_at=now),
                ended,
            )
        connection.execute(
            insert(Assignment),
            [
                {
                    "record_pk": r,
                    "cci": after,
                    "run_id": run_id,
                    "method": "auto",
                    "assigned_at": now,
                }
                for r, (_, after) in plan.reassigned.items()
            ],
        )
    if plan.events:
        connection.execute(
            insert(Event),
            [
                {
                    "type": e.type,
                    "cci": e.cci,
                    "related_cci": e.related_cci,
                    "record_pk": e.record,
                    "run_id": run_id,
                    "created_at": now,
                }
                for e in plan.events
            ],
        )
    _replace_review_items(connection, run_id, outcome, now)
    connection.execute(
        update(LinkageRun)
        .where(LinkageRun.id == run_id)
        .values(status="succeeded", summary=outcome.stats, finished_at=now)
    )


def _replace_review_items(
    connection: Connection, run_id: int, outcome: RunOutcome, now: datetime
) -> None:
    """Open items for this run's review pairs; items no longer in the band become obsolete."""
    open_items = {
        frozenset((left, right)): item_id
        for item_id, left, right in connection.execute(
            select(ReviewItem.id, ReviewItem.record_pk_l, ReviewItem.record_pk_r).where(
                ReviewItem.status == "open"
            )
        )
    }
    wanted = {frozenset((p.record_l, p.record_r)): p for p in outcome.review}
    stale = [{"key": item_id} for pair, item_id in open_items.items() if pair not in wanted]
    if stale:
        connection.execute(
            update(ReviewItem)
            .where(ReviewItem.id == bindparam("key"))
            .values(status="obsolete", decided_at=now),
            stale,
        )
    fresh: list[dict[str, Any]] = [
        {
            "record_pk_l": p.record_l,
            "record_pk_r": p.record_r,
            "run_id": run_id,
            "match_weight": p.match_weight,
            "match_probability": p.match_probability,
            "reason": p.reason,
            "explanation": p.explanation,
            "status": "open",
            "created_at": now,
        }
        for pair, p in wanted.items()
        if pair not in open_items
    ]
    if fresh:
        connection.execute(insert(ReviewItem), fresh)
