"""Operations over real HTTP: readiness, metrics, admin runs; `cci clients` end to end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
from sqlalchemy import insert, select
from typer.testing import CliRunner

from cli.main import app as cli
from linkage.store import make_engine
from linkage.store.database import write_transaction
from linkage.store.models import AuditEntry, LinkageRun
from service.settings import service_settings
from tests.service.conftest import LiveService


def test_ready_metrics_and_audit(live_sqlite: LiveService) -> None:
    anonymous = live_sqlite.client()
    ready = anonymous.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model_version"] >= 1
    reader = live_sqlite.client("reader")
    assert reader.get("/v1/events").status_code == 200
    metrics = anonymous.get("/metrics")
    assert metrics.status_code == 200
    assert 'cci_http_requests_total{method="GET",route="/v1/events",status="200"}' in metrics.text
    # Metric labels carry route templates, never record ids or CCIs.
    assert "/v1/records/education/" not in metrics.text
    engine = make_engine(live_sqlite.database_url)
    try:
        with engine.connect() as connection:
            actions = set(connection.scalars(select(AuditEntry.action)))
    finally:
        engine.dispose()
    assert "read_events" in actions


def _finished_run_after(admin: httpx.Client, before: int) -> dict[str, Any]:
    """The run started after run `before`, once it has finished (the POST starts it in the
    background, so at first the newest run may still be an older one)."""
    deadline = time.monotonic() + 120
    while True:
        newest = admin.get("/v1/admin/runs").json()[0]
        if newest["id"] > before and newest["status"] != "running":
            return dict(newest)
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_admin_starts_one_run_at_a_time(live: LiveService) -> None:
    admin = live.client("admin")
    before = max((run["id"] for run in admin.get("/v1/admin/runs").json()), default=0)
    started = admin.post("/v1/admin/runs")
    assert started.status_code == 202
    run = _finished_run_after(admin, before)
    assert run["status"] == "succeeded" and run["summary"]["records"] > 100
    assert admin.get("/v1/admin/models").json()[0]["version"] == 1

    # A run whose process is alive holds the registry; one whose process died does not.
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = {"host": socket.gethostname(), "pid": int(finished.stdout)}
    alive = {"host": socket.gethostname(), "pid": os.getpid()}
    engine = make_engine(live.database_url)
    try:
        with write_transaction(engine) as connection:
            stale = connection.scalar(
                insert(LinkageRun)
                .values(status="running", model_version=1, summary=dead)
                .returning(LinkageRun.id)
            )
        restarted = admin.post("/v1/admin/runs")
        assert restarted.status_code == 202
        with engine.connect() as connection:
            status = connection.scalar(select(LinkageRun.status).where(LinkageRun.id == stale))
        assert status == "failed"
        assert _finished_run_after(admin, stale)["status"] == "succeeded"

        with write_transaction(engine) as connection:
            connection.execute(
                insert(LinkageRun).values(status="running", model_version=1, summary=alive)
            )
    finally:
        engine.dispose()
    busy = admin.post("/v1/admin/runs")
    assert busy.status_code == 409 and busy.json()["type"].endswith("run-in-progress")


def test_clients_cli_create_list_revoke(live_sqlite: LiveService) -> None:
    runner = CliRunner()
    url = ["--database-url", live_sqlite.database_url]
    made = runner.invoke(
        cli,
        ["clients", "create", "--name", "Leeds MIS", "-s", "education", "--scope", "read", *url],
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("cci_")
    client_id = made.stdout.split()[1]
    http = live_sqlite.client(headers={"X-API-Key": key})
    assert http.get("/v1/events").status_code == 200

    listed = runner.invoke(cli, ["clients", "list", *url])
    assert "Leeds MIS" in listed.stdout and key not in listed.stdout

    bad = runner.invoke(cli, ["clients", "create", "--name", "x", "--scope", "everything", *url])
    assert bad.exit_code == 2 and "unknown scope" in bad.output

    revoked = runner.invoke(cli, ["clients", "revoke", client_id, *url])
    assert revoked.exit_code == 0
    # Workers trust a checked key for CCI_AUTH_CACHE_SECONDS (5 s by default), no longer.
    deadline = time.monotonic() + service_settings().auth_cache_seconds + 2
    while (status := http.get("/v1/events").status_code) == 200 and time.monotonic() < deadline:
        time.sleep(0.25)
    assert status == 401
