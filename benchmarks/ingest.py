"""Ingest throughput of pseudonymised rows into SQLite and PostgreSQL.

    .venv/bin/python benchmarks/ingest.py [--rows 1000000] [--postgres URL]

Generates raw rows, pseudonymises them once, then loads the file into a fresh SQLite file and
a fresh PostgreSQL database (when reachable), and loads it again to time the idempotent
no-change path. Baseline in the same run: a bare pysqlite executemany of the same rows into a
table with no indexes, the floor any ingest could reach.
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
import tempfile
import uuid
from pathlib import Path

from _measure import measure
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from linkage.demo import write_delivery
from linkage.pseudonymise import generate_key, pseudonymise_file
from linkage.store import ingest_files, make_engine

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def ingest_twice(url: str, path: Path) -> tuple[float, float]:
    engine = make_engine(url)
    first = ingest_files(engine, [path])
    second = ingest_files(engine, [path])
    engine.dispose()
    return first.seconds, second.seconds


def bare_sqlite(path: Path, database: Path) -> int:
    with path.open(encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        connection = sqlite3.connect(database)
        connection.execute(f"CREATE TABLE t ({', '.join(header)})")
        marks = ", ".join("?" for _ in header)
        connection.executemany(f"INSERT INTO t VALUES ({marks})", reader)
        connection.commit()
        rows = connection.execute("SELECT count(*) FROM t").fetchone()[0]
        connection.close()
    return int(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=POSTGRES)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_delivery(int(args.rows / 1.8), folder / "raw", seed=2)
        pseudo = folder / "pseudo.csv"
        rows = pseudonymise_file(
            generate_key(), folder / "raw" / "records.csv", pseudo
        ).rows_written
        base_seconds, _, _ = measure(bare_sqlite, pseudo, folder / "bare.db")
        print(
            f"{rows:,} pseudonymised rows; bare sqlite executemany: {base_seconds:.1f} s "
            f"({rows / base_seconds:,.0f} rows/s)"
        )
        targets = [("sqlite", f"sqlite:///{folder / 'registry.db'}")]
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        name = f"cci_bench_{uuid.uuid4().hex[:8]}"
        try:
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
            targets.append(
                ("postgresql", make_url(args.postgres).set(database=name).render_as_string(False))
            )
        except Exception as exc:
            print(f"PostgreSQL not reachable ({exc.__class__.__name__}); SQLite only")
        try:
            for label, url in targets:
                _, peak, (first, second) = measure(ingest_twice, url, pseudo)
                print(
                    f"{label:<11} first load {first:6.1f} s {rows / first:>9,.0f} rows/s "
                    f"({first / base_seconds:.1f}x bare) | unchanged reload {second:5.1f} s "
                    f"{rows / second:>9,.0f} rows/s | peak {peak:,.0f} MiB"
                )
        finally:
            if len(targets) > 1:
                with admin.connect() as c:
                    c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
