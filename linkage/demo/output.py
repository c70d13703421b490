"""Writing a delivery: raw records as CSV (one shuffled file, or one per source) and truth.csv.

Records are generated household by household, so the file order would give the truth away;
they are shuffled before writing. Large deliveries are shuffled through temporary bucket
files (random bucket, then an in-memory shuffle per bucket), so memory stays bounded.
"""

from __future__ import annotations

import csv
import random
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO

from linkage.contract import RAW_COLUMNS
from linkage.demo.corruptions import ErrorRates
from linkage.demo.deliveries import DEFAULT_TODAY, ChangeRates, iter_records
from linkage.demo.records import SOURCES

TRUTH_COLUMNS = ("source_system", "record_id", "child_id")
#: Records per shuffle bucket held in memory at once.
_BUCKET_RECORDS = 250_000


@dataclass
class Summary:
    """What was written: counts per source, per error kind and per change kind."""

    children: int = 0
    records: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)
    files: list[Path] = field(default_factory=list)
    truth: Path | None = None

    @property
    def total(self) -> int:
        return sum(self.records.values())


def raw_rows(
    children: int,
    *,
    seed: int = 7,
    delivery: int = 1,
    rates: ErrorRates | None = None,
    changes: ChangeRates | None = None,
    today: date = DEFAULT_TODAY,
) -> Iterator[dict[str, str]]:
    """The delivery's raw rows as dicts of RAW_COLUMNS (like csv.DictReader gives), without
    writing anything; in generation order, not shuffled. For benchmarks and tests."""
    for record in iter_records(
        children, seed=seed, delivery=delivery, rates=rates, changes=changes, today=today
    ):
        yield dict(zip(RAW_COLUMNS, record.values, strict=True))


def generate(
    out: Path | str,
    children: int = 2000,
    *,
    seed: int = 7,
    delivery: int = 1,
    split_by_source: bool = False,
    rates: ErrorRates | None = None,
    changes: ChangeRates | None = None,
    today: date = DEFAULT_TODAY,
) -> Summary:
    """Write the delivery into `out`: `records.csv` (or `health.csv`, `education.csv`,
    `social_care.csv`) and `truth.csv` (source_system,record_id,child_id)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = Summary()
    names = list(SOURCES) if split_by_source else ["records"]
    summary.files = [out / f"{name}.csv" for name in names]
    summary.truth = out / "truth.csv"
    buckets = 1 + (children * 2) // _BUCKET_RECORDS
    shuffle = random.Random(f"cci-demo/shuffle/{seed}/{delivery}")
    children_seen: set[str] = set()
    records = iter_records(
        children, seed=seed, delivery=delivery, rates=rates, changes=changes, today=today
    )
    per_source, error_counts, change_counts = summary.records, summary.errors, summary.changes
    with tempfile.TemporaryDirectory(dir=out, prefix=".demo-") as scratch:
        spill = [Path(scratch) / f"{i}.csv" for i in range(buckets)]
        handles: list[IO[str]] = [p.open("w", encoding="utf-8", newline="") for p in spill]
        try:
            writers = [csv.writer(h, lineterminator="\n") for h in handles]
            rand = shuffle.random
            for record in records:
                writers[int(rand() * buckets)].writerow((record.child_id, *record.values))
                per_source[record.values[0]] += 1
                for kind in record.errors:  # a loop: Counter.update costs more per record
                    error_counts[kind] += 1
                for kind in record.changes:
                    change_counts[kind] += 1
                children_seen.add(record.child_id)
        finally:
            for handle in handles:
                handle.close()
        summary.children = len(children_seen)
        _write_shuffled(spill, summary, split_by_source, shuffle)
    return summary


def _write_shuffled(
    spill: list[Path], summary: Summary, split_by_source: bool, shuffle: random.Random
) -> None:
    outputs = {p.stem: p.open("w", encoding="utf-8", newline="") for p in summary.files}
    assert summary.truth is not None
    truth = summary.truth.open("w", encoding="utf-8", newline="")
    try:
        header = ",".join(RAW_COLUMNS) + "\n"
        for handle in outputs.values():
            handle.write(header)
        truth.write(",".join(TRUTH_COLUMNS) + "\n")
        for path in spill:
            with path.open(encoding="utf-8", newline="") as handle:
                lines = handle.readlines()
            shuffle.shuffle(lines)
            for line in lines:
                child_id, row = line.split(",", 1)
                source, record_id, _ = row.split(",", 2)
                outputs[source if split_by_source else "records"].write(row)
                truth.write(f"{source},{record_id},{child_id}\n")
            path.unlink()
    finally:
        truth.close()
        for handle in outputs.values():
            handle.close()


def write_delivery(
    children: int,
    out: Path | str,
    *,
    seed: int = 7,
    delivery: int = 1,
    split_by_source: bool = False,
    rates: ErrorRates | None = None,
    changes: ChangeRates | None = None,
    today: date = DEFAULT_TODAY,
) -> Summary:
    """`generate` with the population size first (kept for existing callers)."""
    return generate(
        out,
        children,
        seed=seed,
        delivery=delivery,
        split_by_source=split_by_source,
        rates=rates,
        changes=changes,
        today=today,
    )
