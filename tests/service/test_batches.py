"""Batch jobs over real HTTP: upload, follow, stream assignments, rejects, limits, ownership,
and a job interrupted by a restart that completes once with no duplicate assignments."""

from __future__ import annotations

import csv
import io
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from linkage.batches import claim_next, create_job, new_job_id, run_job, upload_path
from linkage.link import link_registry
from linkage.pseudonymised_file import BATCH_SCHEMA
from linkage.store import ingest_files, make_engine
from linkage.store.models import ApiClient, Assignment, AuditEntry, BatchJob, Record, SourceSystem
from service.app import create_app
from service.settings import service_settings
from tests.service.conftest import LiveService, build_registry, serve


@pytest.fixture(scope="module", autouse=True)
def batch_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every app in this module keeps its uploads in a temporary folder."""
    folder = tmp_path_factory.mktemp("batches")
    before = os.environ.get("CCI_BATCH_DIR")
    os.environ["CCI_BATCH_DIR"] = str(folder)
    service_settings.cache_clear()
    yield folder
    if before is None:
        del os.environ["CCI_BATCH_DIR"]
    else:
        os.environ["CCI_BATCH_DIR"] = before
    service_settings.cache_clear()


def _write(rows: list[dict[str, Any]], path: Path) -> Path:
    table = pa.Table.from_pylist(rows, schema=BATCH_SCHEMA)
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
    return path


def _upload(client: httpx.Client, path: Path) -> dict[str, Any]:
    media = "application/vnd.apache.parquet" if path.suffix == ".parquet" else "text/csv"
    response = client.post(
        "/v1/batches",
        params={"name": path.name},
        content=path.read_bytes(),
        headers={"content-type": media},
    )
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/batches/{job['id']}"
    assert job["status"] in {"queued", "running"} and job["file_name"] == path.name
    return job


def _finished(client: httpx.Client, job_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/batches/{job_id}").raise_for_status().json()
        if job["status"] in {"succeeded", "failed"}:
            return job
        assert 0 <= job["progress"] <= 1
        assert time.monotonic() < deadline, f"job still {job['status']} ({job['phase']})"
        time.sleep(0.2)


def _assignments(client: httpx.Client, job_id: str) -> list[list[str]]:
    response = client.get(f"/v1/batches/{job_id}/assignments")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["source_system", "record_id", "cci"]
    return rows[1:]


def _current(database_url: str, source: str) -> dict[str, str]:
    """record id -> current CCI of `source`'s active records, read from the registry."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Record.record_id, Assignment.cci)
                .join(SourceSystem, SourceSystem.id == Record.source_system_id)
                .join(
                    Assignment,
                    (Assignment.record_pk == Record.id) & Assignment.ended_at.is_(None),
                )
                .where(SourceSystem.code == source, Record.status == "active")
            ).all()
    finally:
        engine.dispose()
    return dict(rows)  # type: ignore[arg-type]


def _of(rows: list[dict[str, Any]], source: str, count: int, prefix: str) -> list[dict[str, Any]]:
    picked = [dict(r) for r in rows if r["source_system"] == source][:count]
    for row in picked:
        row["record_id"] = prefix + row["record_id"]
    assert len(picked) == count
    return picked


def test_csv_and_parquet_jobs_link_and_stream_assignments(
    live: LiveService, tmp_path: Path
) -> None:
    school, gp = live.client("school"), live.client("gp")
    csv_file = _write(_of(live.unseen, "education", 15, "b1-"), tmp_path / "pupils.csv")
    parquet_file = _write(_of(live.unseen, "health", 10, "b1-"), tmp_path / "cases.parquet")
    csv_job = _upload(school, csv_file)
    parquet_job = _upload(gp, parquet_file)

    for client, job, source, rows in (
        (school, csv_job, "education", 15),
        (gp, parquet_job, "health", 10),
    ):
        done = _finished(client, job["id"])
        assert done["status"] == "succeeded", done
        assert (done["phase"], done["progress"], done["attempts"]) == ("done", 1.0, 1)
        assert (done["rows_total"], done["rows_ingested"], done["rows_rejected"]) == (rows, rows, 0)
        assert done["run_id"] is not None and done["rejects"] == [] and done["error"] is None
        streamed = _assignments(client, job["id"])
        registry = _current(live.database_url, source)
        expected = sorted(
            [source, record_id, cci]
            for record_id, cci in registry.items()
            if record_id.startswith("b1-")
        )
        assert streamed == expected and len(streamed) == rows

    engine = make_engine(live.database_url)
    try:
        with engine.connect() as connection:
            actions = connection.execute(
                select(AuditEntry.action, AuditEntry.target).where(
                    AuditEntry.action.in_(["upload_batch", "read_batch_assignments"])
                )
            ).all()
    finally:
        engine.dispose()
    for job in (csv_job, parquet_job):
        assert ("upload_batch", job["id"]) in actions
        assert ("read_batch_assignments", job["id"]) in actions


def test_rows_of_other_source_systems_are_rejected(
    live_sqlite: LiveService, tmp_path: Path
) -> None:
    school = live_sqlite.client("school")
    mine = _of(live_sqlite.unseen, "education", 4, "b2-")
    theirs = _of(live_sqlite.unseen, "health", 2, "b2-")
    rows = [mine[0], theirs[0], mine[1], mine[2], theirs[1], mine[3]]
    job = _finished(school, _upload(school, _write(rows, tmp_path / "mixed.csv"))["id"])

    assert job["status"] == "succeeded", job
    assert (job["rows_total"], job["rows_ingested"], job["rows_rejected"]) == (6, 4, 2)
    assert [(r["row"], r["record_id"]) for r in job["rejects"]] == [
        (2, theirs[0]["record_id"]),
        (5, theirs[1]["record_id"]),
    ]
    assert all("'health'" in r["reason"] for r in job["rejects"])
    assert not any(k.startswith("b2-") for k in _current(live_sqlite.database_url, "health"))
    streamed = _assignments(school, job["id"])
    assert [r[1] for r in streamed] == sorted(r["record_id"] for r in mine)


def test_an_unusable_file_fails_the_job_and_ingests_nothing(
    live_sqlite: LiveService, tmp_path: Path, batch_dir: Path
) -> None:
    school = live_sqlite.client("school")
    rows = _of(live_sqlite.unseen, "education", 3, "b3-")
    rows[2]["sex"] = "X"  # a contract violation in the last row refuses the whole file
    job = _finished(school, _upload(school, _write(rows, tmp_path / "broken.csv"))["id"])
    assert job["status"] == "failed" and job["phase"] == "check"
    assert job["error"] == "broken.csv: column sex: values must be F, M, U or empty"
    assert not any(k.startswith("b3-") for k in _current(live_sqlite.database_url, "education"))
    assert not list(batch_dir.glob(f"{job['id']}*")), "a failed job leaves no files behind"
    conflict = school.get(f"/v1/batches/{job['id']}/assignments")
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"

    not_csv = school.post(
        "/v1/batches", content=b"\x00\x01 not a csv", headers={"content-type": "text/csv"}
    )
    failed = _finished(school, not_csv.json()["id"])
    assert failed["status"] == "failed" and failed["error"]


def test_upload_errors_are_problem_documents(live_sqlite: LiveService) -> None:
    school = live_sqlite.client("school")
    wrong = school.post("/v1/batches", content=b"a,b\n", headers={"content-type": "text/plain"})
    assert wrong.status_code == 415
    assert wrong.headers["content-type"] == "application/problem+json"
    empty = school.post("/v1/batches", content=b"", headers={"content-type": "text/csv"})
    assert empty.status_code == 422 and empty.json()["type"].endswith("/empty-upload")
    reader = live_sqlite.client("reader")  # no submit scope
    headers = {"content-type": "text/csv"}
    assert reader.post("/v1/batches", content=b"a\n", headers=headers).status_code == 403
    anonymous = live_sqlite.client()
    assert anonymous.post("/v1/batches", content=b"a\n").status_code == 401
    for path in ("/v1/batches/" + "0" * 32, "/v1/batches/" + "0" * 32 + "/assignments"):
        assert anonymous.get(path).status_code == 401


def test_too_large_an_upload_is_refused(live_sqlite: LiveService, batch_dir: Path) -> None:
    os.environ["CCI_MAX_UPLOAD_BYTES"] = "4096"
    service_settings.cache_clear()
    try:
        app = create_app(live_sqlite.database_url)
    finally:
        del os.environ["CCI_MAX_UPLOAD_BYTES"]
        service_settings.cache_clear()
    before = set(batch_dir.iterdir())
    for url in serve(app):
        client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {live_sqlite.keys['school']}"}
        )
        with client:
            declared = client.post(
                "/v1/batches", content=b"x" * 5000, headers={"content-type": "text/csv"}
            )
            assert declared.status_code == 413
            assert declared.headers["content-type"] == "application/problem+json"

            def chunks() -> Iterator[bytes]:
                for _ in range(10):
                    yield b"y" * 1000

            streamed = client.post(
                "/v1/batches", content=chunks(), headers={"content-type": "text/csv"}
            )
            assert streamed.status_code == 413
    assert set(batch_dir.iterdir()) == before, "a refused upload leaves no file"


def test_other_clients_cannot_see_a_job(live_sqlite: LiveService, tmp_path: Path) -> None:
    school = live_sqlite.client("school")
    rows = _of(live_sqlite.unseen, "education", 2, "b4-")
    job = _finished(school, _upload(school, _write(rows, tmp_path / "two.csv"))["id"])
    assert job["status"] == "succeeded"
    for role in ("gp", "everything"):
        other = live_sqlite.client(role)
        for path in (f"/v1/batches/{job['id']}", f"/v1/batches/{job['id']}/assignments"):
            response = other.get(path)
            assert response.status_code == 404, (role, path)
            assert response.headers["content-type"] == "application/problem+json"
    assert school.get("/v1/batches/" + "0" * 32).status_code == 404
    assert live_sqlite.client("reader").get(f"/v1/batches/{job['id']}").status_code == 403


def _duplicates(engine: Any) -> int:
    """Records holding more than one current assignment."""
    with engine.connect() as connection:
        per_record = (
            select(Assignment.record_pk)
            .where(Assignment.ended_at.is_(None))
            .group_by(Assignment.record_pk)
            .having(func.count() > 1)
            .subquery()
        )
        return int(connection.scalar(select(func.count()).select_from(per_record)) or 0)


def test_a_job_interrupted_by_a_restart_completes_once(
    db_url: str, tmp_path: Path, batch_dir: Path
) -> None:
    """A process that stopped after ingesting and linking, before it marked the job done,
    leaves the job `running`; the next app runs it again to the same outcome."""
    service = build_registry(db_url, tmp_path, children=120)
    rows = _of(service.unseen, "education", 12, "b5-")
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            school_id = connection.scalar(select(ApiClient.id).where(ApiClient.name == "school"))
            job_id = new_job_id()
            upload = _write(rows, upload_path(batch_dir, job_id, "csv"))
            create_job(
                connection,
                job_id=job_id,
                client_id=int(school_id or 0),
                file_name="pupils.csv",
                file_format="csv",
                upload=upload,
                size_bytes=upload.stat().st_size,
            )
        assert claim_next(engine) == job_id
        stopping = threading.Event()
        stopping.set()  # the service was told to stop while this job checked its file
        assert run_job(engine, job_id, stopping=stopping) == "running"
        assert upload.exists(), "an unfinished job keeps its upload"
        # ... and, before it died, had ingested and linked the file.
        ingest_files(engine, [upload])
        link_registry(engine)
        before = _current(db_url, "education")
        records_before = _count(engine, Record)

        for url in serve(create_app(db_url)):
            service.url = url
            school = service.client("school")
            job = _finished(school, job_id)
            assert job["status"] == "succeeded", job
            assert job["attempts"] == 2 and job["rows_ingested"] == 12
            streamed = _assignments(school, job_id)
            service.close()

        assert _duplicates(engine) == 0
        assert _count(engine, Record) == records_before
        assert streamed == sorted(
            ["education", k, v] for k, v in before.items() if k.startswith("b5-")
        )
        assert len(streamed) == 12, "the rerun keeps every CCI the first run gave"
        with engine.connect() as connection:
            status = connection.scalar(select(BatchJob.status).where(BatchJob.id == job_id))
        assert status == "succeeded" and not upload.exists()
    finally:
        engine.dispose()


def test_a_job_queued_when_the_service_stopped_runs_on_the_next_start(
    live_sqlite: LiveService, tmp_path: Path
) -> None:
    """Stop the app straight after an upload (the job queued or mid-way), start another on
    the same registry: the job ends succeeded with one current assignment per record."""
    rows = _of(live_sqlite.unseen, "education", 5, "b6-")
    path = _write(rows, tmp_path / "late.csv")
    headers = {"Authorization": f"Bearer {live_sqlite.keys['school']}"}
    for url in serve(create_app(live_sqlite.database_url)):
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            job_id = _upload(client, path)["id"]
    for url in serve(create_app(live_sqlite.database_url)):
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            job = _finished(client, job_id)
            assert job["status"] == "succeeded", job
            streamed = _assignments(client, job_id)
    assert [r[1] for r in streamed] == sorted(r["record_id"] for r in rows)
    engine = make_engine(live_sqlite.database_url)
    try:
        assert _duplicates(engine) == 0
    finally:
        engine.dispose()


def _count(engine: Any, model: Any) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(model)) or 0)
