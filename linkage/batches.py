"""Batch jobs: an uploaded pseudonymised file, ingested and linked in the background.

A job belongs to the API client that uploaded it and may hold only that client's source
systems' rows: any other row is rejected with its row number and reason and never ingested
(an agency cannot submit as another source system). Jobs live in `batch_jobs`, so they
survive a restart: a worker starting up runs again every job it finds `queued` or `running`,
from the top. That is safe because ingest is idempotent and a linkage run replaces current
assignments rather than adding to them.

Files per job in the batch directory: `ID.csv` / `ID.parquet` as uploaded and
`ID.accepted.parquet` (the rows that go in) are deleted when the job ends;
`ID.keys.parquet` (sorted `source_system, record_id` of the accepted rows, no encodings)
stays, so the job's assignments can be streamed later.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, insert, select, update

from linkage.errors import CCIError
from linkage.link import RunInProgressError, link_registry
from linkage.pseudonymised_file import BATCH_SCHEMA, PseudonymisedFile
from linkage.store.database import write_transaction
from linkage.store.ingest import ingest_files
from linkage.store.models import (
    Assignment,
    BatchJob,
    Record,
    SourceSystem,
    api_client_sources,
    utcnow,
)

log = logging.getLogger("cci.batches")

#: Rejects kept per job (all are counted in rows_rejected).
MAX_REJECTS = 1000
#: Where each phase starts in a job's progress (0..1); checking and ingesting advance with
#: the bytes read, the linkage run is one step.
PHASE_STARTS = {"check": 0.0, "ingest": 0.3, "link": 0.6, "done": 1.0}
#: Seconds between attempts while another linkage run holds the registry.
RETRY_SECONDS = 2.0
#: Record ids per assignment look-up while streaming.
LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class JobView:
    """A job as its owner may see it."""

    id: str
    client_id: int
    status: str
    phase: str | None
    progress: float
    file_name: str
    file_format: str
    size_bytes: int
    rows_total: int
    rows_ingested: int
    rows_rejected: int
    rejects: list[dict[str, Any]]
    run_id: int | None
    error: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def new_job_id() -> str:
    return uuid.uuid4().hex


def upload_path(batch_dir: Path, job_id: str, file_format: str) -> Path:
    """Where an upload waits; its suffix tells the reader CSV from Parquet."""
    return batch_dir / f"{job_id}.{file_format}"


def _keys_path(upload: Path) -> Path:
    return upload.with_name(upload.stem + ".keys.parquet")


def create_job(
    connection: Connection,
    *,
    job_id: str,
    client_id: int,
    file_name: str,
    file_format: str,
    upload: Path,
    size_bytes: int,
) -> None:
    """Queue a job for a file already written to `upload`."""
    now = utcnow()
    connection.execute(
        insert(BatchJob).values(
            id=job_id,
            client_id=client_id,
            status="queued",
            file_name=file_name,
            file_format=file_format,
            upload_path=str(upload),
            size_bytes=size_bytes,
            created_at=now,
            updated_at=now,
        )
    )


def get_job(connection: Connection, job_id: str, live: float | None = None) -> JobView | None:
    """The job; `live` is its measured progress when this process is running it."""
    job = connection.execute(select(BatchJob).where(BatchJob.id == job_id)).first()
    if job is None:
        return None
    if job.status == "succeeded":
        progress = 1.0
    elif live is not None and job.status == "running":
        progress = live
    else:
        progress = PHASE_STARTS.get(job.phase or "", 0.0)
    return JobView(
        id=job.id,
        client_id=job.client_id,
        status=job.status,
        phase=job.phase,
        progress=round(progress, 3),
        file_name=job.file_name,
        file_format=job.file_format,
        size_bytes=job.size_bytes,
        rows_total=job.rows_total,
        rows_ingested=job.rows_ingested,
        rows_rejected=job.rows_rejected,
        rejects=job.rejects or [],
        run_id=job.run_id,
        error=job.error,
        attempts=job.attempts,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
    )


def _update(engine: Engine, job_id: str, **values: Any) -> None:
    with write_transaction(engine) as connection:
        connection.execute(
            update(BatchJob).where(BatchJob.id == job_id).values(updated_at=utcnow(), **values)
        )


def resume_jobs(engine: Engine) -> int:
    """Queue again the jobs a stopped process left `running`; returns how many."""
    with write_transaction(engine) as connection:
        return connection.execute(
            update(BatchJob)
            .where(BatchJob.status == "running")
            .values(status="queued", updated_at=utcnow())
        ).rowcount


def claim_next(engine: Engine) -> str | None:
    """Take the oldest queued job (only one worker can win it)."""
    with write_transaction(engine) as connection:
        job_id = connection.scalar(
            select(BatchJob.id)
            .where(BatchJob.status == "queued")
            .order_by(BatchJob.created_at, BatchJob.id)
            .limit(1)
        )
        if job_id is None:
            return None
        claimed = connection.execute(
            update(BatchJob)
            .where(BatchJob.id == job_id, BatchJob.status == "queued")
            .values(
                status="running",
                phase="check",
                attempts=BatchJob.attempts + 1,
                updated_at=utcnow(),
            )
        ).rowcount
        return job_id if claimed else None


def _client_sources(engine: Engine, client_id: int) -> set[str]:
    with engine.connect() as connection:
        return set(
            connection.scalars(
                select(SourceSystem.code)
                .join(api_client_sources, api_client_sources.c.source_system_id == SourceSystem.id)
                .where(api_client_sources.c.client_id == client_id)
            )
        )


def _split(
    upload: Path, accepted: Path, own: set[str], progress: Callable[[float], None]
) -> tuple[int, int, list[dict[str, Any]]]:
    """Write the rows of `own` source systems to `accepted` and their sorted keys beside the
    upload; reject the others. Raises UnusableInputError when the file cannot be used."""
    file = PseudonymisedFile(upload)
    total = rejected = 0
    rejects: list[dict[str, Any]] = []
    keys: list[pa.Table] = []
    allowed = pa.array(sorted(own), pa.string())
    with pq.ParquetWriter(accepted, BATCH_SCHEMA) as writer:
        for batch in file.batches():
            mine = pc.is_in(batch["source_system"], value_set=allowed)
            others = pc.indices_nonzero(pc.invert(mine)).to_pylist()
            rejected += len(others)
            for index in others[: MAX_REJECTS - len(rejects)]:
                code = str(batch["source_system"][index].as_py())[:64]
                rejects.append(
                    {
                        "row": total + index + 1,
                        "record_id": batch["record_id"][index].as_py(),
                        "reason": f"source system {code!r} is not bound to this API key",
                    }
                )
            good = batch.filter(mine)
            writer.write_table(good)
            keys.append(good.select(["source_system", "record_id"]))
            total += batch.num_rows
            progress(file.bytes_read / max(file.size, 1))
    found = pa.concat_tables(keys) if keys else BATCH_SCHEMA.empty_table()
    table = (
        found.select(["source_system", "record_id"])
        .group_by(["source_system", "record_id"])
        .aggregate([])
        .sort_by([("source_system", "ascending"), ("record_id", "ascending")])
    )
    pq.write_table(table, _keys_path(upload))
    return total, rejected, rejects


def run_job(
    engine: Engine,
    job_id: str,
    *,
    stopping: threading.Event,
    progress: Callable[[float], None] = lambda _: None,
) -> str:
    """Check, ingest and link one claimed job; returns its status afterwards. When `stopping`
    is set between phases the job is left `running`, for the next start to run again."""
    with engine.connect() as connection:
        job = connection.execute(select(BatchJob).where(BatchJob.id == job_id)).first()
    assert job is not None, job_id
    upload = Path(job.upload_path)
    accepted = upload.with_name(upload.stem + ".accepted.parquet")
    try:
        own = _client_sources(engine, job.client_id)
        check_span = PHASE_STARTS["ingest"] - PHASE_STARTS["check"]
        ingest_span = PHASE_STARTS["link"] - PHASE_STARTS["ingest"]
        total, rejected, rejects = _split(upload, accepted, own, lambda f: progress(f * check_span))
        _update(
            engine,
            job_id,
            phase="ingest",
            rows_total=total,
            rows_rejected=rejected,
            rejects=rejects,
        )
        if stopping.is_set():
            return "running"
        run_id = None
        if total > rejected:
            progress(PHASE_STARTS["ingest"])
            summary = ingest_files(
                engine,
                [accepted],
                progress=lambda done, all_: progress(
                    PHASE_STARTS["ingest"] + ingest_span * done / max(all_, 1)
                ),
            )
            _update(engine, job_id, phase="link", rows_ingested=summary.rows_read)
            progress(PHASE_STARTS["link"])
            run_id = _link(engine, stopping)
            if run_id is None:
                return "running"
        _update(
            engine, job_id, status="succeeded", phase="done", run_id=run_id, finished_at=utcnow()
        )
        log.info("batch job %s succeeded (run %s)", job_id, run_id)
        status = "succeeded"
    except CCIError as error:
        # The reader names the file by its path here; the caller knows it by its own name.
        message = str(error).replace(str(accepted), job.file_name)
        message = message.replace(str(upload), job.file_name)
        _update(engine, job_id, status="failed", error=message, finished_at=utcnow())
        status = "failed"
    except Exception as error:
        log.exception("batch job %s failed", job_id)
        detail = f"internal error ({type(error).__name__}); see the service log"
        _update(engine, job_id, status="failed", error=detail, finished_at=utcnow())
        status = "failed"
    finally:
        accepted.unlink(missing_ok=True)
    upload.unlink(missing_ok=True)
    if status == "failed":
        _keys_path(upload).unlink(missing_ok=True)
    return status


def _link(engine: Engine, stopping: threading.Event) -> int | None:
    """A linkage run, waiting while another holds the registry; None when told to stop."""
    while True:
        try:
            return link_registry(engine).run_id
        except RunInProgressError:
            if stopping.wait(RETRY_SECONDS):
                return None


def assignment_rows(
    engine: Engine, job_id: str, sources: Mapping[str, int]
) -> Iterator[tuple[str, str, str]]:
    """`(source_system, record_id, cci)` of the job's records of `sources` that are active and
    hold a CCI, sorted by source system then record id (read chunk by chunk from the sorted
    keys file, so memory stays bounded whatever the file's size)."""
    with engine.connect() as connection:
        upload = connection.scalar(select(BatchJob.upload_path).where(BatchJob.id == job_id))
    keys = pq.ParquetFile(_keys_path(Path(str(upload))))
    for batch in keys.iter_batches(batch_size=LOOKUP_CHUNK):
        chunk: dict[str, list[str]] = {}
        for code, record_id in zip(
            batch["source_system"].to_pylist(), batch["record_id"].to_pylist(), strict=True
        ):
            if code in sources:
                chunk.setdefault(code, []).append(record_id)
        for code in sorted(chunk):
            query = (
                select(Record.record_id, Assignment.cci)
                .join(
                    Assignment,
                    (Assignment.record_pk == Record.id) & Assignment.ended_at.is_(None),
                )
                .where(
                    Record.source_system_id == sources[code],
                    Record.record_id.in_(chunk[code]),
                    Record.status == "active",
                )
            )
            with engine.connect() as connection:
                found = sorted(connection.execute(query).tuples())
            for record_id, cci in found:
                yield code, record_id, cci


class BatchWorker:
    """Runs queued jobs one at a time in a daemon thread of this process. On start it queues
    again the jobs left `running` (with several service processes, start them together: a
    process starting later would re-run the others' jobs, which is safe but wasted work)."""

    def __init__(self, engine: Engine, *, poll_seconds: float = 2.0) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._live: dict[str, float] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="cci-batches", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to stop between phases; a job it leaves unfinished stays `running`."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def progress(self, job_id: str) -> float | None:
        return self._live.get(job_id)

    def _loop(self) -> None:
        resumed = False
        while not self._stop.is_set():
            try:
                if not resumed:
                    if count := resume_jobs(self.engine):
                        log.info("batch jobs: %s interrupted job(s) queued again", count)
                    resumed = True
                job_id = claim_next(self.engine)
            except Exception:
                log.exception("batch jobs: cannot read the queue")
                job_id = None
            if job_id is None:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                continue
            self._live[job_id] = 0.0
            try:
                run_job(
                    self.engine,
                    job_id,
                    stopping=self._stop,
                    progress=partial(self._live.__setitem__, job_id),
                )
            finally:
                self._live.pop(job_id, None)
