"""The event look-ups by related CCI (an identifier's history, an agency's feed) are index
searches, although the index of related CCIs leaves out the events that name none."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from linkage.lookups import events_after
from linkage.reviews import identifier_history
from linkage.store import make_engine, upgrade


def test_related_cci_look_ups_use_the_partial_index(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    sent: list[tuple[str, Any]] = []

    def record(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM events" in statement and "related_cci" in statement:
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    with engine.connect() as connection:
        identifier_history(connection, "K7QW2M9XR46", own_sources=[1])
        events_after(connection, 0, 100, [1])
    event.remove(engine, "before_cursor_execute", record)
    assert len(sent) == 2
    with engine.connect() as connection:
        driver: Any = connection.connection.driver_connection
        partial = {row[1]: row[4] for row in driver.execute("PRAGMA index_list(events)")}
        assert partial["ix_events_related_cci"] == 1
        for statement, parameters in sent:
            plan = " ".join(
                str(r[-1]) for r in driver.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
            assert "USING INDEX ix_events_related_cci (related_cci=?" in plan, plan
    engine.dispose()
