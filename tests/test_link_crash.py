"""A linkage run killed at any point leaves the registry as it was; the next run completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from linkage.demo import write_delivery
from linkage.link import link_registry
from linkage.pseudonymise import LinkageKey, pseudonymise_file
from linkage.store import ingest_files, make_engine
from linkage.store.models import LinkageRun

KEY = LinkageKey(secret=bytes(range(32)))
#: Everything a run writes in its one transaction, including the scored pairs and record
#: versions an incremental run starts from (the model's frozen term frequencies are written
#: before, once per model version, as real-time matching writes them).
TABLES = (
    "identifiers",
    "assignments",
    "events",
    "review_items",
    "kept_pair_blocks",
)


def state(url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return {
                t: sorted(map(tuple, c.execute(text(f"SELECT * FROM {t}"))), key=repr)
                for t in TABLES
            }
    finally:
        engine.dispose()


@pytest.mark.slow
def test_killed_runs_change_nothing_and_the_next_run_completes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    files = []
    for number in (1, 2):
        folder = tmp_path / f"d{number}"
        write_delivery(3000, folder, seed=8, delivery=number)
        pseudonymise_file(KEY, folder / "records.csv", folder / "pseudo.csv")
        files.append(folder / "pseudo.csv")
    ingest_files(engine, [files[0]])
    link_registry(engine)
    ingest_files(engine, [files[1]])
    before = state(url)

    cci = Path(sys.executable).with_name("cci")
    outcomes = []
    for delay in (0.8, 1.6, 2.4, 3.2, 4.0, 6.0):
        process = subprocess.Popen(
            [str(cci), "link", "--database-url", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        finished = process.poll() is not None
        if not finished:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        after = state(url)
        if after != before:  # only a run that committed may change anything
            with engine.connect() as c:
                statuses = list(c.scalars(select(LinkageRun.status).order_by(LinkageRun.id)))
            assert statuses[-1] == "succeeded"
            outcomes.append("completed")
            break
        outcomes.append("killed" if not finished else "finished")
    assert "killed" in outcomes  # the test did interrupt at least one run

    report = link_registry(engine)
    with engine.connect() as c:
        statuses = list(c.scalars(select(LinkageRun.status).order_by(LinkageRun.id)))
    assert statuses[-1] == "succeeded" and "running" not in statuses
    assert report.stats["records"] > 5000
    engine.dispose()
