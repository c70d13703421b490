"""The FastAPI application: agency systems call it to get and use a child's CCI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi.responses import Response
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from linkage.batches import BatchWorker
from linkage.match import Matcher, NoModelError
from linkage.settings import store_settings
from linkage.store.database import WalCheckpointer, make_engine
from service import pages, problems
from service.auth import ApiKeyMiddleware
from service.limits import BodyLimitMiddleware
from service.observability import MetricsMiddleware, configure_logging, metrics
from service.routes import admin, batches, events, identifiers, records, reviews
from service.schemas import Problem
from service.settings import service_settings

API_VERSION = "0.2.0"

DESCRIPTION = """\
Links pseudonymised records about the same child held by different agencies and gives each
child one stable identifier (CCI). The service never receives a name, NHS number or UPN in
clear: agencies send the output of the CCI pseudonymiser (`cci pseudonymise`).

**Authentication**: every `/v1` call carries an API key, as `Authorization: Bearer KEY` or
`X-API-Key: KEY`. Keys are bound to source systems and scopes (`submit`, `read`, `resolve`,
`trace`, `review`, `admin`); `cci clients create` makes one.

**Errors** are RFC 9457 problem details (`application/problem+json`), with field-level detail
for invalid requests.
"""


def create_app(database_url: str | None = None) -> FastAPI:
    """Build the app on the configured registry (CCI_DATABASE_URL unless given)."""
    settings = service_settings()
    engine = make_engine(database_url or store_settings().database_url, background_checkpoints=True)
    checkpointer = WalCheckpointer.of(engine)
    matcher = Matcher(engine)
    batch_worker = BatchWorker(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging()
        # Each worker loads the model now, not on its first submission (about 1 s at 1M
        # records); with none active yet, on the first submission after one is made.
        with suppress(NoModelError):
            await run_in_threadpool(matcher.ready)
        if checkpointer is not None:
            checkpointer.start()
        batch_worker.start()
        yield
        batch_worker.stop()
        if checkpointer is not None:
            checkpointer.stop()
        for thread in app.state.run_threads:
            thread.join(timeout=1)
        engine.dispose()

    app = FastAPI(
        title="Consistent Childhood Identifier service",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.matcher = matcher
    app.state.run_threads = []
    app.state.batch_worker = batch_worker
    app.state.batch_dir = settings.batch_dir.resolve()
    problems.install(app)

    app.add_middleware(ApiKeyMiddleware, engine=engine, cache_seconds=settings.auth_cache_seconds)
    app.add_middleware(
        BodyLimitMiddleware,
        json_limit=settings.max_request_bytes,
        upload_limit=settings.max_upload_bytes,
        upload_prefix="/v1/batches",
    )
    app.add_middleware(MetricsMiddleware)

    for module in (records, identifiers, events, admin, reviews, batches):
        app.include_router(module.router)
    pages.install(app)

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: the registry is reachable and a model is loaded",
        responses={503: problems.PROBLEM_RESPONSES[422] | {"description": "Not ready"}},
    )
    def readyz() -> object:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        try:
            version = matcher.ready()
        except NoModelError as error:
            return problems.problem(503, str(error), kind="not-ready")
        return {"status": "ready", "model_version": version}

    app.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        tags=["operations"],
        summary="Prometheus metrics (requests, latency by route)",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema["components"]["schemas"]["Problem"] = Problem.model_json_schema()
            schema["components"]["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
            for path, operations in schema["paths"].items():
                if path.startswith("/v1/"):
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}, {"apiKey": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
