"""`cci link` in library form: choose the model, run linkage, write the outcome atomically.

The Splink work happens outside any write transaction; the outcome (identifiers, assignments,
events, review items, the pairs kept for the next run, run summary) is written in one. A run
killed at any point leaves the registry as it was, apart from a `running` row that the next
run marks as failed (and a model or frozen term frequencies it made, which are the model
version's, not the run's).
"""

from __future__ import annotations

import csv
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from linkage.decisions import reapply_decisions
from linkage.errors import CCIError
from linkage.match import Matcher
from linkage.model.backend import engine_api
from linkage.model.default import default_model
from linkage.model.realtime import CompiledModel
from linkage.model.training import MIN_RECORDS_FOR_TRAINING, train_model
from linkage.run import Thresholds, collector_paused, run_linkage
from linkage.settings import linkage_settings
from linkage.store.database import snapshot_transaction, upgrade, write_transaction
from linkage.store.lookup_indexes import building_lookup_indexes
from linkage.store.model_versions import active_model, save_model
from linkage.store.models import Assignment, LinkageRun, Record, SourceSystem, utcnow
from linkage.store.registry import (
    apply_outcome,
    freeze_snapshot_frequencies,
    load_scored_state,
    load_snapshot,
    start_run,
)
from linkage.store.version_blocks import store_blocks

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


def _choose_model(
    engine: Engine, records: Any, stage: Stage | None, link_engine: str | None = None
) -> tuple[int, dict[str, Any], str]:
    with engine.connect() as connection:
        found = active_model(connection)
    if found is not None:
        version, settings, _ = found
        return version, settings, f"active model v{version}"
    if records.num_rows >= MIN_RECORDS_FOR_TRAINING:
        if stage:
            stage("train")
        trained = train_model(records.drop_columns(["source_kind"]), db_api=engine_api(link_engine))
        with write_transaction(engine) as connection:
            version = save_model(connection, trained.settings, trained.summary)
        return version, trained.settings, f"trained on this registry (v{version})"
    settings = default_model()
    summary = {"source": "default model shipped with the package", "records": records.num_rows}
    with write_transaction(engine) as connection:
        version = save_model(connection, settings, summary)
    return (
        version,
        settings,
        (
            f"default model shipped with the package (v{version}); "
            f"{records.num_rows} records are too few to train (< {MIN_RECORDS_FOR_TRAINING})"
        ),
    )


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
    settings = linkage_settings()
    thresholds = thresholds or Thresholds(settings.auto_link_weight, settings.review_weight)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def timed(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 3)
        clock = now
        if stage:
            stage(name)

    # A large ingest may have left real-time matching's look-up indexes to this run
    # (`cci link --input`): they are built on a thread while it loads, trains and scores.
    with building_lookup_indexes(engine) as lookup_indexes_built:
        with collector_paused(), snapshot_transaction(engine) as connection:
            snapshot = load_snapshot(connection)
        timed("load")
        version, model, source = _choose_model(engine, snapshot.records, stage, link_engine)
        timed("model")
        run_id = _claim_run(engine, version)
        try:
            with collector_paused(), engine.connect() as connection:
                prior = load_scored_state(connection)
            frequencies = freeze_snapshot_frequencies(
                engine, version, CompiledModel(model).tf_columns, snapshot.records
            )
            timed("kept_pairs")
            outcome = run_linkage(
                snapshot,
                model,
                thresholds,
                model_version=version,
                prior=prior,
                term_frequencies=frequencies,
                db_api=engine_api(link_engine),
                stage=stage,
            )
            seconds.update(outcome.stats["seconds"])
            outcome.stats["seconds"] = seconds
            clock = time.perf_counter()
            if lookup_indexes_built():  # the result commits with them in place
                timed("lookup_indexes")  # what was left of building them
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
                        update(LinkageRun)
                        .where(LinkageRun.id == run_id)
                        .values(summary=outcome.stats)
                    )
            timed("write")  # after the summary was stored: only the report carries it
        except BaseException:
            with write_transaction(engine) as connection:
                connection.execute(
                    update(LinkageRun)
                    .where(LinkageRun.id == run_id)
                    .values(status="failed", finished_at=utcnow())
                )
            raise
        return LinkReport(run_id, version, source, outcome.stats)


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
