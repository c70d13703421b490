"""Source systems: registered agency systems, each of one kind (health, education, ...)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, func, insert, select, update

from linkage.contract import SOURCE_KINDS
from linkage.errors import CCIError
from linkage.store.models import Record, SourceSystem, utcnow


def kind_from_code(code: str) -> str:
    """`health`, `health_leeds_gp`, ... -> health; unknown prefixes -> other."""
    for kind in SOURCE_KINDS:
        if code.startswith(kind):
            return kind
    return "other"


def source_ids(connection: Connection, codes: Iterable[str]) -> dict[str, int]:
    """Ids of the given codes, registering unknown ones with the kind their code suggests."""
    wanted = set(codes)
    found = dict(
        connection.execute(
            select(SourceSystem.code, SourceSystem.id).where(SourceSystem.code.in_(wanted))
        ).all()
    )
    missing = sorted(wanted - found.keys())
    if missing:
        connection.execute(
            insert(SourceSystem),
            [{"code": c, "kind": kind_from_code(c), "created_at": utcnow()} for c in missing],
        )
        found.update(
            connection.execute(
                select(SourceSystem.code, SourceSystem.id).where(SourceSystem.code.in_(missing))
            ).all()
        )
    return found


def add_source(connection: Connection, code: str, kind: str) -> bool:
    """Register `code` as `kind` (or change its kind). Returns True when newly added."""
    if kind not in SOURCE_KINDS:
        raise CCIError(f"unknown kind {kind!r}; choose one of {', '.join(SOURCE_KINDS)}")
    existing = connection.scalar(select(SourceSystem.id).where(SourceSystem.code == code))
    if existing is None:
        connection.execute(
            insert(SourceSystem), [{"code": code, "kind": kind, "created_at": utcnow()}]
        )
        return True
    connection.execute(update(SourceSystem).where(SourceSystem.id == existing).values(kind=kind))
    return False


def list_sources(connection: Connection) -> list[tuple[str, str, int]]:
    """(code, kind, number of active records) for every source system."""
    rows = connection.execute(
        select(SourceSystem.code, SourceSystem.kind, func.count(Record.id))
        .outerjoin(
            Record, (Record.source_system_id == SourceSystem.id) & (Record.status == "active")
        )
        .group_by(SourceSystem.code, SourceSystem.kind)
        .order_by(SourceSystem.code)
    ).all()
    return [(code, kind, count) for code, kind, count in rows]
