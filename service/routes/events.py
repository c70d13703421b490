"""The change feed: identifier changes in cursor order, so agency copies stay current."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import Engine

from linkage.lookups import events_after
from linkage.store.audit import audit
from linkage.store.clients import Client
from linkage.store.database import write_transaction
from service.auth import require
from service.problems import PROBLEM_RESPONSES
from service.schemas import EventPage, FeedEvent
from service.settings import service_settings

router = APIRouter(prefix="/v1/events", tags=["events"], responses=PROBLEM_RESPONSES)


@router.get("", summary="Identifier changes after a cursor", response_model=EventPage)
def list_events(
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="last cursor you read")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="page size")] = 100,
    client: Client = require("read", "admin"),
) -> EventPage:
    """Events about CCIs your records carry or carried (all events with the admin scope):
    created, superseded (merged into `related_cci`), split (from `related_cci`), reinstated,
    retired, reassigned (a record moved to `cci` from `related_cci`) and withdrawn. Read on
    from `next_cursor`; cursors only grow, in commit order."""
    engine: Engine = request.app.state.engine
    scope = None if "admin" in client.scopes else client.sources.values()
    with write_transaction(engine) as connection:
        found = events_after(connection, after, min(limit, service_settings().max_feed_page), scope)
        if found:  # the feed discloses CCIs: each page read is audited
            audit(
                connection,
                client.actor,
                "read_events",
                None,
                {"after": after, "events": len(found), "last": found[-1].cursor},
            )
    events = [
        FeedEvent(
            cursor=e.cursor,
            type=e.type,  # type: ignore[arg-type]
            cci=e.cci,
            related_cci=e.related_cci,
            source_system=e.record[0] if e.record else None,
            record_id=e.record[1] if e.record else None,
            at=e.at,
        )
        for e in found
    ]
    return EventPage(events=events, next_cursor=events[-1].cursor if events else after)
