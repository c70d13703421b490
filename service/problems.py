"""RFC 9457 problem details for every error the service returns."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from linkage.errors import CCIError, UnknownKeyError, UnusableInputError
from linkage.match import NoModelError

PROBLEM_TYPE = "https://cci.example/problems/"
MEDIA_TYPE = "application/problem+json"


def problem(
    status: int, detail: str | None = None, *, kind: str | None = None, **extra: Any
) -> JSONResponse:
    title = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + (kind or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    headers = {"WWW-Authenticate": 'Bearer realm="cci"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


class Problem(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(self, status: int, detail: str, *, kind: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem(exc.status, exc.detail, kind=exc.kind)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail) if exc.detail else None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
                "message": e["msg"],
                "type": e["type"],
            }
            for e in exc.errors()
        ]
        return problem(422, "the request is not valid", kind="validation", errors=errors)

    @app.exception_handler(UnknownKeyError)
    async def _key(_: Request, exc: UnknownKeyError) -> JSONResponse:
        return problem(422, str(exc), kind="unknown-key")

    @app.exception_handler(UnusableInputError)
    async def _unusable(_: Request, exc: UnusableInputError) -> JSONResponse:
        return problem(422, str(exc), kind="unusable-input")

    @app.exception_handler(NoModelError)
    async def _no_model(_: Request, exc: NoModelError) -> JSONResponse:
        return problem(503, str(exc), kind="not-ready")

    @app.exception_handler(CCIError)
    async def _cci(_: Request, exc: CCIError) -> JSONResponse:
        return problem(409, str(exc), kind="conflict")


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": HTTPStatus(status).phrase,
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for status in (400, 401, 403, 404, 413, 422)
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Problem responses for statuses only some routes give (409, 503)."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
