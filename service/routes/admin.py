"""Administration: start a linkage run, read run and model summaries (admin scope)."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import Engine, select

from linkage.link import link_registry, live_run
from linkage.store.audit import audit
from linkage.store.clients import Client
from linkage.store.database import write_transaction
from linkage.store.model_versions import list_models
from linkage.store.models import LinkageRun
from service.auth import require
from service.problems import PROBLEM_RESPONSES, Problem, responses

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=PROBLEM_RESPONSES)
log = logging.getLogger("cci.service")


class RunView(BaseModel):
    id: int
    status: str
    model_version: int | None
    started_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any] | None


class RunStarted(BaseModel):
    status: str = "started"
    detail: str


class ModelView(BaseModel):
    version: int
    active: bool
    created_at: str
    summary: dict[str, Any]


def _runs(engine: Engine, limit: int) -> list[RunView]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(LinkageRun).order_by(LinkageRun.id.desc()).limit(limit)
        ).all()
        return [
            RunView(
                id=r.id,
                status=r.status,
                model_version=r.model_version,
                started_at=r.started_at,
                finished_at=r.finished_at,
                summary=r.summary,
            )
            for r in rows
        ]


def _run_in_background(engine: Engine) -> None:
    try:
        report = link_registry(engine)
        log.info("linkage run %s finished", report.run_id)
    except Exception:
        log.exception("linkage run failed")


@router.post(
    "/runs",
    status_code=202,
    summary="Start a linkage run over the registry",
    response_model=RunStarted,
    responses=responses(409),
)
def start_run(request: Request, client: Client = require("admin")) -> RunStarted:
    """One run at a time: 409 while another live run is running (a run whose process died
    no longer counts). Follow it with GET /v1/admin/runs."""
    engine: Engine = request.app.state.engine
    with write_transaction(engine) as connection:
        running = live_run(connection)
        if running is not None:
            raise Problem(409, f"linkage run {running} is in progress", kind="run-in-progress")
        audit(connection, client.actor, "start_run")
    thread = threading.Thread(target=_run_in_background, args=(engine,), daemon=True)
    thread.start()
    request.app.state.run_threads.append(thread)
    return RunStarted(detail="the run has started; GET /v1/admin/runs shows its progress")


@router.get(
    "/runs", summary="Latest linkage runs with their summaries", response_model=list[RunView]
)
def get_runs(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    client: Client = require("admin"),
) -> list[RunView]:
    return _runs(request.app.state.engine, limit)


@router.get(
    "/models", summary="Model versions and their training summaries", response_model=list[ModelView]
)
def get_models(request: Request, client: Client = require("admin")) -> list[ModelView]:
    engine: Engine = request.app.state.engine
    with engine.connect() as connection:
        return [
            ModelView(version=v, active=a, created_at=c, summary=s)
            for v, a, c, s in list_models(connection)
        ]
