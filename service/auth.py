"""API-key authentication and scope checks (DESIGN.md, Access).

Authentication is ASGI middleware, so it runs before FastAPI reads the body: any call under
/v1 without a live key gets 401 problem+json whatever it sends.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from linkage.store.clients import Client, authenticate
from service.problems import Problem, problem

PROTECTED_PREFIX = "/v1/"


def api_key_from(headers: dict[bytes, bytes]) -> str | None:
    """`Authorization: Bearer KEY` or `X-API-Key: KEY`."""
    authorization = headers.get(b"authorization", b"").decode("latin-1").strip()
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    key = headers.get(b"x-api-key", b"").decode("latin-1").strip()
    return key or None


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    def _lookup(self, key: str) -> Client | None:
        with self.engine.connect() as connection:
            return authenticate(connection, key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        key = api_key_from(dict(scope["headers"]))
        client = await run_in_threadpool(self._lookup, key) if key else None
        if client is None:
            detail = "an API key is required" if key is None else "the API key is not valid"
            await problem(401, detail, kind="unauthenticated")(scope, receive, send)
            return
        scope.setdefault("state", {})["client"] = client
        await self.app(scope, receive, send)


def caller(request: Request) -> Client:
    client: Client = request.state.client
    return client


def require(*scopes: str) -> Any:
    """A dependency: the caller holds at least one of `scopes`."""

    def check(client: Client = Depends(caller)) -> Client:
        if not client.scopes.intersection(scopes):
            raise Problem(
                403, f"this API key lacks the {' or '.join(scopes)} scope", kind="forbidden"
            )
        return client

    return Depends(check)


def source_id(client: Client, code: str) -> int:
    """The caller's own source system `code`; 403 for any other (an agency cannot act or read
    as another source system)."""
    found = client.sources.get(code)
    if found is None:
        raise Problem(
            403, f"this API key is not bound to source system {code!r}", kind="other-source"
        )
    return found
