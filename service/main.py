"""ASGI entry point for uvicorn: `uvicorn service.main:app` (what `cci serve` runs)."""

from service.app import create_app

app = create_app()
