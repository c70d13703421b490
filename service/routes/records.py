"""Records: submit one and get its CCI in real time, look one up, withdraw one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from linkage.lookups import RecordStatus, record_status, withdraw_record
from linkage.match import Matcher
from linkage.store.audit import audit
from linkage.store.clients import Client
from linkage.store.database import write_transaction
from service.auth import require, source_id
from service.problems import PROBLEM_RESPONSES, Problem, responses
from service.schemas import MatchResult, PseudonymisedRecord, RecordView

router = APIRouter(prefix="/v1/records", tags=["records"], responses=PROBLEM_RESPONSES)

SourcePath = Annotated[str, Path(max_length=64, description="your source system code")]
RecordPath = Annotated[str, Path(max_length=128, description="the record's key in your system")]


def _view(status: RecordStatus) -> RecordView:
    return RecordView(
        source_system=status.source_system,
        record_id=status.record_id,
        status=status.status,  # type: ignore[arg-type]
        restricted=status.restricted,
        cci=status.cci if status.status == "active" else None,
        version=status.version,
        updated_at=status.updated_at,
    )


def _as_stored(record: Any) -> dict[str, Any]:
    values: dict[str, Any] = record.model_dump()
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = " ".join(str(token) for token in value) or None
    return values


@router.post(
    "",
    summary="Submit one pseudonymised record; get the child's CCI in real time",
    response_model=MatchResult,
    responses=responses(503),
)
async def submit_record(
    request: Request,
    record: Annotated[PseudonymisedRecord, Body()],  # type: ignore[valid-type]
    client: Client = require("submit"),
) -> MatchResult:
    """Stores the record (a new version if it changed), finds its candidates with the model's
    blocking rules, scores them with the active model and links the record to the best CCI at
    or above the auto-link threshold, or gives it a new one. Idempotent for unchanged records."""
    # A coroutine that hands only the matching to the threadpool: for a plain function FastAPI
    # also validates the response in the threadpool, a second thread hop per submission.
    source_id(client, record.source_system)
    matcher: Matcher = request.app.state.matcher
    match = await run_in_threadpool(matcher.submit, _as_stored(record), actor=client.actor)
    return MatchResult(**match.__dict__)


@router.get(
    "/{source_system}/{record_id}",
    summary="Look up one of your records: its CCI and status",
    response_model=RecordView,
)
def get_record(
    request: Request,
    source_system: SourcePath,
    record_id: RecordPath,
    client: Client = require("read"),
) -> RecordView:
    source = source_id(client, source_system)
    engine: Engine = request.app.state.engine
    with write_transaction(engine) as connection:
        found = record_status(connection, source, record_id)
        if found is None:
            raise Problem(404, "no such record", kind="not-found")
        audit(
            connection,
            client.actor,
            "read_record",
            f"{source_system}/{record_id}",
            {"cci": found.cci},
        )
    return _view(found)


@router.delete(
    "/{source_system}/{record_id}",
    summary="Withdraw one of your records (retention ended, erasure)",
    response_model=RecordView,
)
def delete_record(
    request: Request,
    source_system: SourcePath,
    record_id: RecordPath,
    client: Client = require("submit"),
) -> RecordView:
    """The record leaves its cluster (an event); a CCI left with no records is retired.
    Withdrawing again answers the same."""
    source = source_id(client, source_system)
    engine: Engine = request.app.state.engine
    with write_transaction(engine) as connection:
        found = withdraw_record(connection, source, record_id)
        if found is None:
            raise Problem(404, "no such record", kind="not-found")
        audit(connection, client.actor, "withdraw_record", f"{source_system}/{record_id}")
    return _view(found)
