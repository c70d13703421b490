"""The FastAPI application: agency systems call it to get and use a child's CCI."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text

from linkage.settings import store_settings
from linkage.store.database import make_engine

API_VERSION = "0.1.0"


def create_app(database_url: str | None = None) -> FastAPI:
    """Build the app on the configured registry (CCI_DATABASE_URL unless given)."""
    engine = make_engine(database_url or store_settings().database_url)
    app = FastAPI(
        title="Consistent Childhood Identifier service",
        version=API_VERSION,
        description=(
            "Links pseudonymised records about the same child held by different agencies and "
            "gives each child one stable identifier (CCI). The service never receives a name, "
            "NHS number or UPN in clear."
        ),
    )

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness: the registry is reachable")
    def readyz() -> dict[str, str]:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ready"}

    return app
