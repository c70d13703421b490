"""`cci serve` runs the service; `cci openapi` exports its OpenAPI document."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_OPENAPI_PATH = Path("openapi/openapi.json")


def openapi_document() -> str:
    """The app's OpenAPI document as stable, diff-friendly JSON."""
    from service.app import create_app

    document = create_app("sqlite://").openapi()
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def openapi(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write it.")] = (
        DEFAULT_OPENAPI_PATH
    ),
) -> None:
    """Write the service's OpenAPI document (checked in under openapi/; a test keeps it in sync)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(openapi_document(), encoding="utf-8")
    typer.echo(f"wrote {out}")


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: one per CPU core).")
    ] = None,
) -> None:
    """Migrate the registry (CCI_DATABASE_URL) and serve the REST API with uvicorn."""
    import uvicorn

    from linkage.settings import store_settings
    from linkage.store import make_engine
    from linkage.store.database import upgrade
    from linkage.store.lookup_indexes import build_lookup_indexes

    url = store_settings().database_url
    upgrade(url)
    engine = make_engine(url)
    try:  # a first load stopped before its run left them to be built (lookup_indexes.py)
        if made := build_lookup_indexes(engine):
            typer.echo(f"built {made} missing real-time look-up indexes")
    finally:
        engine.dispose()
    uvicorn.run(
        "service.main:app",
        host=host,
        port=port,
        workers=workers or os.cpu_count() or 1,
        log_level="info",
        # The service writes its own JSON access log (route templates, never paths): uvicorn's
        # would log each path, and paths carry record ids and CCIs.
        access_log=False,
    )


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(openapi)
