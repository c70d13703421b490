"""End-to-end linkage time against plain Splink on the same records in clear, in one run.

    .venv/bin/python benchmarks/link.py [--children 560000] [--delivery 0.01]   # ~1,000,000 records
        [--database postgresql://postgres@127.0.0.1:5432/test]

Service: ingest + train + score + cluster + assign + events (`cci link --input`'s
`link_files` on a fresh registry: an SQLite file, or with --database a new database made on
that PostgreSQL server and dropped afterwards), then a re-run after a delivery of new and
changed records (1% of the registry by default). Baseline: plain Splink's train + predict on
the raw values, then Splink's own clustering (connected components at the service's auto-link
weight). Each side runs in its own process so the peak memory figures are its own.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
from _measure import measure
from accuracy import clear_records, plain_splink_predictions
from ingest import fresh_postgres

from linkage.demo import write_delivery
from linkage.identity.clustering import cluster_records
from linkage.link import link_files
from linkage.pseudonymise import generate_key, pseudonymise_file
from linkage.settings import linkage_settings
from linkage.store import batch_engine, database_url

#: The service's auto-link weight: plain Splink's links are the pairs at or above it.
AUTO_LINK = linkage_settings().auto_link_weight


@contextmanager
def fresh_registry(folder: Path, server: str | None) -> Iterator[str]:
    """URL of an empty registry: an SQLite file in `folder`, or a new database on `server`."""
    if server is None:
        yield f"sqlite:///{folder / 'registry.db'}"
        return
    made = fresh_postgres(database_url(server))
    if made is None:
        raise SystemExit(f"no PostgreSQL server at {server}")
    url, drop = made
    try:
        yield url
    finally:
        drop()


def service(folder: str, server: str | None) -> dict[str, Any]:
    base = Path(folder)
    with fresh_registry(base, server) as url:
        return _service(base, url)


def _service(base: Path, url: str) -> dict[str, Any]:
    """What `cci link --input FILE` does, twice: each in the engine `cci link` makes, timed
    until that engine is disposed (after its write-ahead log is folded into the file). The
    first is a first load: the run works on the records while the ingest writes them."""
    started = time.perf_counter()
    with batch_engine(url) as engine:
        ingest, report = link_files(engine, [base / "pseudo.csv"])
    total = time.perf_counter() - started
    rerun_started = time.perf_counter()
    with batch_engine(url) as engine:
        delivered, rerun = link_files(engine, [base / "delta.csv"])
    rerun_total = time.perf_counter() - rerun_started
    return {
        "ingest": ingest.seconds,
        "total": total,
        "stats": report.stats,
        "source": report.model_source,
        "rerun": rerun_total,
        "rerun_stats": rerun.stats,
        "delivered": delivered.rows_read,
    }


def plain(folder: str) -> dict[str, Any]:
    """Plain Splink end to end: train + predict, then Splink's own clustering at the service's
    auto-link weight (connected components in DuckDB). Our plain union-find over the same links
    is timed too: it was this baseline's clusterer before, and took 5 s where Splink's took 1 s
    on a million records."""
    base = Path(folder)
    with (base / "pseudo.csv").open(encoding="utf-8") as handle:
        keep = {(r["source_system"], r["record_id"]) for r in csv.DictReader(handle)}
    records = clear_records(base / "records.csv", keep).drop_columns(["key"])
    started = time.perf_counter()
    linker, predictions = plain_splink_predictions(records)
    train_predict = time.perf_counter() - started
    started = time.perf_counter()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_weight=AUTO_LINK
    ).as_pyarrow_table()
    cluster = time.perf_counter() - started
    started = time.perf_counter()
    pairs = predictions.as_pyarrow_table()
    links = [
        (a, b, w)
        for a, b, w in zip(
            pairs["unique_id_l"].to_pylist(),
            pairs["unique_id_r"].to_pylist(),
            pairs["match_weight"].to_pylist(),
            strict=True,
        )
        if w >= AUTO_LINK
    ]
    ours = cluster_records(records["unique_id"].to_pylist(), links).clusters
    return {
        "train_predict": train_predict,
        "cluster": cluster,
        "clusters": pc.count_distinct(clusters["cluster_id"]).as_py(),
        "union_find": time.perf_counter() - started,
        "union_find_clusters": len(ours),
        "records": records.num_rows,
    }


def write_delta(folder: Path, fraction: float) -> None:
    """`delta.csv`: `fraction` of the first delivery's size, taken evenly from the second
    delivery's new and changed rows: a realistic incremental delivery. A function of its own
    so the rows it holds (1M as Python dictionaries, some 4 GB) are gone before either side is
    measured: kept, they slowed the service's first load from 32 s to 38 s."""
    with (folder / "pseudo.csv").open(encoding="utf-8") as handle:
        first = {(r["source_system"], r["record_id"]): r for r in csv.DictReader(handle)}
    with (
        (folder / "all2.csv").open(encoding="utf-8") as i,
        (folder / "delta.csv").open("w", encoding="utf-8", newline="") as o,
    ):
        reader = csv.DictReader(i)
        changed = [r for r in reader if first.get((r["source_system"], r["record_id"])) != r]
        wanted = min(len(changed), round(fraction * len(first)))
        writer = csv.DictWriter(o, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        writer.writerows(changed[round(i * len(changed) / wanted)] for i in range(wanted))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=560_000)
    parser.add_argument(
        "--delivery",
        type=float,
        default=0.01,
        help="size of the re-run's delivery as a fraction of the first delivery's records "
        "(rows taken evenly from the second delivery's new and changed rows; 1 = all of them)",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="a PostgreSQL server to make the registry on (default: an SQLite file)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_delivery(args.children, folder, seed=3)
        key = generate_key()
        pseudonymise_file(key, folder / "records.csv", folder / "pseudo.csv")
        write_delivery(args.children, folder / "d2", seed=3, delivery=2)
        pseudonymise_file(key, folder / "d2" / "records.csv", folder / "all2.csv")
        write_delta(folder, args.delivery)
        s_seconds, s_peak, ours = measure(service, str(folder), args.database)
        p_seconds, p_peak, base = measure(plain, str(folder))
    stats = ours["stats"]
    store = "PostgreSQL" if args.database else "SQLite"
    print(f"{stats['records']:,} records; registry on {store}; model: {ours['source']}")
    print(
        f"service: ingest and link {ours['total']:.0f} s (the ingest's own {ours['ingest']:.0f} s "
        f"overlapping the run's stages {stats['seconds']}), peak {s_peak:,.0f} MiB"
    )
    print(
        f"plain Splink in clear: train+predict {base['train_predict']:.0f} s + cluster "
        f"{base['cluster']:.1f} s = {base['train_predict'] + base['cluster']:.0f} s, "
        f"peak {p_peak:,.0f} MiB ({base['clusters']:,} clusters; our union-find on the same "
        f"links: {base['union_find']:.1f} s, {base['union_find_clusters']:,} clusters)"
    )
    ratio = ours["total"] / (base["train_predict"] + base["cluster"])
    print(f"ratio service / plain Splink: {ratio:.2f}")
    again = ours["rerun_stats"]
    print(
        f"re-run after a delivery of {ours['delivered']:,} rows "
        f"({ours['delivered'] / stats['records']:.1%} of the registry; "
        f"{again['records'] - stats['records']:,} net new records, the rest updates; "
        f"{again.get('records_scored', 0):,} records scored, "
        f"{again.get('scoring', 'full')}): ingest+link {ours['rerun']:.1f} s = "
        f"{ours['rerun'] / ours['total']:.2f} x the full run (stages {again['seconds']})"
    )
    del s_seconds, p_seconds


if __name__ == "__main__":
    main()
