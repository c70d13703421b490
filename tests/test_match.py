"""Real-time matching: Splink's candidates and weights, and what a submission does to the registry.

A registry of 600 demo children is linked once per module; the second delivery's records are
the submissions (new children, new records of known children, changed records).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from splink import Linker
from sqlalchemy import Engine, func, select

from linkage import match as matching
from linkage.demo import write_delivery
from linkage.link import link_registry
from linkage.lookups import withdraw_record
from linkage.match import Matcher, _Sql, as_scorable, current_candidates, snapshot_mark
from linkage.model.backend import duckdb_api, register_records
from linkage.model.realtime import CompiledModel
from linkage.model.settings import BLOCKING_RULES
from linkage.pseudonymise import LinkageKey, pseudonymise_file
from linkage.pseudonymised_file import read_pseudonymised
from linkage.store import ingest_files, make_engine
from linkage.store.database import write_transaction
from linkage.store.models import (
    Assignment,
    AuditEntry,
    Event,
    Identifier,
    Model,
    SourceSystem,
)
from linkage.store.registry import load_snapshot

KEY = LinkageKey(secret=bytes(range(32)))


def _pseudonymised_rows(path: Path) -> list[dict[str, Any]]:
    return [row for batch in read_pseudonymised(path) for row in batch.to_pylist()]


def _truth(folder: Path) -> dict[tuple[str, str], str]:
    with (folder / "truth.csv").open(encoding="utf-8") as handle:
        return {(r["source_system"], r["record_id"]): r["child_id"] for r in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("match")
    files = {}
    for number in (1, 2):
        folder = root / f"d{number}"
        write_delivery(600, folder, seed=11, delivery=number)
        pseudonymise_file(KEY, folder / "records.csv", folder / "pseudo.csv")
        files[number] = folder
    engine = make_engine(f"sqlite:///{root / 'registry.db'}")
    ingest_files(engine, [files[1] / "pseudo.csv"])
    link_registry(engine)
    first_rows = _pseudonymised_rows(files[1] / "pseudo.csv")
    first = {(r["source_system"], r["record_id"]) for r in first_rows}
    second = _pseudonymised_rows(files[2] / "pseudo.csv")
    unseen = [r for r in second if (r["source_system"], r["record_id"]) not in first]
    truth = _truth(files[1]) | _truth(files[2])
    # Children the registry has never seen (another seed), under record ids of their own.
    strangers_folder = root / "strangers"
    write_delivery(30, strangers_folder, seed=99, delivery=1)
    pseudonymise_file(KEY, strangers_folder / "records.csv", strangers_folder / "pseudo.csv")
    strangers = []
    for row in _pseudonymised_rows(strangers_folder / "pseudo.csv"):
        child = _truth(strangers_folder)[(row["source_system"], row["record_id"])]
        row["record_id"] = "new-" + row["record_id"]
        truth[(row["source_system"], row["record_id"])] = "stranger-" + child
        strangers.append(row)
    yield {
        "engine": engine,
        "first": first_rows,
        "unseen": unseen,
        "strangers": strangers,
        "second": second,
        "truth": truth,
        "root": root,
    }
    engine.dispose()


def _splink_between(engine: Engine, new: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
    with engine.connect() as connection:
        snapshot = load_snapshot(connection)
        settings = connection.execute(select(Model.settings_json).where(Model.active)).scalar_one()
    existing = snapshot.records.drop_columns(["source_kind"])
    fresh = pa.Table.from_pylist(
        [
            {c: row.get(c) for c in existing.column_names if c != "unique_id"}
            | {"unique_id": -1 - i}
            for i, row in enumerate(new)
        ],
        schema=existing.schema,
    )
    api = duckdb_api(memory_limit="1GB")
    frame = register_records(api, existing, "existing")
    linker = Linker(frame, settings, log_level=logging.ERROR)
    matcher = Matcher(engine)
    with engine.connect() as connection:
        frequencies = matcher.model(connection).frequencies
    for column, values in frequencies.items():
        table = pa.table({column: list(values), f"tf_{column}": list(values.values())})
        linker.table_management.register_term_frequency_lookup(api.register(table), column)
    fresh_frame = register_records(api, fresh, "fresh")
    pairs = linker.inference.predict_between(frame, fresh_frame).as_record_list()
    return pairs, matcher


def test_candidates_and_weights_equal_splink_predict_between(world: dict[str, Any]) -> None:
    engine: Engine = world["engine"]
    # Unseen records (mostly new children) and copies of known ones under new record ids.
    new = world["unseen"][::2] + [
        dict(r, record_id=f"{r['record_id']}-copy") for r in world["first"][:900]
    ]
    pairs, matcher = _splink_between(engine, new)
    expected: dict[int, dict[int, float]] = {}
    for pair in pairs:
        left, right = pair["unique_id_l"], pair["unique_id_r"]
        fresh, old = (left, right) if left < 0 else (right, left)
        expected.setdefault(fresh, {})[old] = pair["match_weight"]
    with engine.connect() as connection:
        active = matcher.model(connection)
        compared = 0
        worst = 0.0
        for i, row in enumerate(new):
            found = {c.record_pk: c for c in current_candidates(_Sql(connection), row)}
            assert set(found) == set(expected.get(-1 - i, {})), f"record {i}"
            for pk, weight in expected.get(-1 - i, {}).items():
                score = active.compiled.score(as_scorable(row), found[pk].row, active.frequencies)
                worst = max(worst, abs(score.match_weight - weight))
                fast = active.compiled.match_weight(
                    as_scorable(row), found[pk].row, active.frequencies
                )
                assert fast == score.match_weight
                compared += 1
    assert compared > 1500
    assert worst < 1e-9
    assert len(BLOCKING_RULES) > 5 and isinstance(active.compiled, CompiledModel)


def test_submissions_link_known_children_and_make_new_ones(world: dict[str, Any]) -> None:
    engine: Engine = world["engine"]
    truth: dict[tuple[str, str], str] = world["truth"]
    matcher = Matcher(engine)
    with engine.connect() as connection:
        events_before = connection.scalar(select(func.count()).select_from(Event))
    decisions: dict[str, int] = {}
    correct = wrong = 0
    results = {}
    copies = [dict(r, record_id=f"{r['record_id']}-again") for r in world["first"][300:450]]
    truth.update(
        {
            (r["source_system"], r["record_id"]): truth[(r["source_system"], r["record_id"][:-6])]
            for r in copies
        }
    )
    submissions = world["unseen"][1::2] + copies + world["strangers"]
    for row in submissions:
        match = matcher.submit(row, actor="test")
        decisions[match.decision] = decisions.get(match.decision, 0) + 1
        results[(row["source_system"], row["record_id"])] = match
        # The answer's anchoring is the CCI's as stored when it answered.
        with engine.connect() as connection:
            stored = connection.scalar(
                select(Identifier.nhs_anchored).where(Identifier.cci == match.cci)
            )
        assert match.nhs_anchored == stored
    # Children seen before are mostly linked; new children get new CCIs.
    by_cci: dict[str, set[str]] = {}
    for key, match in results.items():
        by_cci.setdefault(match.cci, set()).add(truth[key])
    for children in by_cci.values():
        if len(children) == 1:
            correct += 1
        else:
            wrong += 1
    assert (
        decisions.get("linked", 0) >= 140
        and decisions.get("new", 0) + decisions.get("review", 0) >= 25
    )
    assert wrong == 0
    assert correct > 0
    assert {m.nhs_anchored for m in results.values()} == {True, False}

    # Submitting the same record again changes nothing and answers with the same CCI.
    row = submissions[0]
    again = matcher.submit(row, actor="test")
    assert again.decision == "existing"
    assert again.cci == results[(row["source_system"], row["record_id"])].cci

    with engine.connect() as connection:
        events_after = connection.scalar(select(func.count()).select_from(Event))
        audited = connection.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "submit_record")
        )
        realtime = connection.scalar(
            select(func.count()).select_from(Assignment).where(Assignment.method == "realtime")
        )
    assert events_after - events_before >= len(submissions)  # every assignment is an event
    assert audited == len(submissions) + 1
    assert realtime == len(submissions)

    # The next batch run reconciles: nobody's CCI is lost, realtime CCIs stay or are superseded.
    report = link_registry(engine)
    assert report.stats["records"] >= 1000 + len(submissions)


def test_out_of_date_and_withdrawn_versions_are_never_matched(
    world: dict[str, Any], tmp_path: Path
) -> None:
    """Candidates are read as stored versions; only current versions of active records may
    link a submission or be reported as its closest match."""
    engine: Engine = world["engine"]
    write_delivery(4, tmp_path, seed=123, delivery=1)
    pseudonymise_file(KEY, tmp_path / "records.csv", tmp_path / "pseudo.csv")
    rows = _pseudonymised_rows(tmp_path / "pseudo.csv")
    child = _truth(tmp_path)
    first, other = (
        rows[0],
        next(
            r
            for r in rows
            if child[(r["source_system"], r["record_id"])]
            != child[(rows[0]["source_system"], rows[0]["record_id"])]
        ),
    )
    matcher = Matcher(engine)
    made = matcher.submit(dict(first, record_id="stale-1"), actor="test")
    assert made.decision in ("new", "review")
    # The record now describes someone else: its first version stays stored, out of date.
    moved = matcher.submit(dict(other, record_id="stale-1"), actor="test")
    assert moved.decision == "existing"
    again = matcher.submit(dict(first, record_id="stale-2"), actor="test")
    assert again.cci != made.cci and again.decision in ("new", "review")
    assert again.match_weight is None or again.match_weight < matcher.thresholds.auto_link

    with write_transaction(engine) as connection:
        source = connection.scalar(
            select(SourceSystem.id).where(SourceSystem.code == first["source_system"])
        )
        assert source is not None
        withdraw_record(connection, source, "stale-2")
    last = matcher.submit(dict(first, record_id="stale-3"), actor="test")
    assert last.cci not in (made.cci, again.cci) and last.decision in ("new", "review")
    assert last.match_weight is None or last.match_weight < matcher.thresholds.auto_link


@pytest.mark.parametrize("scan_max", [matching.FRESH_SCAN_MAX, 3])
def test_records_stored_after_the_snapshot_are_found_as_the_index_would(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, scan_max: int
) -> None:
    """Under the write lock, versions stored since the snapshot are read in rowid order and
    held against the blocking rules in Python (or, past FRESH_SCAN_MAX, looked up by index):
    either way the same candidates as the indexed query."""
    engine: Engine = world["engine"]
    monkeypatch.setattr(matching, "FRESH_SCAN_MAX", scan_max)
    with engine.connect() as connection:
        seen = snapshot_mark(_Sql(connection))
    later = [dict(r, record_id=f"{r['record_id']}-later-{scan_max}") for r in world["first"][:12]]
    matcher = Matcher(engine)
    for row in later:
        matcher.submit(row, actor="test")
    probes = later + world["first"][12:40] + world["strangers"][:5]
    found = 0
    with engine.connect() as connection:
        sql = _Sql(connection)
        for row in probes:
            fresh = {(c.record_pk, c.version) for c in matching._fresh_candidates(sql, row, seen)}
            indexed = {(c.record_pk, c.version) for c in matching._candidates(sql, row, after=seen)}
            assert fresh == indexed
            found += len(fresh)
    assert found >= len(later)
