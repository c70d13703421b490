"""`link_files` (`cci link --input`): a load is linked while it is written, and ends exactly
where ingesting and then linking would."""

from __future__ import annotations

import csv
import json
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, inspect, text

from linkage import link as link_module
from linkage import pseudonymised_file
from linkage.demo import write_delivery
from linkage.errors import UnusableInputError
from linkage.link import link_files, link_registry
from linkage.match import Matcher
from linkage.pseudonymise import LinkageKey, pseudonymise_file
from linkage.pseudonymised_file import read_pseudonymised
from linkage.run import RegistrySnapshot
from linkage.store import bulk, ingest, ingest_files, make_engine, write_transaction
from linkage.store.database import snapshot_transaction
from linkage.store.kept_pairs import kept_pairs
from linkage.store.lookup_indexes import missing_lookup_indexes
from linkage.store.models import Decision
from linkage.store.registry import Identities, load_snapshot, read_identities

KEY = LinkageKey(secret=bytes(range(32)))


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A delivery, and a second file that gives some of its records again, some changed."""
    folder = tmp_path_factory.mktemp("delivery")
    write_delivery(500, folder, seed=11)
    pseudonymise_file(KEY, folder / "records.csv", folder / "pseudo.csv")
    with (folder / "pseudo.csv").open(encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        names, rows = reader.fieldnames or [], list(reader)
    again = rows[:40]
    for row in again[:25]:  # a house move: a new version of the record
        row["postcode_tok"] = str(int(row["postcode_tok"] or 0) + 1)
    with (folder / "again.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows(again)
    return folder / "pseudo.csv", folder / "again.csv"


def _state(engine: Engine) -> dict[str, Any]:
    """What a run leaves, without the random CCIs: clusters as sets of record keys."""
    with engine.connect() as c:
        groups: dict[str, set[int]] = {}
        for record, cci in c.execute(
            text("SELECT record_pk, cci FROM assignments WHERE ended_at IS NULL")
        ):
            groups.setdefault(cci, set()).add(record)
        return {
            "clusters": sorted(sorted(g) for g in groups.values()),
            "versions": c.execute(
                text(
                    "SELECT record_pk, version, content_hash, postcode_tok FROM record_versions "
                    "ORDER BY 1, 2"
                )
            ).all(),
            "records": c.execute(
                text("SELECT id, current_version, content_hash FROM records ORDER BY id")
            ).all(),
            "review": c.execute(
                text(
                    "SELECT record_pk_l, record_pk_r, reason, explanation FROM review_items "
                    "WHERE status = 'open' ORDER BY 1, 2"
                )
            ).all(),
            "kept": _kept(c),
            "events": c.execute(
                text("SELECT type, count(*) FROM events GROUP BY type ORDER BY 1")
            ).all(),
            "frequencies": c.execute(
                text("SELECT rows, model_version FROM frozen_term_frequencies")
            ).all(),
            "runs": c.execute(text("SELECT status, model_version FROM linkage_runs")).all(),
            "blocks": c.execute(text("SELECT sum(rows) FROM record_version_blocks")).scalar(),
            "missing_indexes": missing_lookup_indexes(c),
        }


def _kept(connection: Connection) -> tuple[int, list[tuple[int, int]], dict[int, int]]:
    """The kept pairs' model version, pairs and scored versions."""
    kept = kept_pairs(connection)
    assert kept is not None
    version, pairs, versions = kept
    ordered = pairs.sort_by([("unique_id_l", "ascending"), ("unique_id_r", "ascending")])
    left, right = ordered["unique_id_l"].to_pylist(), ordered["unique_id_r"].to_pylist()
    scored = dict(
        zip(versions["unique_id"].to_pylist(), versions["version"].to_pylist(), strict=True)
    )
    return version, list(zip(left, right, strict=True)), scored


@pytest.mark.slow
def test_a_first_load_linked_while_written_ends_as_one_step_after_the_other(
    db_url: str,
    other_db_url: str,
    delivery: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Large-load paths (indexes made once at the end), and batches of a few hundred rows, so
    # the second file's records (and the first's) span batches the load plans before writing.
    monkeypatch.setattr(bulk, "DEFER_MIN_ROWS", 100)
    monkeypatch.setattr(pseudonymised_file, "BLOCK_BYTES", 64 << 10)
    files = list(delivery)
    handed_over: list[bool] = []
    first_load = link_module._link_first_load

    def noting(*args: Any, **kwargs: Any) -> Any:
        handed_over.append(True)
        return first_load(*args, **kwargs)

    monkeypatch.setattr(link_module, "_link_first_load", noting)
    write = ingest._Load.write

    def slow(self: Any, plan: Any) -> None:  # the run is ready before the ingest has written
        time.sleep(0.5)
        write(self, plan)

    monkeypatch.setattr(ingest._Load, "write", slow)
    pipelined = make_engine(db_url)
    try:
        summary, report = link_files(pipelined, files)
        assert handed_over == [True]
        # The run waited for the ingest's commit, working out its review items' explanations.
        assert {"explain", "ingest"} <= set(report.stats["seconds"])
        assert summary.records_added == report.stats["records"] > 900
        assert summary.versions_added == summary.records_added + 25
        state = _state(pipelined)
        # PostgreSQL made the record keys unique once, at the ingest's end: still in place.
        unique = inspect(pipelined).get_unique_constraints("records")
        assert [c["column_names"] for c in unique] == [["source_system_id", "record_id"]]
    finally:
        pipelined.dispose()

    sequential = make_engine(other_db_url)
    try:
        ingest_files(sequential, files)
        link_registry(sequential)
        expected = _state(sequential)
    finally:
        sequential.dispose()

    assert state == expected
    assert state["missing_indexes"] == []
    assert state["runs"] == [("succeeded", 1)]
    version, pairs, versions = state["kept"]
    assert version == 1 and pairs
    # The changed records' later versions are the current ones, in the run's kept versions.
    assert sum(v == 2 for v in versions.values()) == 25


def test_a_failed_ingest_leaves_nothing_and_no_thread(
    db_url: str, tmp_path: Path, delivery: tuple[Path, Path]
) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text("source_system,record_id\nGP1,1\n", encoding="utf-8")
    engine = make_engine(db_url)
    try:
        with pytest.raises(UnusableInputError):
            link_files(engine, [delivery[0], broken])
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM records")).scalar() == 0
            assert c.execute(text("SELECT count(*) FROM linkage_runs")).scalar() == 0
        # Into a registry that holds records: the same, and the read ahead gives up too.
        link_files(engine, [delivery[0]])
        before = _state(engine)
        with pytest.raises(UnusableInputError):
            link_files(engine, [delivery[1], broken])
        assert _state(engine) == before
        left = [
            t.name for t in threading.enumerate() if t.name.startswith(("cci-ingest", "cci-read"))
        ]
        assert left == []
    finally:
        engine.dispose()


def _interrupt_the_run_while_the_ingest_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run is interrupted (as by Ctrl-C) once the ingest has begun writing, which each
    batch then does slowly."""
    write = ingest._Load.write
    writing = threading.Event()

    def slow(self: Any, plan: Any) -> None:
        writing.set()
        time.sleep(0.2)
        write(self, plan)

    def broken(*args: Any, **kwargs: Any) -> Any:
        assert writing.wait(10)
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest._Load, "write", slow)
    monkeypatch.setattr(link_module, "run_linkage", broken)


def test_a_run_failing_before_the_ingest_commits_stops_it(
    db_url: str, delivery: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _interrupt_the_run_while_the_ingest_writes(monkeypatch)
    monkeypatch.setattr(pseudonymised_file, "BLOCK_BYTES", 64 << 10)  # many batches
    engine = make_engine(db_url)
    try:
        started = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            link_files(engine, [delivery[0]])
        assert time.perf_counter() - started < 5  # stopped within a batch, not written out
        assert not [t for t in threading.enumerate() if t.name.startswith("cci-ingest")]
        with engine.connect() as c:  # nothing of the call was kept
            for table in ("records", "record_versions", "linkage_runs", "models"):
                assert c.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0
    finally:
        engine.dispose()


def test_a_run_failing_before_a_delivery_commits_stops_it(
    db_url: str, delivery: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(db_url)
    try:
        link_files(engine, [delivery[0]])
        before = _state(engine)
        _interrupt_the_run_while_the_ingest_writes(monkeypatch)
        with pytest.raises(KeyboardInterrupt):
            link_files(engine, [delivery[1]])
        monkeypatch.undo()
        assert _state(engine) == before  # nothing of the call was kept
    finally:
        engine.dispose()


def test_a_run_failing_after_the_ingest_committed_leaves_it(
    sqlite_url: str, delivery: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(link_module, "apply_outcome", broken)
    engine = make_engine(sqlite_url)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            link_files(engine, [delivery[0]])
        with engine.connect() as c:  # as if `cci ingest` had run: the next run links it
            assert c.execute(text("SELECT count(*) FROM records")).scalar() > 900
            assert c.execute(text("SELECT count(*) FROM assignments")).scalar() == 0
            assert c.execute(text("SELECT status FROM linkage_runs")).scalars().all() == ["failed"]
        monkeypatch.undo()
        _, report = link_files(engine, [delivery[0]])  # nothing new: the run links them all
        assert report.stats["records"] > 900 and report.stats["new"] > 0
    finally:
        engine.dispose()


def test_into_a_registry_that_holds_records_the_run_works_while_the_ingest_writes(
    db_url: str, other_db_url: str, delivery: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(db_url)
    try:
        first, _ = link_files(engine, [delivery[0]])
        planned: list[Any] = []
        lay_over = link_module.delivered_snapshot

        def noting(*args: Any) -> Any:
            planned.append(lay_over(*args))
            return planned[-1]

        def refused(*args: Any) -> Any:
            raise AssertionError("the registry was read again after the ingest")

        # A record submitted in real time: its version is not in the blocks the run reads.
        submitted = dict(next(read_pseudonymised(delivery[0])).to_pylist()[0], record_id="rt")
        Matcher(engine).submit(submitted, actor="test")
        monkeypatch.setattr(link_module, "delivered_snapshot", noting)
        monkeypatch.setattr(link_module, "load_snapshot", refused)
        again, report = link_files(engine, [delivery[1]])
        assert again.versions_added == 25 and again.records_added == 0
        assert "ingest" in report.stats["seconds"]  # it waited for the ingest to commit
        assert report.stats["scoring"] == "incremental"
        assert report.stats["records"] == first.records_added + 1
        monkeypatch.undo()
        # What the run worked on is what the registry holds once the ingest has committed.
        with snapshot_transaction(engine) as connection:
            committed = load_snapshot(connection)
        (worked_on,) = planned
        assert worked_on.snapshot.records.equals(committed.records)
        assert worked_on.snapshot.versions.equals(committed.versions)
        assert worked_on.snapshot.uncached_versions.num_rows == 1  # the one submitted
        state = _state(engine)
    finally:
        engine.dispose()
    sequential = make_engine(other_db_url)
    try:
        ingest_files(sequential, [delivery[0]])
        link_registry(sequential)
        Matcher(sequential).submit(submitted, actor="test")
        ingest_files(sequential, [delivery[1]])
        link_registry(sequential)
        assert state == _state(sequential)
    finally:
        sequential.dispose()


def test_a_change_landing_before_the_ingest_commits_makes_the_run_start_again(
    db_url: str, other_db_url: str, delivery: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real-time submission that stores a new version of a record and keeps its CCI writes
    no event; the run that worked on the registry without it starts again from what is
    committed, and ends where ingesting, submitting and then linking would."""
    row = dict(next(read_pseudonymised(delivery[0])).to_pylist()[0])
    row["postcode_tok"] = str(int(row["postcode_tok"] or 0) + 7)
    engine = make_engine(db_url)
    try:
        link_files(engine, [delivery[0]])
        mark = link_module._registry_mark
        submitted: list[str] = []

        def after_the_commit(engine: Engine) -> Any:
            submitted.append(Matcher(engine).submit(row, actor="test").decision)
            return mark(engine)

        loads: list[int] = []
        load = link_module.load_snapshot

        def counted(*args: Any) -> Any:
            loads.append(1)
            return load(*args)

        monkeypatch.setattr(link_module, "_registry_mark", after_the_commit)
        monkeypatch.setattr(link_module, "load_snapshot", counted)
        link_files(engine, [delivery[1]])
        assert submitted == ["existing"]  # a new version, no event
        assert loads == [1]  # read again, from what was committed
        monkeypatch.undo()
        state = _state(engine)
    finally:
        engine.dispose()
    sequential = make_engine(other_db_url)
    try:
        ingest_files(sequential, [delivery[0]])
        link_registry(sequential)
        ingest_files(sequential, [delivery[1]])
        Matcher(sequential).submit(row, actor="test")
        link_registry(sequential)
        assert state == _state(sequential)
    finally:
        sequential.dispose()


def test_an_ingest_failing_after_the_hand_over_drops_the_run(
    db_url: str, delivery: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(self: Any, plan: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ingest._Load, "write", failing)
    engine = make_engine(db_url)
    try:
        with pytest.raises(OSError, match="disk full"):
            link_files(engine, [delivery[0]])
        with engine.connect() as c:
            for table in ("records", "linkage_runs", "models", "assignments"):
                assert c.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0
        assert not [t for t in threading.enumerate() if t.name.startswith("cci-ingest")]
    finally:
        engine.dispose()


def _threads(api: Any) -> int:
    return int(api.duckdb_con.execute("SELECT current_setting('threads')").fetchone()[0])


def test_splink_runs_on_one_thread_while_a_first_load_is_written() -> None:
    ingesting: Future[Any] = Future()
    cores = link_module._CoreShare(ingesting, "duckdb")
    during = cores.new_api()
    assert _threads(during) == 1  # the other core is the ingest's
    ingesting.set_result(None)
    after = cores.new_api()
    assert _threads(during) == _threads(after) > 1  # every core once the ingest is done


@pytest.mark.slow
def test_a_first_load_trains_its_model_on_the_rows_as_read(
    sqlite_url: str, other_db_url: str, delivery: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link_module, "MIN_RECORDS_FOR_TRAINING", 500)
    pipelined = make_engine(sqlite_url)
    try:
        summary, report = link_files(pipelined, [delivery[0]])
        assert report.model_source == "trained on this registry (v1)"
        assert "plan" in report.stats["seconds"]  # the model was trained before the plan came
        trained = _model(pipelined)
    finally:
        pipelined.dispose()
    sequential = make_engine(other_db_url)
    try:
        ingest_files(sequential, [delivery[0]])
        link_registry(sequential)
        expected = _model(sequential)
    finally:
        sequential.dispose()
    assert trained["summary"]["records"] == summary.rows_read
    # The same model as trained on the records once written, to the last bits of a double.
    assert _parameters(trained["settings"]) == pytest.approx(_parameters(expected["settings"]))


def _parameters(settings: dict[str, Any]) -> list[float]:
    """λ and every level's m and u."""
    found = [settings["probability_two_random_records_match"]]
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            found += [level.get("m_probability", -1.0), level.get("u_probability", -1.0)]
    return found


def _model(engine: Engine) -> dict[str, Any]:
    with engine.connect() as c:
        settings, summary = c.execute(
            text("SELECT settings_json, summary_json FROM models WHERE version = 1")
        ).one()
    loads = (lambda v: v) if isinstance(settings, dict) else json.loads
    return {"settings": loads(settings), "summary": loads(summary)}


def test_identities_read_ahead_stand_unless_something_changed_them(
    db_url: str, delivery: tuple[Path, Path]
) -> None:
    """What `cci link --input` reads while its ingest writes (assignments, CCIs, decisions)
    is taken by the snapshot after it only if no event, decision or finished run came since."""
    engine = make_engine(db_url)

    def ahead() -> Identities:
        with snapshot_transaction(engine) as connection:
            return read_identities(connection)

    def snapshot(identities: Identities) -> RegistrySnapshot:
        with snapshot_transaction(engine) as connection:
            return load_snapshot(connection, identities=identities)

    try:
        link_files(engine, [delivery[0]])
        before = ahead()
        assert snapshot(before).prior is before.prior
        # A decision that moves no record (no event) still constrains the next run.
        with engine.connect() as connection:
            a, b = connection.execute(
                text(
                    "SELECT a.record_pk, b.record_pk FROM assignments a JOIN assignments b "
                    "ON a.cci < b.cci ORDER BY a.record_pk, b.record_pk LIMIT 1"
                )
            ).one()
        with write_transaction(engine) as connection:
            connection.execute(
                insert(Decision).values(
                    record_pk_l=a, record_pk_r=b, verdict="different", decided_by="test"
                )
            )
        after = snapshot(before)
        assert after.prior is not before.prior and (a, b) in after.cannot_link
        # A real-time submission: its record's CCI is in the snapshot.
        before = ahead()
        row = next(read_pseudonymised(delivery[0])).to_pylist()[0]
        match = Matcher(engine).submit(dict(row, record_id="submitted-later"), actor="test")
        after = snapshot(before)
        assert after.event_mark > before.changes.event_mark
        assert match.cci in after.prior["cci"].to_pylist()
        assert len(after.prior) == len(before.prior) + 1
        # A run that finished since.
        before = ahead()
        link_registry(engine)
        assert snapshot(before).prior is not before.prior
    finally:
        engine.dispose()
