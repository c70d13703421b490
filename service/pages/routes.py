"""The /review pages: sign in and out, queue, pair, cluster, quality (see the package doc)."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader
from sqlalchemy import Engine
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from linkage.decisions import VERDICTS
from linkage.errors import CCIError
from linkage.reviews import quality
from linkage.store.clients import Client, authenticate, live_client
from service.pages import charts
from service.problems import Problem
from service.routes import reviews as api
from service.schemas import DecisionCreate, MergeCreate, SplitCreate

log = logging.getLogger("cci.pages")
HERE = Path(__file__).parent
#: GOV.UK Frontend as `npm install` puts it (CCI_FRONTEND_DIR overrides).
FRONTEND = Path(
    os.environ.get(
        "CCI_FRONTEND_DIR",
        HERE.parents[1] / "node_modules" / "govuk-frontend" / "dist" / "govuk",
    )
)
SESSION_HOURS = 8

environment = Environment(
    loader=ChoiceLoader(
        [
            FileSystemLoader(HERE / "templates"),
            PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
        ]
    ),
    autoescape=True,
)
templates = Jinja2Templates(env=environment)
router = APIRouter(prefix="/review", include_in_schema=False)


class SignedOut(Exception):
    """No live session: the page answers with a redirect to sign in."""


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def check_csrf(request: Request, token: str) -> None:
    if not secrets.compare_digest(token.encode(), csrf_token(request).encode()):
        raise Problem(403, "The form had expired or did not come from this service.")


def signed_in(request: Request) -> Client:
    """The session's API client, if its key is still live and still has the review scope."""
    client_id = request.session.get("client_id")
    if client_id is None:
        raise SignedOut
    engine: Engine = request.app.state.engine
    with engine.connect() as connection:
        client = live_client(connection, client_id)
    if client is None or "review" not in client.scopes:
        request.session.clear()
        raise SignedOut
    return client


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("signed_in", request.session.get("client_id") is not None)
    context["csrf"] = csrf_token(request)
    context["flash"] = request.session.pop("flash", None)
    context["path"] = request.url.path
    return templates.TemplateResponse(request, name, context, status_code=status)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request) -> HTMLResponse:
    return render(request, "sign_in.html", signed_in=False)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    api_key: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    client = None
    if api_key.strip():
        with request.app.state.engine.connect() as connection:
            client = authenticate(connection, api_key.strip())
    if client is None:
        error = "Enter a valid API key" if api_key.strip() else "Enter your API key"
        return render(request, "sign_in.html", 401, error=error, signed_in=False)
    if "review" not in client.scopes:
        error = "This API key does not have the review scope"
        return render(request, "sign_in.html", 403, error=error, signed_in=False)
    request.session.clear()
    request.session["client_id"] = client.id
    request.session["csrf"] = secrets.token_urlsafe(32)  # a new token for the new session
    return see_other("/review")


@router.post("/sign-out")
def sign_out(request: Request, csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(request, csrf_token)
    request.session.clear()
    request.session["flash"] = "You have signed out."
    return see_other("/review/sign-in")


@router.get("", response_class=HTMLResponse)
def queue_page(
    request: Request,
    source_system: Annotated[str | None, Query(max_length=64)] = None,
    reason: Annotated[str | None, Query(pattern="^(review_band|nhs_conflict)?$")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    client = signed_in(request)
    size = 25
    with request.app.state.engine.connect() as connection:
        queue = api.load_queue(
            connection,
            client,
            source_system=source_system or None,
            reason=reason or None,
            min_weight=None,
            max_weight=None,
            offset=(page - 1) * size,
            limit=size,
        )
    pages = max(1, -(-queue.total // size))
    codes = sorted({*queue.waiting_by_source, *([source_system] if source_system else [])})
    source_items = [{"value": "", "text": "All"}] + [{"value": c, "text": c} for c in codes]
    return render(
        request,
        "queue.html",
        queue=queue,
        page=page,
        pages=pages,
        source_system=source_system or "",
        source_items=source_items,
        reason=reason or "",
        query=f"source_system={quote(source_system or '')}&reason={quote(reason or '')}",
    )


@router.get("/pairs/{item_id}", response_class=HTMLResponse)
def pair_page(request: Request, item_id: int) -> HTMLResponse:
    return _pair(request, signed_in(request), item_id)


def _pair(
    request: Request, client: Client, item_id: int, status: int = 200, **context: Any
) -> HTMLResponse:
    with request.app.state.engine.connect() as connection:
        pair = api.load_pair(connection, client, item_id)
    chart = charts.waterfall(pair.prior_probability, [p.model_dump() for p in pair.parts])
    return render(request, "pair.html", status, pair=pair, chart=chart, **context)


@router.post("/pairs/{item_id}/decision")
def decide_page(
    request: Request,
    item_id: int,
    verdict: Annotated[str, Form(max_length=16)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    client = signed_in(request)
    check_csrf(request, csrf_token)
    if verdict not in VERDICTS:
        return _pair(
            request, client, item_id, 422, error="Select whether the records are the same child"
        )
    body = DecisionCreate(verdict=verdict, reason=reason.strip() or None)  # type: ignore[arg-type]
    result = api.decide(request, client, item_id, body)
    request.session["flash"] = summary(result)
    return see_other(f"/review/pairs/{item_id}")


def summary(result: Any) -> str:
    verdict = {"same": "Same child", "different": "Different children", "unsure": "Not sure"}
    moves = ", ".join(f"{c.cci} ({c.records} records)" for c in result.clusters)
    changes = sum(1 for e in result.events if e.type != "reassigned")
    return f"{verdict[result.verdict]}: recorded. CCIs now: {moves or 'unchanged'}" + (
        f"; {changes} identifier change{'s' if changes != 1 else ''} in the feed."
        if changes
        else "."
    )


@router.get("/clusters", response_class=HTMLResponse)
def find_cluster(request: Request, cci: Annotated[str, Query(max_length=32)] = "") -> Response:
    signed_in(request)
    return see_other(f"/review/clusters/{quote(cci.strip())}")


@router.get("/clusters/{cci}", response_class=HTMLResponse)
def cluster_page(request: Request, cci: str) -> HTMLResponse:
    client = signed_in(request)
    wanted = api.known_cci(cci)
    scorer = api.scorer_for(request)
    with request.app.state.engine.begin() as connection:
        cluster = api.load_cluster(connection, client, wanted, scorer)
        history = api.load_history(connection, client, wanted)
    labels = [r.source_system or r.source_kind for r in cluster.records]
    graph = charts.cluster_graph(
        labels,
        [(link.left, link.right, link.match_weight) for link in cluster.links],
        scorer.thresholds.auto_link,
    )
    split_items = [
        {
            "value": f"{r.source_system}/{r.record_id}",
            "text": f"{r.ref + 1}: {r.source_system} {r.record_id}",
        }
        for r in cluster.records
        if r.record_id
    ]
    return render(
        request,
        "cluster.html",
        cluster=cluster,
        history=history,
        graph=graph,
        split_items=split_items,
    )


@router.post("/clusters/{cci}/split")
def split_page(
    request: Request,
    cci: str,
    record: Annotated[str, Form(max_length=200)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    client = signed_in(request)
    check_csrf(request, csrf_token)
    source_system, _, record_id = record.partition("/")
    body = SplitCreate(source_system=source_system, record_id=record_id, reason=reason or None)
    result = api.split(request, client, api.known_cci(cci), body)
    request.session["flash"] = summary(result)
    return see_other(f"/review/clusters/{quote(api.known_cci(cci))}")


@router.post("/clusters/{cci}/merge")
def merge_page(
    request: Request,
    cci: str,
    other_cci: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    client = signed_in(request)
    check_csrf(request, csrf_token)
    body = MergeCreate(other_cci=other_cci, reason=reason or None)
    result = api.merge(request, client, api.known_cci(cci), body)
    request.session["flash"] = summary(result)
    survivor = result.clusters[0].cci if result.clusters else api.known_cci(cci)
    return see_other(f"/review/clusters/{quote(survivor)}")


@router.get("/quality", response_class=HTMLResponse)
def quality_page(request: Request) -> HTMLResponse:
    signed_in(request)
    scorer = api.scorer_for(request)
    with request.app.state.engine.connect() as connection:
        found = quality(connection, scorer=scorer)
    chart = charts.histogram(
        found.histogram,
        [(scorer.thresholds.review, "review"), (scorer.thresholds.auto_link, "auto-link")],
    )
    return render(request, "quality.html", quality=found, chart=chart, thresholds=scorer.thresholds)


class OnlyUnder:
    """Applies `middleware` to requests under `prefix` only: the pages' session cookie means
    nothing to the API, whose hot path should not pay for reading and re-sending it."""

    def __init__(self, app: ASGIApp, *, prefix: str, middleware: type, **options: Any) -> None:
        self.app = app
        self.prefix = prefix
        self.scoped = middleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            await self.scoped(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install(app: FastAPI, *, session_secret: str | None = None) -> None:
    """Add the pages, their session middleware and the GOV.UK Frontend assets to `app`."""
    secret = session_secret or os.environ.get("CCI_SESSION_SECRET") or secrets.token_urlsafe(32)
    app.add_middleware(
        OnlyUnder,
        prefix="/review",
        middleware=SessionMiddleware,
        secret_key=secret,
        session_cookie="cci_review",
        max_age=SESSION_HOURS * 3600,
        path="/review",
        same_site="strict",
        https_only=os.environ.get("CCI_SESSION_HTTPS_ONLY", "") == "true",
    )
    app.include_router(router)
    if (FRONTEND / "govuk-frontend.min.css").exists():
        app.mount("/review/govuk", StaticFiles(directory=FRONTEND), name="govuk")
        app.mount("/assets", StaticFiles(directory=FRONTEND / "assets"), name="govuk-assets")
    else:
        log.warning("GOV.UK Frontend not found at %s: run `npm ci`; pages are unstyled", FRONTEND)

    @app.exception_handler(SignedOut)
    async def _signed_out(request: Request, exc: SignedOut) -> Response:
        return see_other("/review/sign-in")

    for kind in (Problem, CCIError):
        app.add_exception_handler(kind, _page_errors(app.exception_handlers[kind]))


def _page_errors(api_handler: Any) -> Any:
    """Pages answer errors with a page; the API keeps its problem+json handler."""

    async def handle(request: Request, exc: Exception) -> Response:
        if not request.url.path.startswith("/review"):
            response: Response = await api_handler(request, exc)
            return response
        status = exc.status if isinstance(exc, Problem) else 409
        detail = exc.detail if isinstance(exc, Problem) else str(exc)
        return render(request, "error.html", status, code=status, detail=detail)

    return handle
