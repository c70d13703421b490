"""A run's snapshot of the registry's active CCIs: each one's creation time and NHS anchoring
as stored, whatever zone the database session shows times in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, text

from linkage.identity.assignment import PriorIdentifier, prior_identifiers
from linkage.store import write_transaction
from linkage.store.models import Identifier
from linkage.store.registry import load_snapshot

_EARLY = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # a whole second: no fraction in the text
_LATE = _EARLY + timedelta(days=200, microseconds=250)


def test_the_snapshot_holds_each_active_cci_as_stored(migrated_engine: Engine) -> None:
    rows = [
        ("AAAAAAAAAAAA", "active", True, _EARLY),
        ("BBBBBBBBBBBB", "active", False, _LATE),
        ("CCCCCCCCCCCC", "active", False, _EARLY),
        ("DDDDDDDDDDDD", "retired", True, _EARLY),
    ]
    with write_transaction(migrated_engine) as connection:
        connection.execute(
            insert(Identifier),
            [
                {"cci": c, "status": s, "nhs_anchored": a, "created_at": t, "changed_at": t}
                for c, s, a, t in rows
            ],
        )
    with migrated_engine.connect() as connection:
        if connection.dialect.name == "postgresql":  # times come back in the session's zone
            connection.execute(text("SET TIME ZONE 'Asia/Kolkata'"))
        snapshot = load_snapshot(connection)

    assert prior_identifiers(snapshot.identifiers) == {
        "AAAAAAAAAAAA": PriorIdentifier("AAAAAAAAAAAA", _EARLY, True),
        "BBBBBBBBBBBB": PriorIdentifier("BBBBBBBBBBBB", _LATE, False),
        "CCCCCCCCCCCC": PriorIdentifier("CCCCCCCCCCCC", _EARLY, False),
    }
    assert list(prior_identifiers(snapshot.identifiers, {"BBBBBBBBBBBB", "ZZZ"})) == [
        "BBBBBBBBBBBB"
    ]
