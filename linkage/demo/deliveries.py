"""Raw records as agencies deliver them, with ground truth; a second delivery for stability.

Delivery 1: every source's records about the population. Delivery 2 (same seed): the same
records, some updated (house moves, corrected names), new records for existing children
(starting school, entering social care), and records of children born since.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from linkage.contract import RAW_COLUMNS
from linkage.demo.corruptions import ErrorRates, corrupt, invalidate, wrong_nhs_number
from linkage.demo.population import Child, population, postcode

DEFAULT_TODAY = date(2026, 11, 22)
SOURCES = ("health", "education", "social_care")
PREFIX = {"health": "H", "education": "E", "social_care": "S"}
BIRTHS_SHARE = 0.02  # children born between the deliveries, as a share of the population


@dataclass(frozen=True)
class RawRecord:
    child_id: str
    values: dict[str, str]  # RAW_COLUMNS -> text


@dataclass
class Counts:
    records: Counter[str] = field(default_factory=Counter)
    children: int = 0


def _record(
    rng: random.Random, rates: ErrorRates, child: Child, source: str, record_id: str, today: date
) -> RawRecord:
    row = corrupt(rng, rates, child, today)
    row["source_system"] = source
    row["record_id"] = record_id
    if source == "health":
        row["nhs_number"] = wrong_nhs_number(rng, rates, child.nhs_number)
    elif source == "education":
        row["upn"] = child.upn
        row["nhs_number"] = child.nhs_number if rng.random() < 0.3 else ""
        row["la_child_id"] = child.la_child_id if rng.random() < 0.1 else ""
    else:
        row["la_child_id"] = child.la_child_id
        row["nhs_number"] = child.nhs_number if rng.random() < 0.6 else ""
        row["upn"] = child.upn if rng.random() < 0.3 else ""
    if rng.random() < rates.invalid_row:
        invalidate(rng, row)
    return RawRecord(child.child_id, {c: row.get(c, "") for c in RAW_COLUMNS})


def _sources_of(child: Child, rng: random.Random) -> list[str]:
    held = []
    if rng.random() < 0.97:
        held.append("health")
    if child.upn and rng.random() < 0.95:
        held.append("education")
    if child.in_social_care:
        held.append("social_care")
    return held


def generate_records(
    children: int,
    *,
    seed: int = 7,
    delivery: int = 1,
    rates: ErrorRates | None = None,
    today: date = DEFAULT_TODAY,
) -> Iterator[RawRecord]:
    """Every raw record of the delivery with its child id, in a stable order."""
    rates = rates or ErrorRates()
    births = max(1, int(children * BIRTHS_SHARE))
    people = population(children + births, seed, today)
    born_later = {c.child_id for c in people[children:]}
    first_day = today - timedelta(days=90)  # delivery 1 was taken 90 days before delivery 2
    counters: Counter[str] = Counter()

    def next_id(source: str) -> str:
        counters[source] += 1
        return f"{PREFIX[source]}{counters[source]:07d}"

    rng = random.Random(f"records/{seed}")
    updates = random.Random(f"delivery2/{seed}")
    for child in people:
        if child.child_id in born_later:
            continue
        for source in _sources_of(child, rng):
            record = _record(rng, rates, child, source, next_id(source), first_day)
            if delivery == 2 and updates.random() < 0.03:
                record = _update(updates, rates, child, record, today)
            yield record
            if rng.random() < rates.duplicate_in_source:
                yield _record(rng, rates, child, source, next_id(source), first_day)
    if delivery == 1:
        return
    # Delivery 2 only: new records of existing children, then newborns.
    for child in people:
        if child.child_id in born_later:
            continue
        if updates.random() < 0.01:
            source = "social_care" if not child.in_social_care else "education"
            if source == "education" and not child.upn:
                continue
            yield _record(updates, rates, child, source, next_id(source), today)
    for child in people[children:]:
        child.date_of_birth = today - timedelta(days=updates.randint(1, 80))
        child.upn = ""
        yield _record(updates, rates, child, "health", next_id("health"), today)


def _update(
    rng: random.Random, rates: ErrorRates, child: Child, record: RawRecord, today: date
) -> RawRecord:
    """The same record re-sent with a change: a house move or a corrected name."""
    values = dict(record.values)
    if rng.random() < 0.6:
        values["postcode"] = postcode(rng)
    else:
        values["given_name"], values["family_name"] = child.given_name, child.family_name
    return RawRecord(record.child_id, values)


def write_delivery(
    children: int,
    out: Path,
    *,
    seed: int = 7,
    delivery: int = 1,
    split_by_source: bool = False,
    rates: ErrorRates | None = None,
) -> Counts:
    """Write records (one shuffled file, or one per source) and truth.csv into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    records = list(generate_records(children, seed=seed, delivery=delivery, rates=rates))
    random.Random(f"shuffle/{seed}/{delivery}").shuffle(records)
    counts = Counts(children=len({r.child_id for r in records}))
    names = list(SOURCES) if split_by_source else ["records"]
    handles = {n: (out / f"{n}.csv").open("w", encoding="utf-8", newline="") for n in names}
    try:
        writers = {n: csv.writer(h, lineterminator="\n") for n, h in handles.items()}
        for writer in writers.values():
            writer.writerow(RAW_COLUMNS)
        with (out / "truth.csv").open("w", encoding="utf-8", newline="") as truth_handle:
            truth = csv.writer(truth_handle, lineterminator="\n")
            truth.writerow(["source_system", "record_id", "child_id"])
            for record in records:
                source = record.values["source_system"]
                writers[source if split_by_source else "records"].writerow(
                    [record.values[c] for c in RAW_COLUMNS]
                )
                truth.writerow([source, record.values["record_id"], record.child_id])
                counts.records[source] += 1
    finally:
        for handle in handles.values():
            handle.close()
    return counts
