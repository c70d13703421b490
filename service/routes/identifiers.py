"""Identifiers: a CCI's status, who holds records for it, its NHS number (as ciphertext)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from sqlalchemy import Engine, and_, select

from linkage.identity.cci import normalise_cci
from linkage.lookups import health_nhs_ciphertexts, holders, identifier_status
from linkage.store.audit import audit
from linkage.store.clients import Client
from linkage.store.database import write_transaction
from linkage.store.models import Assignment, Record
from service.auth import require
from service.problems import PROBLEM_RESPONSES, Problem
from service.schemas import IdentifierView

router = APIRouter(prefix="/v1/identifiers", tags=["identifiers"], responses=PROBLEM_RESPONSES)

CciPath = Annotated[str, Path(max_length=32, description="a CCI (any case, spaces ignored)")]


@router.get(
    "/{cci}",
    summary="A CCI's status; a superseded CCI answers with its successor",
    response_model=IdentifierView,
)
def get_identifier(
    request: Request, cci: CciPath, client: Client = require("read", "resolve", "trace")
) -> IdentifierView:
    """With only the read scope, a CCI answers if one of your records carries (or carried) it.
    The resolve scope adds the source systems holding the child's records (never another
    agency's restricted records); the trace scope adds the health-verified NHS number as
    ciphertext. Every call is audited."""
    wanted = normalise_cci(cci)
    if wanted is None:
        raise Problem(404, "not a valid CCI (check character)", kind="not-found")
    engine: Engine = request.app.state.engine
    with write_transaction(engine) as connection:
        status = identifier_status(connection, wanted)
        if status is not None and not client.scopes & {"resolve", "trace"}:
            own = connection.scalar(
                select(Assignment.id)
                .join(Record, Record.id == Assignment.record_pk)
                .where(
                    and_(
                        Assignment.cci.in_({wanted, status.resolved_cci or wanted}),
                        Record.source_system_id.in_(client.sources.values()),
                    )
                )
                .limit(1)
            )
            if own is None:
                status = None
        if status is None:
            raise Problem(404, "no such CCI among those you may read", kind="not-found")
        view = IdentifierView(**status.__dict__)
        live = status.resolved_cci
        if "resolve" in client.scopes and live:
            view.source_systems = holders(connection, live, client.sources.values())
        if "trace" in client.scopes and live:
            view.nhs_number_enc = health_nhs_ciphertexts(connection, live)
        audit(
            connection,
            client.actor,
            "read_identifier",
            wanted,
            {
                "resolved": live,
                "resolve": view.source_systems is not None,
                "trace": view.nhs_number_enc is not None,
            },
        )
    return view
