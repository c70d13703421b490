"""Following a CCI through the merges that superseded it (one place for the chain walk)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from linkage.store.models import Identifier

#: How far a chain of superseded CCIs is followed (merges of merges) before giving up.
MAX_SUCCESSION = 64


def follow_successors(
    connection: Connection, cci: str, status: str, successor: str | None
) -> tuple[str, str]:
    """Where a CCI with this `status` and `successor` now resolves: the CCI at the end of its
    chain of merges, and that CCI's status (`active` unless the chain ends retired or is longer
    than MAX_SUCCESSION)."""
    for _ in range(MAX_SUCCESSION):
        if status != "superseded" or successor is None:
            break
        cci = successor
        status, successor = connection.execute(
            select(Identifier.status, Identifier.successor_cci).where(Identifier.cci == cci)
        ).one()
    return cci, status
