"""Operations over real HTTP: readiness, metrics, admin runs; `cci clients` end to end."""

from __future__ import annotations

import time

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


def test_admin_starts_one_run_at_a_time(live: LiveService) -> None:
    admin = live.client("admin")
    started = admin.post("/v1/admin/runs")
    assert started.status_code == 202
    deadline = time.monotonic() + 120
    while True:
        runs = admin.get("/v1/admin/runs").json()
        if runs[0]["status"] != "running":
            break
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert runs[0]["status"] == "succeeded" and runs[0]["summary"]["records"] > 100
    assert admin.get("/v1/admin/models").json()[0]["version"] == 1

    engine = make_engine(live.database_url)
    try:
        with write_transaction(engine) as connection:
            connection.execute(insert(LinkageRun).values(status="running", model_version=1))
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
