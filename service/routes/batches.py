"""Batch jobs: upload a pseudonymised file, follow its job, stream its assignments (HTTP only;
the job itself is linkage.batches)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path as FilePath
from typing import Annotated

import anyio
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from linkage.batches import (
    BatchWorker,
    JobView,
    assignment_rows,
    create_job,
    get_job,
    new_job_id,
    upload_path,
)
from linkage.store.audit import audit
from linkage.store.clients import Client
from linkage.store.database import write_transaction
from service.auth import require
from service.problems import PROBLEM_RESPONSES, Problem, responses
from service.schemas import BatchJobRead

router = APIRouter(prefix="/v1/batches", tags=["batches"], responses=PROBLEM_RESPONSES)

#: Accepted upload media types -> file format (Parquet's registered type is an alias of
#: octet-stream here: the document lists octet-stream, which every HTTP client can send).
FORMATS = {
    "text/csv": "csv",
    "application/octet-stream": "parquet",
    "application/vnd.apache.parquet": "parquet",
}
JobPath = Annotated[str, Path(max_length=32, description="the job id from POST /v1/batches")]
ASSIGNMENTS_EXAMPLE = "source_system,record_id,cci\neducation,E1000042,K7QW2M9XR46\n"


def _read(view: JobView) -> BatchJobRead:
    return BatchJobRead.model_validate(asdict(view))


def _own_job(request: Request, client: Client, job_id: str) -> JobView:
    """The caller's job; 404 for a job that is not theirs, as for one that does not exist."""
    worker: BatchWorker = request.app.state.batch_worker
    with request.app.state.engine.connect() as connection:
        view = get_job(connection, job_id, live=worker.progress(job_id))
    if view is None or view.client_id != client.id:
        raise Problem(404, "no such batch job", kind="not-found")
    return view


def _queue(
    engine: Engine, client: Client, job_id: str, name: str, file_format: str, upload: FilePath
) -> JobView:
    size = upload.stat().st_size
    with write_transaction(engine) as connection:
        create_job(
            connection,
            job_id=job_id,
            client_id=client.id,
            file_name=name,
            file_format=file_format,
            upload=upload,
            size_bytes=size,
        )
        audit(
            connection,
            client.actor,
            "upload_batch",
            job_id,
            {"file_name": name, "format": file_format, "bytes": size},
        )
        view = get_job(connection, job_id)
    assert view is not None
    return view


@router.post(
    "",
    status_code=202,
    summary="Upload a pseudonymised CSV or Parquet file to ingest and link as a batch job",
    response_model=BatchJobRead,
    responses=responses(415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the file as `cci pseudonymise` writes it, as the raw request body: "
            "CSV as text/csv, Parquet as application/octet-stream or "
            "application/vnd.apache.parquet",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/octet-stream": {
                    "schema": {
                        "type": "string",
                        "format": "binary",
                        "description": "a Parquet file (also as application/vnd.apache.parquet)",
                    },
                },
            },
        }
    },
)
async def upload_batch(
    request: Request,
    response: Response,
    name: Annotated[
        str | None, Query(max_length=256, description="your name for the file, shown back")
    ] = None,
    client: Client = require("submit"),
) -> BatchJobRead:
    """Streams the body to disk (413 above the upload limit) and queues a job, answered with
    202 and the job (`Location` names it). The job checks the file, rejects rows of source
    systems this key is not bound to (row number and reason), ingests the rest and runs a
    linkage run; a file that cannot be used at all fails the job and nothing is ingested."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    file_format = FORMATS.get(media_type)
    if file_format is None:
        raise Problem(
            415,
            "send a CSV file as text/csv or a Parquet file as application/octet-stream",
            kind="unsupported-media-type",
        )
    batch_dir: FilePath = request.app.state.batch_dir
    batch_dir.mkdir(parents=True, exist_ok=True)
    job_id = new_job_id()
    upload = upload_path(batch_dir, job_id, file_format)
    try:
        with upload.open("xb") as handle:
            async for chunk in request.stream():
                if chunk:
                    await anyio.to_thread.run_sync(handle.write, chunk)
        if upload.stat().st_size == 0:
            raise Problem(422, "the uploaded file is empty", kind="empty-upload")
        view = await run_in_threadpool(
            _queue,
            request.app.state.engine,
            client,
            job_id,
            name or f"upload.{file_format}",
            file_format,
            upload,
        )
    except BaseException:
        upload.unlink(missing_ok=True)
        raise
    request.app.state.batch_worker.wake()
    response.headers["Location"] = f"/v1/batches/{job_id}"
    return _read(view)


@router.get(
    "/{job_id}",
    summary="A batch job's status, phase, progress, counts and rejected rows",
    response_model=BatchJobRead,
)
def get_batch(
    request: Request, job_id: JobPath, client: Client = require("submit")
) -> BatchJobRead:
    """Only the API client that uploaded the job can see it (404 for any other)."""
    return _read(_own_job(request, client, job_id))


@router.get(
    "/{job_id}/assignments",
    summary="Stream the CCIs of your records in a finished batch job, as CSV",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "`source_system,record_id,cci`, sorted by source system then "
            "record id: the job's records of your source systems that are active now",
            "content": {"text/csv": {"schema": {"type": "string"}, "example": ASSIGNMENTS_EXAMPLE}},
        },
        **responses(409),
    },
)
def get_batch_assignments(
    request: Request, job_id: JobPath, client: Client = require("submit")
) -> StreamingResponse:
    """Current assignments, read when asked (a later run may have moved a record to another
    CCI). 409 until the job has succeeded. Every read is audited."""
    view = _own_job(request, client, job_id)
    if view.status != "succeeded":
        raise Problem(
            409,
            f"the job is {view.status}; its assignments are ready once it has succeeded",
            kind="job-not-finished",
        )
    engine: Engine = request.app.state.engine
    with write_transaction(engine) as connection:
        audit(connection, client.actor, "read_batch_assignments", job_id)

    def lines() -> Iterator[str]:
        yield "source_system,record_id,cci\n"
        page: list[str] = []
        for row in assignment_rows(engine, job_id, client.sources):
            page.append(",".join(_csv_field(value) for value in row) + "\n")
            if len(page) == 1000:
                yield "".join(page)
                page = []
        yield "".join(page)

    return StreamingResponse(lines(), media_type="text/csv")


def _csv_field(value: str) -> str:
    """RFC 4180 quoting, for record ids that hold a comma, quote or line break."""
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value
