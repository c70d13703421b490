"""A decision taken while a batch run scores holds from the run's commit, not from the next run.

The run read its clusters and decisions before the officer decided, so its plan can undo the
decision: here it merges two records that the officer has just said are different children.
The run's write applies the decisions its snapshot did not see on top of its result.
"""

from __future__ import annotations

import csv
import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select, text

from linkage.decisions import PairScorer, decide_pair, load_members
from linkage.link import link_registry
from linkage.match import Matcher, blocking_key_hashes
from linkage.pseudonymise import pseudonymise_file
from linkage.pseudonymised_file import read_pseudonymised
from linkage.run import Thresholds
from linkage.store import add_source, ingest_files, make_engine, write_transaction
from linkage.store.database import EVENT_ORDER_LOCK
from linkage.store.models import Assignment, Event, Identifier, Record, ReviewItem
from tests.test_decisions import CHILDREN, COLUMNS, KEY


def _write_raw(path: Path, children: list[tuple[str, ...]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for source, record_id, nhs, given, family, dob, sex, postcode in children:
            writer.writerow(
                dict.fromkeys(COLUMNS, "")
                | {
                    "source_system": source,
                    "record_id": record_id,
                    "nhs_number": nhs,
                    "given_name": given,
                    "family_name": family,
                    "date_of_birth": dob,
                    "sex": sex,
                    "postcode": postcode,
                }
            )


def _pk(connection: Connection, record_id: str) -> int:
    return int(connection.scalar(select(Record.id).where(Record.record_id == record_id)))


def _cci(connection: Connection, record_id: str) -> str:
    query = select(Assignment.cci).where(
        Assignment.record_pk == _pk(connection, record_id), Assignment.ended_at.is_(None)
    )
    return str(connection.scalar(query))


def test_a_decision_taken_while_a_run_scores_holds_after_its_write(
    db_url: str, tmp_path: Path
) -> None:
    first = [c for c in CHILDREN if c[1] != "S-AMELIA"]
    _write_raw(tmp_path / "first.csv", first)
    _write_raw(tmp_path / "late.csv", [c for c in CHILDREN if c[1] == "S-AMELIA"])
    for name in ("first", "late"):
        pseudonymise_file(KEY, tmp_path / f"{name}.csv", tmp_path / f"{name}.pseudo.csv")
    (late,) = [r for b in read_pseudonymised(tmp_path / "late.pseudo.csv") for r in b.to_pylist()]

    engine = make_engine(db_url)
    try:
        ingest_files(engine, [tmp_path / "first.pseudo.csv"])
        link_registry(engine)
        with write_transaction(engine) as c:
            add_source(c, "social_care", "social_care")
        # The social-care record gets a CCI of its own in real time (auto-link out of reach);
        # the next run would merge it into the health record's (same NHS number, same child).
        wary = Matcher(engine, Thresholds(auto_link=math.inf, review=math.inf))
        own = wary.submit(late, actor="test").cci
        with engine.connect() as c:
            health = _cci(c, "H-AMELIA")
        assert own != health

        decided: dict[str, Any] = {}

        def meanwhile(stage: str) -> None:
            if stage != "load" or decided:
                return
            with engine.connect() as c:
                scorer = PairScorer.active(Matcher(engine), c)
            with write_transaction(engine) as c:
                decided["outcome"] = decide_pair(
                    c,
                    record_l=_pk(c, "H-AMELIA"),
                    record_r=_pk(c, "S-AMELIA"),
                    verdict="different",
                    reason="different children, same NHS number in error",
                    actor="officer:1",
                    scorer=scorer,
                )

        report = link_registry(engine, stage=meanwhile)
        assert decided["outcome"].events == []  # already apart: the decision moved nothing

        with engine.connect() as c:
            after = {r: _cci(c, r) for r in ("H-AMELIA", "S-AMELIA")}
            status = dict(c.execute(select(Identifier.cci, Identifier.status)).all())
            pair = sorted((_pk(c, "H-AMELIA"), _pk(c, "S-AMELIA")))
            open_items = c.execute(
                select(ReviewItem.id).where(
                    ReviewItem.record_pk_l == pair[0],
                    ReviewItem.record_pk_r == pair[1],
                    ReviewItem.status == "open",
                )
            ).all()
            last = c.execute(select(Event.type, Event.cci).order_by(Event.cursor)).all()
        assert after["H-AMELIA"] != after["S-AMELIA"]
        assert {status[cci] for cci in after.values()} == {"active"}
        assert after["H-AMELIA"] == health
        assert open_items == []
        assert report.stats["decisions_reapplied"] == 1
        # The run's merge and its undoing are both in the feed.
        assert ("superseded", own) in last or after["S-AMELIA"] == own

        link_registry(engine)  # and the next run keeps them apart
        with engine.connect() as c:
            assert _cci(c, "H-AMELIA") != _cci(c, "S-AMELIA")
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_decision_and_a_real_time_write_on_one_child_do_not_deadlock(
    postgres_url: str, tmp_path: Path
) -> None:
    """A real-time submission locks its record's blocking keys, then the event order; a
    decision holds the event order while it rebuilds clusters. Were the decision to lock the
    members' blocking keys too, the two would wait on each other and PostgreSQL would abort
    one of them."""
    _write_raw(tmp_path / "raw.csv", CHILDREN)
    pseudonymise_file(KEY, tmp_path / "raw.csv", tmp_path / "pseudo.csv")
    engine = make_engine(postgres_url)
    rival = engine.connect()
    try:
        ingest_files(engine, [tmp_path / "pseudo.csv"])
        link_registry(engine)
        with engine.connect() as c:
            scorer = PairScorer.active(Matcher(engine), c)
            oliver, noah = _pk(c, "H-OLIVER"), _pk(c, "H-NOAH")
            key = min(blocking_key_hashes(load_members(c, [oliver])[oliver].row))
        # A submission of a record sharing Oliver's blocking key, caught between its two locks.
        rival.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        failures: list[BaseException] = []

        def decide() -> None:
            try:
                with write_transaction(engine) as c:
                    decide_pair(
                        c,
                        record_l=oliver,
                        record_r=noah,
                        verdict="same",
                        reason=None,
                        actor="officer:1",
                        scorer=scorer,
                    )
            except BaseException as exc:  # reported by the assertion below
                failures.append(exc)

        officer = threading.Thread(target=decide)
        officer.start()
        with engine.connect() as watcher:  # until the decision is done or waits for a lock
            deadline = time.monotonic() + 30
            waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
            while officer.is_alive() and not watcher.execute(waiting).scalar():
                assert time.monotonic() < deadline
                time.sleep(0.02)
                watcher.rollback()
        rival.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": EVENT_ORDER_LOCK})
        rival.commit()
        officer.join(timeout=30)
        assert not failures
        with engine.connect() as c:
            assert _cci(c, "H-OLIVER") == _cci(c, "H-NOAH")
    finally:
        rival.close()
        engine.dispose()
