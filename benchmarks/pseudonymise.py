"""Pseudonymiser throughput and memory on generated raw rows (goal: >= 50,000 rows/s, flat memory).

    .venv/bin/python benchmarks/pseudonymise.py [--rows 1000000]

Runs in one process (one core). As a baseline measured in the same run, it times reading and
writing the same file with the csv module and no encoding, so the ratio shows what the
encodings themselves cost on this (noisy, shared) machine. Memory is measured at two sizes to
show it stays flat.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

from _measure import measure

from linkage.demo import write_delivery
from linkage.pseudonymise import generate_key, pseudonymise_file


def copy_csv(source: Path, target: Path) -> int:
    with source.open(encoding="utf-8", newline="") as i, target.open("w", newline="") as o:
        writer = csv.writer(o)
        rows = 0
        for row in csv.reader(i):
            writer.writerow(row)
            rows += 1
    return rows


def pseudonymise(source: Path, target: Path) -> int:
    return pseudonymise_file(generate_key(), source, target).rows_read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        children = int(args.rows / 1.8)  # ~1.8 records per child across the three sources
        results = []
        for label, size in (("small", children // 10), ("full", children)):
            write_delivery(size, folder / label, seed=1)
            raw = folder / label / "records.csv"
            copy_seconds, _, rows = measure(copy_csv, raw, folder / "copy.csv")
            seconds, peak, rows = measure(pseudonymise, raw, folder / f"{label}.out.csv")
            results.append((label, rows, seconds, peak, copy_seconds))
        header = ("run", "rows", "seconds", "rows/s", "peak MiB", "csv copy s", "ratio")
        print("{:<6} {:>10} {:>8} {:>9} {:>9} {:>10} {:>6}".format(*header))
        for label, rows, seconds, peak, copy_seconds in results:
            print(
                f"{label:<6} {rows:>10,} {seconds:>8.1f} {rows / seconds:>9,.0f} {peak:>9.0f} "
                f"{copy_seconds:>10.1f} {seconds / copy_seconds:>6.1f}"
            )


if __name__ == "__main__":
    main()
