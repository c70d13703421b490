"""The columnar copy of record versions gives a run the same snapshot as the rows themselves,
and a version stored without it (real time, an older registry) is read from the rows and then
added to it by the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import Engine, delete, func, select

from linkage.demo import write_delivery
from linkage.link import link_registry
from linkage.match import Matcher
from linkage.pseudonymise import LinkageKey, pseudonymise_file
from linkage.pseudonymised_file import read_pseudonymised
from linkage.store import ingest_files, make_engine
from linkage.store.database import snapshot_transaction, write_transaction
from linkage.store.models import RecordVersionBlock
from linkage.store.registry import load_snapshot
from linkage.store.version_blocks import read_blocks, store_blocks

KEY = LinkageKey(secret=bytes(range(32)))


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("blocks")
    write_delivery(300, folder, seed=5)
    pseudonymise_file(KEY, folder / "records.csv", folder / "pseudo.csv")
    return folder / "pseudo.csv"


def _snapshot(engine: Engine) -> tuple[pa.Table, pa.Table, int]:
    with snapshot_transaction(engine) as connection:
        snapshot = load_snapshot(connection)
    uncached = snapshot.uncached_versions
    assert uncached is not None
    return snapshot.records, snapshot.versions, uncached.num_rows


def _blocks(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(RecordVersionBlock)) or 0)


def test_snapshot_from_blocks_equals_snapshot_from_rows(db_url: str, delivery: Path) -> None:
    engine = make_engine(db_url)
    try:
        ingest_files(engine, [delivery])
        assert _blocks(engine) > 0  # written by ingest
        from_blocks, versions, uncached = _snapshot(engine)
        assert uncached == 0
        with write_transaction(engine) as connection:  # as a registry made before the blocks
            connection.execute(delete(RecordVersionBlock))
        from_rows, versions_from_rows, uncached = _snapshot(engine)
        assert uncached == from_rows.num_rows
        assert from_blocks.equals(from_rows)
        assert versions.equals(versions_from_rows)
        assert from_rows["unique_id"].to_pylist() == sorted(versions["unique_id"].to_pylist())

        link_registry(engine)  # stores what it had to read from the rows
        again, _, uncached = _snapshot(engine)
        assert uncached == 0
        assert again.equals(from_rows)

        with write_transaction(engine) as connection:  # a version stored twice by mistake
            store_blocks(connection, read_blocks(connection).versions.slice(0, 7))
        twice, _, _ = _snapshot(engine)
        assert twice.equals(from_rows)
    finally:
        engine.dispose()


def test_a_version_submitted_in_real_time_joins_the_blocks(db_url: str, delivery: Path) -> None:
    engine = make_engine(db_url)
    try:
        ingest_files(engine, [delivery])
        link_registry(engine)
        row: dict[str, Any] = next(read_pseudonymised(delivery)).slice(0, 1).to_pylist()[0]
        row["record_id"] = "submitted-in-real-time"
        Matcher(engine).submit(row, actor="test")
        records, _, uncached = _snapshot(engine)
        assert uncached == 1
        link_registry(engine)
        after, _, uncached = _snapshot(engine)
        assert uncached == 0
        assert after.equals(records)
    finally:
        engine.dispose()
