"""An incremental run (same model, scores only what changed, clusters only what it touches)
ends exactly where a full run over the same registry ends."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from linkage.demo import write_delivery
from linkage.link import link_registry
from linkage.lookups import withdraw_record
from linkage.pseudonymise import LinkageKey, pseudonymise_file
from linkage.store import ingest_files, make_engine
from linkage.store.database import write_transaction
from linkage.store.kept_pairs import kept_pairs
from linkage.store.models import Record

KEY = LinkageKey(secret=bytes(range(32)))


def outcome(url: str) -> tuple[dict[int, str], set[Any], dict[tuple[int, int], float]]:
    """Current CCI per record, open review items, kept pairs with their weights."""
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            current = text("SELECT record_pk, cci FROM assignments WHERE ended_at IS NULL")
            cci = dict(c.execute(current).all())
            review = set(
                c.execute(
                    text(
                        "SELECT record_pk_l, record_pk_r, reason FROM review_items "
                        "WHERE status = 'open'"
                    )
                ).all()
            )
            kept = kept_pairs(c)
            assert kept is not None
            _, table, _ = kept
            pairs = {
                (left, right): weight
                for left, right, weight in zip(
                    table["unique_id_l"].to_pylist(),
                    table["unique_id_r"].to_pylist(),
                    table["match_weight"].to_pylist(),
                    strict=True,
                )
            }
        return cci, review, pairs
    finally:
        engine.dispose()


def partition(cci: dict[int, str]) -> set[frozenset[int]]:
    members: dict[str, set[int]] = {}
    for record, identifier in cci.items():
        members.setdefault(identifier, set()).add(record)
    return {frozenset(m) for m in members.values()}


@pytest.mark.slow
def test_incremental_run_equals_a_full_run(tmp_path: Path) -> None:
    incremental_db = tmp_path / "incremental.db"
    files = []
    for number in (1, 2):
        folder = tmp_path / f"d{number}"
        write_delivery(800, folder, seed=21, delivery=number)
        pseudonymise_file(KEY, folder / "records.csv", folder / "pseudo.csv")
        files.append(folder / "pseudo.csv")
    engine = make_engine(f"sqlite:///{incremental_db}")
    ingest_files(engine, [files[0]])
    link_registry(engine)
    before, _, _ = outcome(f"sqlite:///{incremental_db}")
    ingest_files(engine, [files[1]])
    with write_transaction(engine) as connection:  # withdraw a linked record of a big cluster
        sizes: dict[str, int] = {}
        for identifier in before.values():
            sizes[identifier] = sizes.get(identifier, 0) + 1
        record = next(r for r, c in sorted(before.items()) if sizes[c] >= 3)
        source_id, record_id = connection.execute(
            select(Record.source_system_id, Record.record_id).where(Record.id == record)
        ).one()
        withdraw_record(connection, source_id, record_id)
    engine.dispose()

    full_db = tmp_path / "full.db"
    shutil.copy(incremental_db, full_db)
    full_engine = make_engine(f"sqlite:///{full_db}")
    with write_transaction(full_engine) as connection:  # no kept state: the run is full
        connection.execute(text("DELETE FROM kept_pair_blocks"))
    full = link_registry(full_engine).stats
    full_engine.dispose()
    engine = make_engine(f"sqlite:///{incremental_db}")
    incremental = link_registry(engine).stats
    engine.dispose()

    assert full["scoring"] == "full"
    assert incremental["scoring"] == "incremental"
    assert 0 < incremental["records_scored"] < full["records_scored"] / 4
    assert incremental["records_reclustered"] < full["records"] / 2
    for key in ("records", "clusters", "new", "kept", "merged", "split", "retired", "review_items"):
        assert incremental[key] == full[key], key

    cci_i, review_i, pairs_i = outcome(f"sqlite:///{incremental_db}")
    cci_f, review_f, pairs_f = outcome(f"sqlite:///{full_db}")
    assert partition(cci_i) == partition(cci_f)
    carried = {r: c for r, c in cci_f.items() if c in set(before.values())}
    assert {r: cci_i[r] for r in carried} == carried  # the same old CCIs on the same records
    assert review_i == review_f
    assert pairs_i.keys() == pairs_f.keys()
    assert max(abs(pairs_i[p] - pairs_f[p]) for p in pairs_f) < 1e-9
