"""Reading and withdrawing what the registry knows about a record or a CCI.

What an agency may see is decided by the caller (the service checks scopes); these functions
only ever return another agency's source-system code, never its records' encodings, and skip
restricted records of other source systems.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from linkage.store.database import hold_event_order
from linkage.store.identifiers import follow_successors
from linkage.store.models import (
    Assignment,
    Event,
    Identifier,
    Record,
    SourceSystem,
    record_versions,
    utcnow,
)


@dataclass(frozen=True)
class RecordStatus:
    source_system: str
    record_id: str
    status: str  # active | withdrawn
    restricted: bool
    cci: str | None
    version: int
    updated_at: datetime


@dataclass(frozen=True)
class IdentifierStatus:
    cci: str
    status: str  # active | superseded | retired
    #: The active CCI this one resolves to (itself when active; None when retired).
    resolved_cci: str | None
    successor_cci: str | None
    nhs_anchored: bool
    created_at: datetime
    changed_at: datetime


def record_status(connection: Connection, source_id: int, record_id: str) -> RecordStatus | None:
    row = connection.execute(
        select(
            SourceSystem.code,
            Record.record_id,
            Record.status,
            Record.restricted,
            Record.current_version,
            Record.updated_at,
            Assignment.cci,
        )
        .join(SourceSystem, SourceSystem.id == Record.source_system_id)
        .outerjoin(
            Assignment, and_(Assignment.record_pk == Record.id, Assignment.ended_at.is_(None))
        )
        .where(Record.source_system_id == source_id, Record.record_id == record_id)
    ).first()
    if row is None:
        return None
    return RecordStatus(
        row.code,
        row.record_id,
        row.status,
        bool(row.restricted),
        row.cci,
        row.current_version,
        row.updated_at,
    )


def identifier_status(connection: Connection, cci: str) -> IdentifierStatus | None:
    row = connection.execute(select(Identifier).where(Identifier.cci == cci)).first()
    if row is None:
        return None
    end, status = follow_successors(connection, row.cci, row.status, row.successor_cci)
    return IdentifierStatus(
        row.cci,
        row.status,
        end if status == "active" else None,
        row.successor_cci,
        bool(row.nhs_anchored),
        row.created_at,
        row.changed_at,
    )


def holders(connection: Connection, cci: str, caller_sources: Collection[int]) -> list[str]:
    """Source systems holding active records of the CCI's cluster; another agency's restricted
    records are left out (a source's own restricted records are its own business)."""
    query = (
        select(SourceSystem.code)
        .distinct()
        .join(Record, Record.source_system_id == SourceSystem.id)
        .join(Assignment, and_(Assignment.record_pk == Record.id, Assignment.ended_at.is_(None)))
        .where(
            Assignment.cci == cci,
            Record.status == "active",
            or_(Record.restricted.is_(False), Record.source_system_id.in_(caller_sources)),
        )
        .order_by(SourceSystem.code)
    )
    return list(connection.scalars(query))


def health_nhs_ciphertexts(connection: Connection, cci: str) -> list[str]:
    """The cluster's health-verified NHS number(s), as the pseudonymiser's ciphertext: an
    agency holding the linkage key decrypts it with `cci reveal`. Normally one."""
    v = record_versions.c
    query = (
        select(v.nhs_number_enc)
        .distinct()
        .join(Record, and_(Record.id == v.record_pk, Record.current_version == v.version))
        .join(SourceSystem, SourceSystem.id == Record.source_system_id)
        .join(Assignment, and_(Assignment.record_pk == Record.id, Assignment.ended_at.is_(None)))
        .where(
            Assignment.cci == cci,
            Record.status == "active",
            SourceSystem.kind == "health",
            v.nhs_number_enc.is_not(None),
        )
        .order_by(v.nhs_number_enc)
    )
    return list(connection.scalars(query))


def withdraw_record(connection: Connection, source_id: int, record_id: str) -> RecordStatus | None:
    """Take a record out of linkage (retention ended, erasure): it leaves its cluster, the
    change is an event, and a CCI left with no active record is retired. Its stored versions
    stay for the audit trail until the retention job removes them. Idempotent."""
    hold_event_order(connection)  # first: the CCI read next stays current until commit
    found = record_status(connection, source_id, record_id)
    if found is None or found.status == "withdrawn":
        return found
    pk = connection.scalar(
        select(Record.id).where(Record.source_system_id == source_id, Record.record_id == record_id)
    )
    now = utcnow()
    connection.execute(
        update(Record).where(Record.id == pk).values(status="withdrawn", updated_at=now)
    )
    if found.cci is not None:
        connection.execute(
            update(Assignment)
            .where(Assignment.record_pk == pk, Assignment.ended_at.is_(None))
            .values(ended_at=now)
        )
        connection.execute(
            insert(Event).values(type="withdrawn", cci=found.cci, record_pk=pk, created_at=now)
        )
        left = connection.scalar(
            select(func.count())
            .select_from(Assignment)
            .join(Record, Record.id == Assignment.record_pk)
            .where(
                Assignment.cci == found.cci,
                Assignment.ended_at.is_(None),
                Record.status == "active",
            )
        )
        if not left:
            connection.execute(
                update(Identifier)
                .where(Identifier.cci == found.cci, Identifier.status == "active")
                .values(status="retired", changed_at=now)
            )
            connection.execute(insert(Event).values(type="retired", cci=found.cci, created_at=now))
    return record_status(connection, source_id, record_id)


@dataclass(frozen=True)
class FeedEvent:
    cursor: int
    type: str
    cci: str
    related_cci: str | None
    #: (source_system, record_id) when the event is about one of the caller's own records.
    record: tuple[str, str] | None
    at: datetime
    detail: dict[str, Any] | None


def events_after(
    connection: Connection, after: int, limit: int, source_ids: Collection[int] | None
) -> list[FeedEvent]:
    """Identifier changes in cursor order. With `source_ids`, only events about CCIs that the
    caller's records carry or carried (record details only for its own records)."""
    query = select(Event).where(Event.cursor > after).order_by(Event.cursor).limit(limit)
    if source_ids is not None:
        theirs = (
            select(Assignment.cci)
            .join(Record, Record.id == Assignment.record_pk)
            .where(Record.source_system_id.in_(source_ids))
        )
        query = query.where(or_(Event.cci.in_(theirs), Event.related_cci.in_(theirs)))
    events = connection.execute(query).all()
    pks = {e.record_pk for e in events if e.record_pk is not None}
    own: dict[int, tuple[str, str]] = {}
    if pks:
        rows = connection.execute(
            select(Record.id, SourceSystem.code, Record.record_id, Record.source_system_id)
            .join(SourceSystem, SourceSystem.id == Record.source_system_id)
            .where(Record.id.in_(pks))
        )
        own = {
            pk: (code, record_id)
            for pk, code, record_id, source in rows
            if source_ids is None or source in source_ids
        }
    return [
        FeedEvent(
            e.cursor,
            e.type,
            e.cci,
            e.related_cci,
            own.get(e.record_pk) if e.record_pk is not None else None,
            e.created_at,
            e.detail,
        )
        for e in events
    ]
