"""`cci link` in library form: choose the model, run linkage, write the outcome atomically.

The Splink work happens outside any write transaction; the outcome (identifiers, assignments,
events, review items, the pairs kept for the next run, run summary) is written in one. A run
killed at any point leaves the registry as it was, apart from a `running` row that the next
run marks as failed (and a model or frozen term frequencies it made, which are the model
version's, not the run's).
"""

from __future__ import annotations

import csv
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, Engine, select, update

from linkage.decisions import reapply_decisions
from linkage.errors import CCIError
from linkage.match import Matcher
from linkage.model.backend import engine_api, set_threads
from linkage.model.default import default_model
from linkage.model.realtime import compiled_model
from linkage.model.training import MIN_RECORDS_FOR_TRAINING, train_model
from linkage.run import (
    RegistrySnapshot,
    RunOutcome,
    ScoredState,
    Thresholds,
    collector_paused,
    run_linkage,
)
from linkage.settings import linkage_settings
from linkage.store.database import snapshot_transaction, upgrade, write_transaction
from linkage.store.ingest import IngestSummary, PlannedLoad, Progress, ingest_files
from linkage.store.lookup_indexes import building_lookup_indexes
from linkage.store.model_versions import active_model, save_model
from linkage.store.models import Assignment, LinkageRun, Record, SourceSystem, utcnow
from linkage.store.registry import (
    Identities,
    RegistryMark,
    apply_outcome,
    current_records,
    delivered_snapshot,
    explain_ahead,
    first_load_snapshot,
    freeze_snapshot_frequencies,
    load_scored_state,
    load_snapshot,
    read_identities,
    read_keys,
    read_records,
    registry_mark,
    start_run,
)
from linkage.store.term_frequencies import (
    TermFrequencyTables,
    freeze_frequencies,
    load_frequencies,
)
from linkage.store.version_blocks import read_blocks, store_blocks
from linkage.waterfall import count_frequencies

log = logging.getLogger(__name__)
Stage = Callable[[str], None]
#: What `link_registry` reports to its `stage` callback as each stage ends, in order (a run
#: that trains a model also reports "train" as training starts).
STAGES = ("load", "model", "kept_pairs", "score", "cluster", "assign", "review", "write")


class RunInProgressError(CCIError):
    """Another linkage run holds the registry."""


@dataclass
class LinkReport:
    run_id: int
    model_version: int
    model_source: str
    stats: dict[str, Any] = field(default_factory=dict)


def live_run(connection: Connection) -> int | None:
    """The run holding the registry, if its process is alive; runs whose process died are
    marked failed on the way (a killed run leaves the registry as it was, DESIGN.md)."""
    me = socket.gethostname()
    for run_id, summary in connection.execute(
        select(LinkageRun.id, LinkageRun.summary).where(LinkageRun.status == "running")
    ):
        owner = summary or {}
        if owner.get("host") == me and _pid_alive(owner.get("pid")):
            return int(run_id)
        connection.execute(
            update(LinkageRun)
            .where(LinkageRun.id == run_id)
            .values(status="failed", finished_at=utcnow())
        )
    return None


def _claim_run(engine: Engine, model_version: int) -> int:
    """Start a run unless another live one is running."""
    with write_transaction(engine) as connection:
        running = live_run(connection)
        if running is not None:
            raise RunInProgressError(f"linkage run {running} is in progress")
        run_id = start_run(connection, model_version)
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        connection.execute(update(LinkageRun).where(LinkageRun.id == run_id).values(summary=me))
        return run_id


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class _ModelChoice:
    """The model a run scores with. `version` is None for one not saved yet (trained on this
    registry, or the shipped default), which `_saved` stores as the next version."""

    settings: dict[str, Any]
    version: int | None
    summary: dict[str, Any]
    #: How the run's report names it; `{version}` stands for the version it is saved as.
    source: str


def _choose_model(
    engine: Engine, records: pa.Table, stage: Stage | None, new_api: Callable[[], Any]
) -> _ModelChoice:
    """The active model; else one trained on `records` (`unique_id`, `sex` and the
    encodings; on a backend from `new_api`) when they are enough for EM; else the default
    shipped with the package. Writes nothing (`_saved` does)."""
    with engine.connect() as connection:
        found = active_model(connection)
    if found is not None:
        version, settings, summary = found
        return _ModelChoice(settings, version, summary, f"active model v{version}")
    if records.num_rows >= MIN_RECORDS_FOR_TRAINING:
        if stage:
            stage("train")
        trained = train_model(records, db_api=new_api())
        return _ModelChoice(
            trained.settings, None, trained.summary, "trained on this registry (v{version})"
        )
    return _ModelChoice(
        default_model(),
        None,
        {"source": "default model shipped with the package", "records": records.num_rows},
        "default model shipped with the package (v{version}); "
        f"{records.num_rows} records are too few to train (< {MIN_RECORDS_FOR_TRAINING})",
    )


def _saved(engine: Engine, choice: _ModelChoice) -> tuple[int, str]:
    """The chosen model's version, saving it (as the active one) if it is new; its source."""
    version = choice.version
    if version is None:
        with write_transaction(engine) as connection:
            version = save_model(connection, choice.settings, choice.summary)
    return version, choice.source.format(version=version)


class _Clock:
    """Seconds per stage, each reported to `stage` as it ends."""

    def __init__(self, stage: Stage | None) -> None:
        self.seconds: dict[str, float] = {}
        self.stage = stage
        self.last = time.perf_counter()

    def restart(self) -> None:
        self.last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.last, 3)
        self.last = now
        if self.stage:
            self.stage(name)


@contextmanager
def _failed_if_raises(engine: Engine, run_id: int) -> Iterator[None]:
    """Mark the claimed run failed if the block raises (the registry is left as it was)."""
    try:
        yield
    except BaseException:
        with write_transaction(engine) as connection:
            connection.execute(
                update(LinkageRun)
                .where(LinkageRun.id == run_id)
                .values(status="failed", finished_at=utcnow())
            )
        raise


def link_registry(
    engine: Engine,
    *,
    thresholds: Thresholds | None = None,
    stage: Stage | None = None,
    link_engine: str | None = None,
) -> LinkReport:
    """Link the whole registry. `link_engine` ("duckdb" or "spark", default CCI_LINK_ENGINE)
    is where Splink trains and scores; clustering and CCI assignment are the same for both."""
    upgrade(engine)
    thresholds = thresholds or _default_thresholds()
    timed = _Clock(stage)
    # A large ingest may have left real-time matching's look-up indexes to this run
    # (`cci link --input`): they are built on a thread while it loads, trains and scores.
    with (
        building_lookup_indexes(engine) as lookup_indexes_built,
        ThreadPoolExecutor(1, thread_name_prefix="cci-read-ahead") as pool,
    ):
        reading = pool.submit(_read_ahead, engine)
        with collector_paused(), snapshot_transaction(engine) as connection:
            snapshot = load_snapshot(connection)
        timed("load")
        training = snapshot.records.drop_columns(["source_kind"])
        choice = _choose_model(engine, training, stage, lambda: engine_api(link_engine))
        version, source = _saved(engine, choice)
        timed("model")
        run_id = _claim_run(engine, version)
        with _failed_if_raises(engine, run_id):
            ahead = reading.result()
            prior, frequencies = ahead.prior, ahead.frequencies
            if frequencies is None or ahead.model_version != version:
                frequencies = freeze_snapshot_frequencies(
                    engine, version, compiled_model(choice.settings).tf_columns, snapshot.records
                )
            timed("kept_pairs")
            outcome = run_linkage(
                snapshot,
                choice.settings,
                thresholds,
                model_version=version,
                prior=prior,
                term_frequencies=frequencies,
                db_api=engine_api(link_engine),
                stage=stage,
            )
            timed.seconds.update(outcome.stats["seconds"])
            timed.restart()
            if lookup_indexes_built():  # the result commits with them in place
                timed("lookup_indexes")  # what was left of building them
            _write_outcome(engine, run_id, outcome, snapshot, thresholds, timed)
        return LinkReport(run_id, version, source, outcome.stats)


@dataclass
class _ReadAhead:
    """What a run over a registry that has been linked before reads besides its snapshot."""

    #: The active model's version, and its frozen term frequencies (None if none yet).
    model_version: int | None
    frequencies: TermFrequencyTables | None
    #: The pairs earlier runs kept.
    prior: ScoredState | None
    #: Read while an ingest writes (`link_files`): the identities, and the current versions
    #: of the active records once the ingest's delivery is laid over them (`_delivered`).
    identities: Identities | None = None
    delivered: _Delivered | None = None


@dataclass
class _Delivered:
    """The active records' current versions with a delivery laid over them (`current_records`),
    and those the version blocks lacked."""

    current: pa.Table
    uncached: pa.Table


@dataclass
class _Ingest:
    """An ingest that a read ahead works beside: what it hands over, and the call itself."""

    handed: Future[PlannedLoad]
    running: Future[IngestSummary]


def _read_ahead(
    engine: Engine,
    *,
    ingest: _Ingest | None = None,
    reads_done: threading.Event | None = None,
) -> _ReadAhead:
    """Read while the snapshot loads (Parquet decoding, driver fetches: on the core the
    snapshot's reading leaves idle), or while an `ingest` writes, in a snapshot of its own.
    Kept pairs read before the run is claimed may be older or newer than the snapshot;
    either way they hold scores of the record versions they name, and the run scores again
    every record whose version differs (`linkage.run`). Frozen frequencies never change once
    frozen, nor do version blocks.

    Beside an `ingest`, the identities and the records are read too, and what the ingest
    hands over is laid over the records (`delivered_snapshot` checks nothing else changed);
    `reads_done` is set once this thread has read the database. The version blocks are read
    and decoded, and the delivery laid over them, on a second thread: the two threads take
    some 2 s on 1M records where one took 2.8 s."""
    with (
        ThreadPoolExecutor(1, thread_name_prefix="cci-read-blocks") as pool,
        snapshot_transaction(engine) as connection,
    ):
        keys: Future[pa.Table] = Future()
        delivered = pool.submit(_deliver, engine, keys, ingest) if ingest else None
        identities = None
        try:
            if ingest is not None:
                keys.set_result(read_keys(connection))
                identities = read_identities(connection)
            prior = load_scored_state(connection)
            found = active_model(connection)
            version = frequencies = None
            if found is not None:
                version, settings, _ = found
                compiled_model(settings)  # made once per process: the run needs it next
                frequencies = load_frequencies(connection, version)
        except BaseException as error:
            if not keys.done():
                keys.set_exception(error)
            raise
        finally:
            if reads_done is not None:
                reads_done.set()
        laid = delivered.result() if delivered else None
        return _ReadAhead(version, frequencies, prior, identities, laid)


def _deliver(engine: Engine, keys: Future[pa.Table], ingest: _Ingest) -> _Delivered | None:
    """The records' current versions as read with `keys`, once what the ingest hands over is
    laid over them; None for a first load, or an ingest that failed before handing over."""
    with snapshot_transaction(engine) as connection:
        blocks = read_blocks(connection)
    read = keys.result()
    # Begun after the keys were read: it holds every version they name.
    with snapshot_transaction(engine) as connection:
        records = read_records(connection, blocks, read)
    either: list[Future[Any]] = [ingest.handed, ingest.running]
    wait(either, return_when=FIRST_COMPLETED)
    if not ingest.handed.done() or ingest.handed.result().first_load:
        return None
    with collector_paused():
        return _Delivered(current_records(records, ingest.handed.result()), records.uncached)


def link_files(
    engine: Engine,
    paths: Sequence[Path | str],
    *,
    thresholds: Thresholds | None = None,
    stage: Stage | None = None,
    link_engine: str | None = None,
    progress: Progress | None = None,
) -> tuple[IngestSummary, LinkReport]:
    """`cci link --input`: ingest the files, then link the whole registry.

    The run does not wait for the ingest's rows. The ingest reads, checks and plans every
    file, hands the run what it is about to write, and writes it (one thread, mostly SQLite's
    or PostgreSQL's time) while the run scores and clusters (mostly DuckDB's, on the other
    core); the run writes its result once the ingest has committed.
    - Into an empty registry (a first load) the ingest first hands over every row read, which
      a model is trained on while the ingest plans them (`_link_first_load`).
    - Into a registry that holds records, the run works on the registry as read while the
      ingest began, with what the ingest adds and changes laid over it; if anything else
      changed the registry before the ingest committed, the run starts again from what is
      committed (`_link_delivery`).
    A failed ingest drops the run's work. A run that fails or is interrupted (Ctrl-C) before
    the ingest has committed stops it at its next batch, and nothing of the call is kept;
    after that commit the ingest stays, as running the two one after the other would leave
    it. `progress` is the ingest's (bytes read of all files); `stage` the run's.
    """
    upgrade(engine)
    # The rows as read come in a box the run empties: neither the future nor the run holds
    # them once a model is trained on them.
    rows_read: Future[list[pa.Table]] = Future()
    handed: Future[PlannedLoad] = Future()
    stop = threading.Event()
    with (
        ThreadPoolExecutor(1, thread_name_prefix="cci-read-ahead") as reader,
        ThreadPoolExecutor(1, thread_name_prefix="cci-ingest") as pool,
    ):
        # What the ingest does not change (kept pairs, the records as they were, the
        # identities): read while it plans. SQLite's reads and writes in one process slow each
        # other down by more than they overlap (two threads reading 1M rows each took 1.5-2 s
        # where one after the other took 1.2 s), so there the ingest writes once they are done.
        reads_done = threading.Event()
        ingesting = pool.submit(
            ingest_files,
            engine,
            paths,
            progress=progress,
            planned=handed.set_result,
            read=lambda rows: rows_read.set_result([rows]),
            write_after=reads_done if engine.dialect.name == "sqlite" else None,
            stop=stop,
        )
        ahead = reader.submit(
            _read_ahead, engine, ingest=_Ingest(handed, ingesting), reads_done=reads_done
        )
        thresholds = thresholds or _default_thresholds()
        either: list[Future[Any]] = [rows_read, handed, ingesting]
        try:
            wait(either, return_when=FIRST_COMPLETED)
            if rows_read.done():
                report = _link_first_load(
                    engine, rows_read.result(), handed, ingesting, thresholds, stage, link_engine
                )
                return ingesting.result(), report
            if handed.done():
                # Run by the ingest's thread as soon as it has committed.
                marked = pool.submit(_registry_mark, engine)
                report = _link_delivery(
                    engine,
                    ahead,
                    handed.result(),
                    ingesting,
                    marked,
                    thresholds,
                    stage,
                    link_engine,
                )
                return ingesting.result(), report
        except BaseException:
            stop.set()  # an ingest not committed yet keeps nothing, and ends at its next batch
            raise
        return ingesting.result(), link_registry(  # raises what stopped the ingest
            engine, thresholds=thresholds, stage=stage, link_engine=link_engine
        )


def _registry_mark(engine: Engine) -> RegistryMark:
    with snapshot_transaction(engine) as connection:
        return registry_mark(connection)


def _link_delivery(
    engine: Engine,
    read_ahead: Future[_ReadAhead],
    delivered: PlannedLoad,
    ingesting: Future[IngestSummary],
    marked: Future[RegistryMark],
    thresholds: Thresholds,
    stage: Stage | None,
    link_engine: str | None,
) -> LinkReport:
    """`link_registry` over a delivery still being written: everything up to the write works
    on the registry as read ahead with what the ingest adds and changes (`delivered`), and
    writes nothing; then it waits for the ingest, and writes as `link_registry` does if the
    registry is then what the run worked on (`marked`, read once the ingest committed).
    Otherwise (a real-time submission, a decision or another process's ingest landed
    meanwhile) the work is dropped and `link_registry` links what is committed."""
    timed = _Clock(stage)
    ahead = read_ahead.result()
    laid, identities = ahead.delivered, ahead.identities
    assert laid is not None and identities is not None  # read beside the ingest
    planned = delivered_snapshot(laid.current, laid.uncached, identities)
    ahead.delivered = ahead.identities = None  # the snapshot holds what it needs of them
    del laid, identities
    snapshot = planned.snapshot
    timed("load")
    training = snapshot.records.drop_columns(["source_kind"])
    choice = _choose_model(engine, training, stage, lambda: engine_api(link_engine))
    timed("model")
    columns = compiled_model(choice.settings).tf_columns
    frequencies = ahead.frequencies
    if frequencies is None or choice.version is None or ahead.model_version != choice.version:
        frequencies = count_frequencies(snapshot.records, columns)  # frozen once committed
    timed("kept_pairs")
    outcome = run_linkage(
        snapshot,
        choice.settings,
        thresholds,
        model_version=choice.version or 0,
        prior=ahead.prior,
        term_frequencies=frequencies,
        db_api=engine_api(link_engine),
        stage=stage,
    )
    _wait_for_ingest(outcome, ingesting, timed)
    if marked.result() != planned.mark:
        log.info("the registry changed while the delivery was written: linking it afresh")
        return link_registry(engine, thresholds=thresholds, stage=stage, link_engine=link_engine)
    return _saved_and_written(engine, choice, frequencies, outcome, snapshot, thresholds, timed)


def _wait_for_ingest(outcome: RunOutcome, ingesting: Future[IngestSummary], timed: _Clock) -> None:
    """Wait for the ingest a run worked beside to commit, spending the wait on the write's
    work; raises what stopped the ingest (the run's work is then dropped)."""
    timed.seconds.update(outcome.stats["seconds"])
    timed.restart()
    if not ingesting.done():
        explain_ahead(outcome, until=ingesting.done)
        timed("explain")
    ingesting.result()
    timed("ingest")  # what was left of the ingest's writing when the run was ready


def _saved_and_written(
    engine: Engine,
    choice: _ModelChoice,
    frequencies: TermFrequencyTables,
    outcome: RunOutcome,
    snapshot: RegistrySnapshot,
    thresholds: Thresholds,
    timed: _Clock,
) -> LinkReport:
    """A run that worked beside an ingest, once it has committed: its model saved, its term
    frequencies frozen and its result written, as `link_registry` does."""
    version, source = _saved(engine, choice)
    outcome.scored.model_version = version  # the pairs kept are labelled with it
    run_id = _claim_run(engine, version)
    columns = compiled_model(choice.settings).tf_columns
    with _failed_if_raises(engine, run_id), building_lookup_indexes(engine) as built:
        freeze_frequencies(engine, version, columns, count=lambda: frequencies)
        if built():  # a load interrupted before its run may have left them to this one
            timed("lookup_indexes")
        _write_outcome(engine, run_id, outcome, snapshot, thresholds, timed)
    return LinkReport(run_id, version, source, outcome.stats)


def _link_first_load(
    engine: Engine,
    rows_read: list[pa.Table],
    handed: Future[PlannedLoad],
    ingesting: Future[IngestSummary],
    thresholds: Thresholds,
    stage: Stage | None,
    link_engine: str | None,
) -> LinkReport:
    """`link_registry` over a first load that is still being written: everything up to the
    write works on the load's records (what `load_snapshot` would read once it committed),
    and writes nothing; then it waits for the ingest, and writes as `link_registry` does.

    A model is trained on the rows as read (`rows_read`, emptied) while the ingest plans
    them (4-6 s on 1M records): the same encodings as the records it plans, except that a
    record given twice is there twice."""
    timed = _Clock(stage)
    timed("load")
    cores = _CoreShare(ingesting, link_engine)
    choice = _choose_model(engine, rows_read.pop(), stage, cores.new_api)
    timed("model")
    either: list[Future[Any]] = [handed, ingesting]
    wait(either, return_when=FIRST_COMPLETED)
    if not handed.done():
        ingesting.result()  # raises what stopped the ingest before it planned every row
    snapshot = first_load_snapshot(handed.result())
    timed("plan")  # what was left of the ingest's planning when the model was ready
    columns = compiled_model(choice.settings).tf_columns
    frozen = None
    if choice.version is not None:  # an active model (imported) may have frozen its own
        with engine.connect() as connection:
            frozen = load_frequencies(connection, choice.version)
    frequencies = frozen if frozen is not None else count_frequencies(snapshot.records, columns)
    timed("kept_pairs")
    outcome = run_linkage(
        snapshot,
        choice.settings,
        thresholds,
        model_version=choice.version or 0,
        term_frequencies=frequencies,
        db_api=cores.new_api(),
        stage=stage,
    )
    _wait_for_ingest(outcome, ingesting, timed)
    return _saved_and_written(engine, choice, frequencies, outcome, snapshot, thresholds, timed)


class _CoreShare:
    """Splink's backends for a run beside a first load's ingest: one DuckDB thread each while
    the ingest writes (one core, mostly SQLite's or PostgreSQL's client), all of them once it
    is done. With a thread per core DuckDB took the writer's core in turns: on 1M records the
    ingest took 38 s instead of 32 s, the critical path, for 1.4 s less scoring."""

    def __init__(self, ingesting: Future[IngestSummary], link_engine: str | None) -> None:
        self.link_engine = link_engine
        self.ingesting = ingesting
        self.lock = threading.Lock()
        self.apis: weakref.WeakSet[Any] = weakref.WeakSet()  # not kept alive by this
        ingesting.add_done_callback(self._ingest_done)

    def new_api(self) -> Any:
        with self.lock:  # the callback sees it in `apis`, or it is made after the ingest
            api = engine_api(self.link_engine, threads=None if self.ingesting.done() else 1)
            self.apis.add(api)
        return api

    def _ingest_done(self, _: Future[IngestSummary]) -> None:
        with self.lock:
            apis = list(self.apis)
        for api in apis:
            set_threads(api, None)


def _default_thresholds() -> Thresholds:
    settings = linkage_settings()
    return Thresholds(settings.auto_link_weight, settings.review_weight)


def _write_outcome(
    engine: Engine,
    run_id: int,
    outcome: RunOutcome,
    snapshot: RegistrySnapshot,
    thresholds: Thresholds,
    timed: _Clock,
) -> None:
    """Write the run's result in one transaction, then its summary with the stage times."""
    outcome.stats["seconds"] = timed.seconds
    # The outcome refers to records, identifiers and this run, none ever deleted.
    with collector_paused(), write_transaction(engine, bulk=True) as connection:
        apply_outcome(connection, run_id, outcome, since=snapshot.event_mark)
        if snapshot.uncached_versions is not None:
            store_blocks(connection, snapshot.uncached_versions)
        reapplied = reapply_decisions(
            connection, after=snapshot.decision_mark, matcher=Matcher(engine, thresholds)
        )
        if reapplied:
            outcome.stats["decisions_reapplied"] = reapplied
            connection.execute(
                update(LinkageRun).where(LinkageRun.id == run_id).values(summary=outcome.stats)
            )
    timed("write")  # after the summary was stored: only the report carries it


def write_assignments(engine: Engine, path: Path) -> int:
    """`source_system,record_id,cci` of every current, non-withdrawn record, sorted."""
    query = (
        select(SourceSystem.code, Record.record_id, Assignment.cci)
        .join(Record, Record.source_system_id == SourceSystem.id)
        .join(Assignment, (Assignment.record_pk == Record.id) & Assignment.ended_at.is_(None))
        .where(Record.status == "active")
        .order_by(SourceSystem.code, Record.record_id)
    )
    rows = 0
    with engine.connect() as connection, path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["source_system", "record_id", "cci"])
        for row in connection.execute(query):
            writer.writerow(row)
            rows += 1
    return rows
