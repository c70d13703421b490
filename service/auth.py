"""API-key authentication and scope checks (DESIGN.md, Access).

Authentication is ASGI middleware, so it runs before FastAPI reads the body: any call under
/v1 without a live key gets 401 problem+json whatever it sends.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Depends, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from linkage.store.clients import Client, authenticate, hash_key
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
    """Live keys found in the store are remembered for `cache_seconds` (keyed by their hash),
    which spares a query and a thread hop per request; unknown keys are always looked up."""

    def __init__(self, app: ASGIApp, engine: Engine, cache_seconds: float = 0.0) -> None:
        self.app = app
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._known: dict[str, tuple[float, Client]] = {}

    def _lookup(self, key: str) -> Client | None:
        with self.engine.connect() as connection:
            return authenticate(connection, key)

    async def _client(self, key: str) -> Client | None:
        digest = hash_key(key)
        now = time.monotonic()
        known = self._known.get(digest)
        if known is not None and known[0] > now:
            return known[1]
        client = await run_in_threadpool(self._lookup, key)
        if client is None:
            self._known.pop(digest, None)
        elif self.cache_seconds > 0:
            if len(self._known) > 10_000:  # keys are few; never let junk grow it unbounded
                self._known.clear()
            self._known[digest] = (now + self.cache_seconds, client)
        return client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        key = api_key_from(dict(scope["headers"]))
        client = await self._client(key) if key else None
        if client is None:
            detail = "an API key is required" if key is None else "the API key is not valid"
            await problem(401, detail, kind="unauthenticated")(scope, receive, send)
            return
        scope.setdefault("state", {})["client"] = client
        await self.app(scope, receive, send)


# Dependencies are coroutines although they never await: FastAPI runs a plain function
# dependency in its threadpool, a thread hop per dependency per request.


async def caller(request: Request) -> Client:
    client: Client = request.state.client
    return client


def require(*scopes: str) -> Any:
    """A dependency: the caller holds at least one of `scopes`."""

    async def check(client: Client = Depends(caller)) -> Client:
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
