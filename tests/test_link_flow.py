"""The whole flow on SQLite and PostgreSQL: pseudonymise -> link -> re-run -> second delivery."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.schema import DropIndex

from linkage.demo import write_delivery
from linkage.link import link_registry, write_assignments
from linkage.pseudonymise import LinkageKey, pseudonymise_file
from linkage.store import bulk, ingest_files, make_engine
from linkage.store.database import write_transaction
from linkage.store.lookup_indexes import lookup_indexes, missing_lookup_indexes
from linkage.store.models import LOOKUP_INDEXES, Assignment, Base, Event, Identifier

KEY = LinkageKey(secret=bytes(range(32)))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def delivery(tmp_path: Path, number: int) -> tuple[Path, dict[tuple[str, str], str]]:
    folder = tmp_path / f"d{number}"
    write_delivery(600, folder, seed=5, delivery=number)
    pseudonymise_file(KEY, folder / "records.csv", folder / "pseudo.csv")
    truth = {
        (r["source_system"], r["record_id"]): r["child_id"] for r in read_csv(folder / "truth.csv")
    }
    return folder / "pseudo.csv", truth


def assignments(engine: object, path: Path) -> dict[tuple[str, str], str]:
    write_assignments(engine, path)  # type: ignore[arg-type]
    return {(r["source_system"], r["record_id"]): r["cci"] for r in read_csv(path)}


def clusters(cci_of: dict[tuple[str, str], str]) -> dict[str, frozenset[tuple[str, str]]]:
    members: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for record, cci in cci_of.items():
        members[cci].add(record)
    return {cci: frozenset(m) for cci, m in members.items()}


@pytest.mark.slow
def test_link_rerun_and_second_delivery_keep_identifiers_stable(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first ingest and run go through the large-load paths: indexes rebuilt once on
    # SQLite, foreign keys checked once at the end on PostgreSQL.
    monkeypatch.setattr(bulk, "DEFER_MIN_ROWS", 100)
    restored: list[tuple[str, bool]] = []
    restore = bulk.DeferredForeignKeys.restore

    def noting(self: bulk.DeferredForeignKeys, connection: Any) -> None:
        restored.append((self.table.name, self.dropped))
        restore(self, connection)

    monkeypatch.setattr(bulk.DeferredForeignKeys, "restore", noting)
    engine = make_engine(db_url)
    try:
        first_file, truth = delivery(tmp_path, 1)
        # A registry left without its look-up indexes (an earlier version's large ingest
        # committed without them, for its run to build): the run builds them.
        ingest_files(engine, [first_file])
        with write_transaction(engine) as c:
            for index in lookup_indexes():
                c.execute(DropIndex(index))
        with engine.connect() as c:
            assert len(missing_lookup_indexes(c)) == len(LOOKUP_INDEXES)
        report = link_registry(engine)
        assert "lookup_indexes" in report.stats["seconds"]
        with engine.connect() as c:
            assert missing_lookup_indexes(c) == []
        assert "default model" in report.model_source
        first = assignments(engine, tmp_path / "a1.csv")
        assert len(first) == report.stats["records"] > 900
        assert report.stats["new"] == report.stats["clusters"]
        # Each record's first CCI is an event, after the new CCIs' own, in assignment order.
        with engine.connect() as c:
            run_events = c.execute(
                select(Event.type, Event.cci, Event.related_cci, Event.record_pk, Event.created_at)
                .where(Event.run_id == report.run_id)
                .order_by(Event.cursor)
            ).all()
            assigned = c.execute(
                select(Assignment.cci, Assignment.record_pk, Assignment.assigned_at)
                .where(Assignment.run_id == report.run_id)
                .order_by(Assignment.id)
            ).all()
        assert [e.type for e in run_events] == ["created"] * report.stats["new"] + [
            "reassigned"
        ] * len(first)
        assert all(e.related_cci is None for e in run_events)
        firsts = [(e.cci, e.record_pk, e.created_at) for e in run_events[report.stats["new"] :]]
        assert firsts == [tuple(row) for row in assigned]
        # The new CCIs' events: one each, at the time the CCI was made.
        with engine.connect() as c:
            made = c.execute(
                select(Identifier.cci, Identifier.created_at).order_by(Identifier.cci)
            ).all()
        created = sorted((e.cci, e.created_at) for e in run_events[: report.stats["new"]])
        assert created == [tuple(row) for row in made]

        # The linkage is good: most records of one child share a CCI, children rarely share one.
        by_child: dict[str, set[str]] = defaultdict(set)
        for record, cci in first.items():
            by_child[truth[record]].add(cci)
        assert sum(len(c) == 1 for c in by_child.values()) / len(by_child) > 0.9

        # A re-run with nothing new changes nothing and writes no event.
        with engine.connect() as c:
            events_before = c.scalar(select(func.count()).select_from(Event))
        again = link_registry(engine)
        assert (again.stats["new"], again.stats["merged"], again.stats["split"]) == (0, 0, 0)
        assert assignments(engine, tmp_path / "a1b.csv") == first
        with engine.connect() as c:
            assert c.scalar(select(func.count()).select_from(Event)) == events_before

        # Second delivery: children whose records stayed together keep their CCI.
        second_file, _ = delivery(tmp_path, 2)
        ingest_files(engine, [second_file])
        later = link_registry(engine)
        second = assignments(engine, tmp_path / "a2.csv")
        before, after = clusters(first), clusters(second)
        unchanged = [cci for cci, members in before.items() if after.get(cci) == members]
        moved = [cci for cci, members in before.items() if after.get(cci) != members]
        assert len(unchanged) > 0.9 * len(before)
        for cci in unchanged:  # same records, same CCI: no churn
            assert all(second[r] == cci for r in before[cci])
        assert later.stats["new"] > 0  # births and new children
        with engine.connect() as c:
            statuses = dict(c.execute(select(Identifier.cci, Identifier.status)).all())
            kinds = [
                t for (t,) in c.execute(select(Event.type).where(Event.run_id == later.run_id))
            ]
        for cci in moved:  # every CCI whose records changed is still resolvable and evented
            assert cci in statuses
        assert kinds.count("superseded") == later.stats["merged"]
        assert kinds.count("created") == later.stats["new"]
        if engine.dialect.name == "sqlite":
            # Ingest and the run's write do not have SQLite check references row by row
            # (`write_transaction(bulk=True)`): every one they made must hold all the same.
            with engine.connect() as c:
                assert c.exec_driver_sql("PRAGMA foreign_key_check").all() == []
                assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        else:  # the keys dropped for the first loads are all back, and hold
            tables = Base.metadata.tables.values()
            expected = {str(k.name) for t in tables for k in t.foreign_key_constraints}
            with engine.connect() as c:
                found = c.scalars(
                    text("SELECT conname FROM pg_constraint WHERE contype = 'f' AND convalidated")
                )
                assert expected <= set(found)
                indexes = set(c.scalars(text("SELECT indexname FROM pg_indexes")))
            assert {str(i.name) for t in tables for i in t.indexes} <= indexes
            dropped = {name for name, was in restored if was}
            assert dropped == {"records", "record_versions", "assignments"}
    finally:
        engine.dispose()
