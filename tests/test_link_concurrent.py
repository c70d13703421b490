"""A linkage run while the service keeps answering: what changes between the run's snapshot and
its write (a real-time submission, a withdrawal, a first assignment) is carried onto the run's
result, and the registry's invariants hold afterwards.

Scenario, on 300 demo children: one record of a known child first gets a CCI of its own in real
time (auto-link threshold out of reach), so the next run merges that CCI into the child's. While
that run scores, an exact copy of the record is submitted (it joins the doomed CCI), the
original is withdrawn (the run still moves it) and a record ingested but never linked is
submitted (the run places it too).
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select

from linkage.demo import write_delivery
from linkage.link import link_registry
from linkage.lookups import withdraw_record
from linkage.match import Matcher
from linkage.pseudonymise import LinkageKey, pseudonymise_file
from linkage.pseudonymised_file import read_pseudonymised
from linkage.run import Thresholds
from linkage.store import ingest_files, make_engine
from linkage.store.database import write_transaction
from linkage.store.models import Assignment, Event, Identifier, Record, SourceSystem

KEY = LinkageKey(secret=bytes(range(32)))


def _rows(path: Path) -> list[dict[str, Any]]:
    return [row for batch in read_pseudonymised(path) for row in batch.to_pylist()]


def _write_without(source: Path, target: Path, left_out: set[tuple[str, str]]) -> None:
    with source.open(encoding="utf-8", newline="") as reader, target.open("w", newline="") as out:
        rows = csv.DictReader(reader)
        writer = csv.DictWriter(out, fieldnames=list(rows.fieldnames or []))
        writer.writeheader()
        for row in rows:
            if (row["source_system"], row["record_id"]) not in left_out:
                writer.writerow(row)


def _current(connection: Any) -> dict[tuple[str, str], str]:
    query = (
        select(SourceSystem.code, Record.record_id, Assignment.cci)
        .join(Record, Record.id == Assignment.record_pk)
        .join(SourceSystem, SourceSystem.id == Record.source_system_id)
        .where(Assignment.ended_at.is_(None))
    )
    return {(code, rid): cci for code, rid, cci in connection.execute(query)}


def test_changes_made_while_a_run_scores_are_carried_onto_its_result(
    db_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "d1"
    write_delivery(300, folder, seed=5, delivery=1)
    pseudonymise_file(KEY, folder / "records.csv", folder / "pseudo.csv")
    with (folder / "truth.csv").open(encoding="utf-8") as handle:
        lines = csv.DictReader(handle)
        truth = {(r["source_system"], r["record_id"]): r["child_id"] for r in lines}
    rows = {(r["source_system"], r["record_id"]): r for r in _rows(folder / "pseudo.csv")}
    sizes = Counter(truth[key] for key in rows)
    child = next(c for c, n in sorted(sizes.items()) if n >= 3)
    late_key = next(k for k in sorted(rows) if truth[k] == child)  # gets a CCI of its own
    unlinked_key = next(k for k in sorted(rows) if sizes[truth[k]] == 1)
    _write_without(folder / "pseudo.csv", tmp_path / "first.csv", {late_key, unlinked_key})
    _write_without(folder / "pseudo.csv", tmp_path / "unlinked.csv", set(rows) - {unlinked_key})

    engine = make_engine(db_url)
    try:
        ingest_files(engine, [tmp_path / "first.csv"])
        link_registry(engine)
        wary = Matcher(engine, Thresholds(auto_link=math.inf, review=math.inf))
        doomed = wary.submit(rows[late_key], actor="test").cci
        ingest_files(engine, [tmp_path / "unlinked.csv"])  # ingested, not yet linked

        copy = dict(rows[late_key], record_id="copy-" + late_key[1])
        during: dict[str, Any] = {}

        def meanwhile(stage: str) -> None:
            if stage != "load" or during:
                return
            matcher = Matcher(engine)
            during["copy"] = matcher.submit(copy, actor="test").cci
            during["unlinked"] = matcher.submit(rows[unlinked_key], actor="test").cci
            with write_transaction(engine) as connection:
                source = connection.scalar(
                    select(SourceSystem.id).where(SourceSystem.code == late_key[0])
                )
                withdraw_record(connection, source, late_key[1])

        link_registry(engine, stage=meanwhile)
        assert during["copy"] == doomed  # the copy joined the CCI the run was about to merge away

        with engine.connect() as connection:
            current = _current(connection)
            status = dict(connection.execute(select(Identifier.cci, Identifier.status)).all())
            successor = dict(
                connection.execute(select(Identifier.cci, Identifier.successor_cci)).all()
            )
            withdrawn = connection.execute(
                select(Record.record_id).where(Record.status == "withdrawn")
            ).scalars()
            copy_events = connection.execute(
                select(Event.type, Event.cci, Event.related_cci)
                .join(Record, Record.id == Event.record_pk)
                .where(Record.record_id == copy["record_id"], Event.run_id.is_not(None))
            ).all()
        assert set(withdrawn) == {late_key[1]}
        assert late_key not in current  # withdrawn during the run: no CCI, though the run moved it
        assert {status[cci] for cci in current.values()} == {"active"}
        assert status[doomed] == "superseded"
        siblings = {current[k] for k in rows if truth[k] == child and k != late_key}
        copy_cci = current[(copy["source_system"], copy["record_id"])]
        assert siblings == {copy_cci}  # the copy followed its CCI's successor
        assert copy_events == [("reassigned", copy_cci, doomed)]
        # The run placed the unlinked record too: the CCI it got in real time points there.
        given = during["unlinked"]
        assert current[unlinked_key] == given or (
            status[given] == "superseded" and successor[given] == current[unlinked_key]
        )
    finally:
        engine.dispose()
