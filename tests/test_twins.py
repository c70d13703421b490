"""The twin rule keeps twins apart, also when one twin's record has its names swapped."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from linkage.contract import PSEUDONYMISED_COLUMN_NAMES
from linkage.pseudonymise import LinkageKey, RecordEncoder
from linkage.twins import TwinRule


def records(*people: tuple[str, str, str]) -> pa.Table:
    """(given, family, date of birth) each, encoded; unique ids from 1."""
    encoder = RecordEncoder(LinkageKey(secret=bytes(range(32))))
    rows: list[dict[str, Any]] = []
    for number, (given, family, dob) in enumerate(people, 1):
        raw = {
            "source_system": "health",
            "record_id": f"R{number}",
            "given_name": given,
            "middle_names": "",
            "family_name": family,
            "date_of_birth": dob,
            "sex": "",
            "postcode": "CA2 3XJ",
            "nhs_number": "",
            "upn": "",
            "la_child_id": "",
        }
        encoded, _ = encoder.encode(raw)
        row = dict(zip(PSEUDONYMISED_COLUMN_NAMES, encoded.values(), strict=True))
        row["unique_id"] = number
        rows.append(row)
    return pa.Table.from_pylist(rows)


def test_twins_are_apart_also_through_a_record_with_swapped_names() -> None:
    rule = TwinRule(
        records(
            ("Leonardo", "Oliveira", "2022-03-11"),
            ("Lucia", "Oliveira", "2022-03-11"),
            ("Oliveira", "Leonardo", "2022-03-11"),  # Leonardo's names the wrong way round
            ("Leonardo", "Oliveira", "2022-03-11"),
        )
    )
    assert rule(1, 2) and rule(2, 1)
    assert rule(3, 2) and rule(2, 3)  # the swapped record is still Leonardo, not Lucia
    assert not rule(3, 1) and not rule(1, 3)  # a swap of the same child is no twin
    assert not rule(1, 4)  # the same names


def test_different_families_are_no_twins() -> None:
    rule = TwinRule(
        records(("Leonardo", "Oliveira", "2022-03-11"), ("Lucia", "Smith", "2022-03-11"))
    )
    assert not rule(1, 2)


def test_asked_together_or_one_by_one_the_rule_answers_the_same() -> None:
    """`which` reads the records it needs in one go; the answers are the pairwise ones.
    The table comes in several chunks, as a registry snapshot does."""
    table = records(
        ("Leonardo", "Oliveira", "2022-03-11"),
        ("Lucia", "Oliveira", "2022-03-11"),
        ("Oliveira", "Leonardo", "2022-03-11"),
        ("Leonardo", "Oliveira", "2022-03-11"),
        ("Lucia", "Smith", "2022-03-11"),
    )
    chunked = pa.concat_tables([table.slice(0, 2), table.slice(2, 2), table.slice(4)])
    pairs = [(a, b) for a in range(1, 6) for b in range(1, 6) if a != b]
    expected = [TwinRule(table)(a, b) for a, b in pairs]
    assert TwinRule(chunked).which(pairs) == expected
    assert sum(expected) == 6  # Lucia against each Leonardo record, each way
