"""Ingest throughput and peak memory of pseudonymised rows into SQLite and PostgreSQL.

    .venv/bin/python benchmarks/ingest.py [--rows 1000000] [--postgres URL]

Generates pseudonymised rows directly per the record contract (no raw data, no pseudonymiser):
names, dates of birth and postcodes are drawn with a skew from pools of attribute values, each
carrying all its derived tokens, so tokens repeat as they do in real deliveries; NHS number
ciphertexts, UPNs and record ids are unique. Each step runs in a fresh process, so peak RSS is
the step's own (plus what the small parent held when it started the step). Steps: a bare
pysqlite executemany into an unindexed table (the floor any ingest could reach on this
machine), then for SQLite and (when reachable) a fresh PostgreSQL database: the first load, an
unchanged reload (the idempotent path) and a delivery in which 10% of the records changed.
"""

from __future__ import annotations

import argparse
import base64
import csv
import random
import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from _measure import measure
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from linkage.contract import COLUMN_TYPES, ENCODING_VERSION, PSEUDONYMISED_COLUMN_NAMES
from linkage.store import ingest_files, make_engine

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CHUNK = 100_000
KEY_ID = "kbench0000000001"
SOURCES = (("health", "H", 0.45), ("education_leeds", "E", 0.35), ("social_care_leeds", "S", 0.2))


def _token(rng: random.Random) -> int:
    return rng.getrandbits(64) - (1 << 63)


def _pool(rng: random.Random, size: int, columns: list[str]) -> list[dict[str, Any]]:
    """`size` attribute values, each with every token derived from it."""
    pool = []
    for _ in range(size):
        entry: dict[str, Any] = {}
        for name in columns:
            if COLUMN_TYPES[name] == "int64_set":
                entry[name] = " ".join(
                    str(t) for t in sorted(_token(rng) for _ in range(rng.randint(1, 3)))
                )
            else:
                entry[name] = _token(rng)
        pool.append(entry)
    return pool


def _group(prefix: str) -> list[str]:
    return [n for n in PSEUDONYMISED_COLUMN_NAMES if n.startswith(prefix)]


class Population:
    """Pools of names, dates and postcodes, drawn with a skew (a few common values)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.pools = {
            "given_name": _pool(self.rng, 8_000, _group("given_name")),
            "middle_name": _pool(self.rng, 8_000, _group("middle_name")),
            "family_name": _pool(self.rng, 30_000, _group("family_name")),
            "dob": _pool(self.rng, 6_600, _group("dob")),
            "postcode": _pool(self.rng, 60_000, _group("postcode")),
        }

    def pick(self, group: str, rng: random.Random | None = None) -> dict[str, Any]:
        pool = self.pools[group]
        draw = (rng or self.rng).random()
        return pool[int(len(pool) * draw**2)]  # skewed: squaring favours the low ids

    def row(self, number: int, source: tuple[str, str, float]) -> dict[str, Any]:
        rng = self.rng
        code, prefix, _ = source
        row: dict[str, Any] = dict.fromkeys(PSEUDONYMISED_COLUMN_NAMES)
        row.update(self.pick("given_name"), **self.pick("family_name"), **self.pick("dob"))
        if rng.random() < 0.3:
            row.update(self.pick("middle_name"))
        if rng.random() < 0.9:
            row.update(self.pick("postcode"))
        row.update(
            source_system=code,
            record_id=f"{prefix}{number:09d}",
            key_id=KEY_ID,
            encoding_version=ENCODING_VERSION,
            sex=rng.choice("FFFMMMU"),
            restricted=rng.random() < 0.01,
        )
        if code == "health" or rng.random() < 0.2:
            row["nhs_number_enc"] = base64.urlsafe_b64encode(rng.randbytes(26)).decode()
        if code.startswith("education"):
            row["upn_tok"] = _token(rng)
        if code.startswith("social_care"):
            row["la_child_id_tok"] = _token(rng)
        return row


SCHEMA = pa.schema(
    [
        (n, {"int64": pa.int64(), "bool": pa.bool_()}.get(COLUMN_TYPES[n], pa.string()))
        for n in PSEUDONYMISED_COLUMN_NAMES
    ]
)


def write_rows(path: Path, rows: int, seed: int, change: float = 0.0) -> None:
    """`rows` records; with `change` > 0 the same records, that share re-drawn (a new delivery)."""
    population = Population(seed)
    sources = random.Random(seed + 1)
    changes = random.Random(seed + 2)  # its own stream, so unchanged rows stay identical
    weights = [w for _, _, w in SOURCES]
    options = pacsv.WriteOptions(quoting_style="none")
    with pacsv.CSVWriter(path, SCHEMA, write_options=options) as writer:
        for start in range(0, rows, CHUNK):
            chunk = []
            for number in range(start, min(start + CHUNK, rows)):
                row = population.row(number, sources.choices(SOURCES, weights)[0])
                if changes.random() < change:
                    row.update(population.pick("postcode", changes))
                chunk.append(row)
            writer.write_table(pa.Table.from_pylist(chunk, schema=SCHEMA))


def bare_sqlite(path: Path, database: Path) -> int:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        connection = sqlite3.connect(database)
        connection.execute(f"CREATE TABLE t ({', '.join(header)})")
        marks = ", ".join("?" for _ in header)
        connection.executemany(f"INSERT INTO t VALUES ({marks})", reader)
        connection.commit()
        count = connection.execute("SELECT count(*) FROM t").fetchone()[0]
        connection.close()
    return int(count)


def ingest(url: str, path: Path) -> tuple[int, int, int]:
    engine = make_engine(url)
    try:
        summary = ingest_files(engine, [path])
    finally:
        engine.dispose()
    return summary.records_added, summary.versions_added, summary.unchanged


def fresh_postgres(admin_url: str) -> tuple[str, Callable[[], None]] | None:
    """A new database on the server (and how to drop it), or None when unreachable."""
    name = f"cci_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        print(f"PostgreSQL not reachable at {admin_url} ({exc.__class__.__name__}); SQLite only")
        admin.dispose()
        return None

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=POSTGRES, help="server to create a database on")
    args = parser.parse_args()
    rows = args.rows
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        first, changed = folder / "delivery1.csv", folder / "delivery2.csv"
        # Generated in child processes too: on Linux a child's peak RSS starts from its
        # parent's at fork, so the parent must stay small for the figures below to be true.
        measure(write_rows, first, rows, 7)
        measure(write_rows, changed, rows, 7, 0.1)
        size = first.stat().st_size / 2**20
        print(f"{rows:,} pseudonymised rows ({size:,.0f} MiB CSV)")
        seconds, peak, _ = measure(bare_sqlite, first, folder / "bare.db")
        print(f"{'bare sqlite executemany':<34} {seconds:6.1f} s {rows / seconds:>9,.0f} rows/s")
        targets = [("sqlite", f"sqlite:///{folder / 'registry.db'}", None)]
        postgres = fresh_postgres(args.postgres)
        if postgres is not None:
            targets.append(("postgresql", *postgres))
        for label, url, drop in targets:
            try:
                for step, path in (
                    ("first load", first),
                    ("unchanged reload", first),
                    ("10% changed", changed),
                ):
                    seconds, peak, (added, versions, same) = measure(ingest, url, path)
                    print(
                        f"{label:<11} {step:<22} {seconds:6.1f} s {rows / seconds:>9,.0f} rows/s"
                        f" | peak RSS {peak:5,.0f} MiB | +{added:,} records +{versions:,}"
                        f" versions, {same:,} unchanged"
                    )
            finally:
                if drop is not None:
                    drop()


if __name__ == "__main__":
    main()
