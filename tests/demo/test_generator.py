"""The synthetic population: deterministic, valid identifiers, hard negatives, two deliveries."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from stdnum.gb import nhs, upn

from linkage.demo import generate_records, write_delivery

CHILDREN = 3000


@pytest.fixture(scope="module")
def first() -> list:  # type: ignore[type-arg]
    return list(generate_records(CHILDREN, seed=3))


def test_same_seed_same_files(tmp_path: Path) -> None:
    write_delivery(500, tmp_path / "a", seed=9)
    write_delivery(500, tmp_path / "b", seed=9)
    for name in ("records.csv", "truth.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    write_delivery(500, tmp_path / "c", seed=10)
    assert (tmp_path / "a" / "records.csv").read_bytes() != (
        tmp_path / "c" / "records.csv"
    ).read_bytes()


def test_identifiers_are_valid_except_the_deliberate_errors(first: list) -> None:  # type: ignore[type-arg]
    nhs_numbers = [r.values["nhs_number"] for r in first if r.values["nhs_number"]]
    invalid = sum(1 for n in nhs_numbers if nhs.checksum(n) != 0)
    assert 0 < invalid < 0.01 * len(nhs_numbers)  # bad check digits, at their small rate
    upns = [r.values["upn"] for r in first if r.values["upn"]]
    assert upns and all(upn.is_valid(u) for u in upns)


def test_twins_share_dob_surname_and_home_but_not_given_name(first: list) -> None:  # type: ignore[type-arg]
    from linkage.demo.deliveries import DEFAULT_TODAY
    from linkage.demo.population import population

    people = population(CHILDREN, 3, DEFAULT_TODAY)
    groups = defaultdict(list)
    for child in people:
        groups[(child.household, child.date_of_birth)].append(child)
    twins = [g for g in groups.values() if len(g) > 1]
    assert len(twins) >= 5
    for pair in twins:
        assert len({c.family_name for c in pair}) == 1 and len({c.postcode for c in pair}) == 1
        assert len({c.given_name for c in pair}) == len(pair)


def test_truth_covers_every_record_and_ids_hold_no_identifier(tmp_path: Path) -> None:
    write_delivery(800, tmp_path, seed=4)
    with (tmp_path / "records.csv").open(encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    with (tmp_path / "truth.csv").open(encoding="utf-8") as handle:
        truth = {(r["source_system"], r["record_id"]) for r in csv.DictReader(handle)}
    assert {(r["source_system"], r["record_id"]) for r in records} == truth
    assert len(truth) == len(records)
    for record in records:
        rid = record["record_id"]
        assert rid[0] in "HES" and rid[1:].isdigit() and len(rid) == 8
        for value in (
            record["nhs_number"],
            record["upn"],
            record["postcode"],
            record["date_of_birth"],
        ):
            assert not value or value not in rid


def test_error_kinds_occur(first: list) -> None:  # type: ignore[type-arg]
    rejected_dates = sum(1 for r in first if r.values["date_of_birth"] == "2019-02-30")
    empty_names = sum(1 for r in first if not r.values["given_name"])
    assert rejected_dates > 0 and empty_names > 0
    per_child = Counter((r.child_id, r.values["source_system"]) for r in first)
    assert any(n > 1 for n in per_child.values())  # duplicates within a source
    spaced = sum(1 for r in first if r.values["postcode"] and " " not in r.values["postcode"])
    assert 0.02 * len(first) < spaced < 0.3 * len(first)
    restricted = sum(1 for r in first if r.values["restricted"] == "true")
    assert 0 < restricted < 0.02 * len(first)


def test_second_delivery_keeps_child_ids_and_adds_changes(first: list) -> None:  # type: ignore[type-arg]
    second = list(generate_records(CHILDREN, seed=3, delivery=2))
    before = {(r.values["source_system"], r.values["record_id"]): r for r in first}
    after = {(r.values["source_system"], r.values["record_id"]): r for r in second}
    assert before.keys() < after.keys()
    assert all(after[k].child_id == r.child_id for k, r in before.items())
    updated = sum(1 for k, r in before.items() if after[k].values != r.values)
    assert 0.01 * len(before) < updated < 0.06 * len(before)
    known = {r.child_id for r in first}
    new_records = [after[k] for k in after.keys() - before.keys()]
    assert any(r.child_id in known for r in new_records)  # existing children, new records
    assert any(r.child_id not in known for r in new_records)  # births
