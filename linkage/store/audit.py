"""The audit log: who read or changed which child's identifier, and when (DESIGN.md, Access).

Written in the same transaction as what it records, so an audited action and its entry stand
or fall together.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert

from linkage.store.models import AuditEntry, utcnow


def audit(
    connection: Connection,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    connection.execute(
        insert(AuditEntry).values(
            actor=actor, action=action, target=target, detail=detail, at=utcnow()
        )
    )
