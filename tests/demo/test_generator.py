"""The synthetic population: deterministic, valid identifiers, realistic errors at their rates,
hard negatives (twins, siblings) and a second delivery with stable child ids."""

from __future__ import annotations

import csv
import random
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pytest
from stdnum.gb import nhs, upn

from linkage.contract import RAW_COLUMNS
from linkage.demo import (
    DEFAULT_TODAY,
    ErrorRates,
    RawRecord,
    first_extract_date,
    generate,
    iter_records,
    population,
    raw_rows,
)
from linkage.demo import corruptions as c
from linkage.demo import deliveries as d
from linkage.demo.identifiers import RecordIds
from linkage.demo.names import tables
from linkage.pseudonymise.normalise import (
    normalise_local_id,
    normalise_name,
    normalise_postcode,
    parse_date_of_birth,
)

CHILDREN = 12_000
SEED = 3


@pytest.fixture(scope="module")
def first() -> list[RawRecord]:
    return list(iter_records(CHILDREN, seed=SEED))


@pytest.fixture(scope="module")
def second() -> list[RawRecord]:
    return list(iter_records(CHILDREN, seed=SEED, delivery=2))


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    for name, seed in (("a", 9), ("b", 9), ("c", 10)):
        generate(tmp_path / name, 600, seed=seed)
    for name in ("records.csv", "truth.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "records.csv").read_bytes() != (
        tmp_path / "c" / "records.csv"
    ).read_bytes()
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]  # no scratch


def test_files_follow_the_contract_and_truth_covers_every_record(tmp_path: Path) -> None:
    summary = generate(tmp_path, 800, seed=4)
    with (tmp_path / "records.csv").open(encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == list(RAW_COLUMNS)
    records = _read(tmp_path / "records.csv")
    truth = _read(tmp_path / "truth.csv")
    keys = [(r["source_system"], r["record_id"]) for r in records]
    assert len(set(keys)) == len(keys) == summary.total
    assert {(t["source_system"], t["record_id"]) for t in truth} == set(keys)
    assert len(truth) == len(records)
    assert {r["source_system"] for r in records} == {"health", "education", "social_care"}
    assert {r["restricted"] for r in records} <= {"", "true"}


def test_split_by_source_writes_one_file_per_source(tmp_path: Path) -> None:
    summary = generate(tmp_path, 500, seed=5, split_by_source=True)
    assert not (tmp_path / "records.csv").exists()
    total = 0
    for source in ("health", "education", "social_care"):
        rows = _read(tmp_path / f"{source}.csv")
        assert rows and {r["source_system"] for r in rows} == {source}
        total += len(rows)
    assert total == summary.total == len(_read(tmp_path / "truth.csv"))


def test_raw_rows_are_contract_dicts() -> None:
    rows = list(raw_rows(50, seed=1))
    assert rows and all(list(row) == list(RAW_COLUMNS) for row in rows)


def test_identifiers_are_valid_except_the_deliberate_errors(first: list[RawRecord]) -> None:
    bad_nhs = 0
    for record in first:
        row = record.as_dict()
        if row["nhs_number"]:
            valid = nhs.checksum(row["nhs_number"]) == 0
            assert valid == (c.NHS_BAD_CHECK not in record.errors)
            bad_nhs += not valid
        if row["upn"]:
            assert upn.is_valid(row["upn"]), row["upn"]
        if row["la_child_id"]:
            assert normalise_local_id(row["la_child_id"])
        if row["postcode"]:
            assert normalise_postcode(row["postcode"]), row["postcode"]
        else:
            assert c.POSTCODE_MISSING in record.errors
    assert bad_nhs > 0
    education = [r.as_dict() for r in first if r.source_system == "education"]
    assert all(row["upn"] for row in education)  # UPN always in the school census
    social_care = [r.as_dict() for r in first if r.source_system == "social_care"]
    assert all(row["la_child_id"] for row in social_care)


def test_upn_la_number_matches_the_home_district() -> None:
    people = population(2000, SEED, first_extract_date(DEFAULT_TODAY))
    for child in people:
        assert int(child.upn[1:4]) == child.household.district.la_number


def test_ages_are_0_to_17_and_dates_in_the_past() -> None:
    extract = first_extract_date(DEFAULT_TODAY)
    people = population(5000, SEED, extract)
    assert all(0 < child.age_days(extract) < 18 * 365.25 for child in people)
    ages = Counter(child.age_days(extract) // 365 for child in people)
    assert set(ages) == set(range(18)) and min(ages.values()) > 0.5 * 5000 / 18


def test_twins_and_siblings_are_hard_negatives() -> None:
    people = population(CHILDREN, SEED, first_extract_date(DEFAULT_TODAY))
    households = defaultdict(list)
    for child in people:
        households[child.household.number].append(child)
    twins = []
    for members in households.values():
        assert len({ch.family_name for ch in members}) == 1
        assert len({ch.postcode for ch in members}) == 1
        assert len({ch.given_name for ch in members}) == len(members)
        born = Counter(ch.date_of_birth for ch in members)
        twins += [day for day, n in born.items() if n > 1]
    # ~1.5% of births are twins: about 1.5% of children have a twin born with them
    assert 0.007 * CHILDREN < len(twins) < 0.03 * CHILDREN
    assert sum(len(m) > 1 for m in households.values()) > 0.3 * len(households)


def test_record_ids_look_like_agency_keys_and_hold_no_identifier(
    first: list[RawRecord],
) -> None:
    prefixes = {"health": "H", "education": "E", "social_care": "S"}
    for record in first:
        row = record.as_dict()
        rid = row["record_id"]
        assert rid[0] == prefixes[row["source_system"]] and rid[1:].isdigit() and len(rid) == 8
        digits = [row["nhs_number"], row["upn"][1:], row["date_of_birth"].replace("-", "")]
        compact_postcode = row["postcode"].replace(" ", "").upper()
        la_serial = row["la_child_id"].rpartition("-")[2]
        for value in (*digits, compact_postcode, row["given_name"], row["la_child_id"], la_serial):
            assert len(value) < 4 or value not in rid


def test_record_ids_skip_keys_that_would_contain_an_identifier() -> None:
    plain = RecordIds("H", 7, random.Random(1))
    keys = [plain.next() for _ in range(3)]
    guarded = RecordIds("H", 7, random.Random(1))
    assert guarded.next(avoid=("", keys[0][1:5])) == keys[1]  # skipped, never repeated
    assert guarded.next(avoid=(keys[2][1:],)) != keys[2]


# Per-record error rates: (kind, share of records at risk, tolerance factor).
_RECORD_RATES = [
    (c.GIVEN_TYPO, ErrorRates().given_name_typo),
    (c.FAMILY_TYPO, ErrorRates().family_name_typo),
    (c.CASE_NOISE, ErrorRates().case_noise),
    (c.SEX_MISSING, ErrorRates().sex_missing),
    (c.POSTCODE_MISSING, ErrorRates().postcode_missing),
    (c.RESTRICTED, ErrorRates().restricted),
    (c.NAMES_SWAPPED, ErrorRates().names_swapped),
    (c.DOB_COMPONENT, ErrorRates().dob_component_wrong),
]


@pytest.mark.parametrize(("kind", "rate"), _RECORD_RATES)
def test_error_kinds_occur_at_about_their_rates(
    first: list[RawRecord], kind: str, rate: float
) -> None:
    share = sum(kind in r.errors for r in first) / len(first)
    assert 0.5 * rate < share < 1.6 * rate, (kind, share)


def test_every_error_kind_occurs(first: list[RawRecord]) -> None:
    seen = Counter(e for r in first for e in r.errors)
    assert set(c.ERROR_KINDS) - set(seen) == set()


def test_errors_are_what_they_claim(first: list[RawRecord]) -> None:
    people = {
        ch.child_id: ch for ch in population(CHILDREN, SEED, first_extract_date(DEFAULT_TODAY))
    }
    variants = tables().variants
    for record in first:
        row, child = record.as_dict(), people[record.child_id]
        if c.INVALID_ROW in record.errors:
            valid_date = parse_date_of_birth(row["date_of_birth"], today=DEFAULT_TODAY)
            names_ok = normalise_name(row["given_name"]) and normalise_name(row["family_name"])
            assert valid_date is None or not names_ok
            continue
        assert parse_date_of_birth(row["date_of_birth"], today=DEFAULT_TODAY) is not None
        born = date.fromisoformat(row["date_of_birth"])
        if c.DOB_SWAPPED in record.errors:
            assert (born.day, born.month) == (child.date_of_birth.month, child.date_of_birth.day)
        elif c.DOB_COMPONENT not in record.errors:
            assert born == child.date_of_birth
        if record.errors == (c.NICKNAME,):
            assert row["given_name"] in variants[child.given_name]
        if not record.errors:
            assert (row["given_name"], row["family_name"]) == (child.given_name, child.family_name)
            assert row["postcode"] == child.postcode
        if c.STALE_POSTCODE in record.errors and c.POSTCODE_FORMAT not in record.errors:
            assert row["postcode"] in ("", child.household.previous_postcode)


def test_duplicates_within_a_source(first: list[RawRecord]) -> None:
    per_child = Counter((r.child_id, r.source_system) for r in first)
    duplicated = sum(n - 1 for n in per_child.values())
    assert duplicated == sum(c.DUPLICATE in r.errors for r in first)
    assert 0.005 * len(first) < duplicated < 0.02 * len(first)


def test_no_errors_at_rate_zero() -> None:
    clean = list(iter_records(1000, seed=2, rates=ErrorRates().scaled(0)))
    assert {e for r in clean for e in r.errors} <= {c.MIDDLE_MISSING}
    assert all(nhs.checksum(r.values[5]) == 0 for r in clean if r.values[5])


def test_second_delivery_keeps_child_ids_and_adds_changes(
    first: list[RawRecord], second: list[RawRecord]
) -> None:
    before = {(r.source_system, r.record_id): r for r in first}
    after = {(r.source_system, r.record_id): r for r in second}
    assert before.keys() < after.keys()
    assert all(after[k].child_id == r.child_id for k, r in before.items())
    updated = [k for k, r in before.items() if after[k].values != r.values]
    assert 0.01 * len(before) < len(updated) < 0.08 * len(before)
    assert all(after[k].changes for k in updated)
    kinds = Counter(after[k].changes[0] for k in updated)
    assert set(kinds) == {d.MOVED, d.NAME_CORRECTED, d.NHS_TRACED}
    new = [after[k] for k in after.keys() - before.keys()]
    new_kinds = Counter(r.changes[0] for r in new)
    assert set(new_kinds) == {d.STARTED_SCHOOL, d.ENTERED_SOCIAL_CARE, d.BORN}
    # child ids are stable: existing children keep theirs, babies get ids after them
    assert all((int(r.child_id[1:]) > CHILDREN) == (r.changes[0] == d.BORN) for r in new)
    babies = [r for r in new if r.changes[0] == d.BORN]
    first_day = first_extract_date(DEFAULT_TODAY).isoformat()
    assert all(r.source_system == "health" for r in babies)
    assert all(
        first_day < r.as_dict()["date_of_birth"] < DEFAULT_TODAY.isoformat()
        for r in babies
        if c.INVALID_ROW not in r.errors and c.DOB_COMPONENT not in r.errors
    )
    starters = [r for r in new if r.changes[0] == d.STARTED_SCHOOL]
    assert all(r.source_system == "education" and r.as_dict()["upn"] for r in starters)


def test_second_delivery_files_keep_first_delivery_truth(tmp_path: Path) -> None:
    generate(tmp_path / "1", 700, seed=8)
    generate(tmp_path / "2", 700, seed=8, delivery=2)
    one = {
        (t["source_system"], t["record_id"]): t["child_id"]
        for t in _read(tmp_path / "1" / "truth.csv")
    }
    two = {
        (t["source_system"], t["record_id"]): t["child_id"]
        for t in _read(tmp_path / "2" / "truth.csv")
    }
    assert one.items() <= two.items() and len(two) > len(one)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        next(iter_records(10, delivery=3))
    with pytest.raises(ValueError):
        next(iter_records(0))


def test_pseudonymiser_rejects_exactly_the_invalid_rows(tmp_path: Path) -> None:
    from linkage.pseudonymise import generate_key, pseudonymise_file

    summary = generate(tmp_path / "raw", 3000, seed=6)
    result = pseudonymise_file(generate_key(), tmp_path / "raw" / "records.csv", tmp_path / "p.csv")
    assert result.rows_rejected == summary.errors[c.INVALID_ROW] > 0
    assert result.rows_written == summary.total - result.rows_rejected
