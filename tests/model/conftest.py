"""Hand-made children and perturbed copies: every comparison level gets exercised."""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
import pytest
from stdnum.gb.upn import calc_check_digit as upn_check_letter

from linkage.contract import PSEUDONYMISED_COLUMN_NAMES
from linkage.pseudonymise import LinkageKey, RecordEncoder

BASE = [
    ("William", "John", "Smith", "2015-03-07", "M", "LS6 1AB", "9434765919"),
    ("Aisha", "", "Khan", "2012-11-02", "F", "B12 9QP", "4010232137"),
    ("Mohammed", "Ali", "Hussain", "2010-05-09", "M", "M14 5RT", "4505577104"),
    ("Zoë", "", "O'Brien", "2018-12-25", "F", "E17 4LX", "9990001237"),
    ("Oliwia", "Anna", "Kowalska", "2016-01-12", "F", "NG7 2BD", ""),
    ("Chidera", "", "Okafor", "2011-07-07", "M", "SE15 3QB", ""),
    ("Elizabeth", "Rose", "Richardson", "2009-02-10", "F", "BS5 6XX", ""),
    ("Alexander", "", "Smith-Jones", "2013-09-30", "M", "SW2 1AA", ""),
]


def _variants(rng: random.Random) -> list[tuple[str, ...]]:
    """Each base child plus copies with the errors agencies make."""
    out: list[tuple[str, ...]] = []
    for given, middle, family, dob, sex, postcode, nhs in BASE:
        y, m, d = dob.split("-")
        typo = family[:-2] + family[-1] + family[-2]
        out += [
            (given, middle, family, dob, sex, postcode, nhs),
            (given.upper(), "", family.lower(), dob, "", postcode.replace(" ", ""), ""),
            (
                {
                    "William": "Bill",
                    "Elizabeth": "Liz",
                    "Mohammed": "Muhammad",
                    "Alexander": "Alex",
                    "Aisha": "Ayesha",
                }.get(given, given + "a"),
                middle,
                family,
                dob,
                sex,
                postcode,
                nhs,
            ),
            (given, middle, typo, dob, sex, postcode[:-2] + "ZZ", ""),
            (family, "", given, dob, sex, "", ""),  # swapped names
            (
                given,
                middle,
                family,
                f"{y}-{d}-{m}" if int(d) <= 12 else f"{y}-{m}-{int(d) % 28 + 1:02d}",
                sex,
                postcode,
                "",
            ),  # transposed, or one day out
            (given, middle, family, f"{int(y) - 1}-{m}-{d}", sex, postcode, ""),
            (middle or given, given, family, dob, sex, postcode[:-3] + "9ZZ", ""),
            (rng.choice(["Amelia", "Jack", "Noah"]), "", family, dob, sex, postcode, ""),  # twin
            (given + "k", middle, family + "k", dob, sex, postcode, ""),  # one letter more
            (given + "zq", middle, family, dob, sex, postcode, ""),  # two letters more
        ]
    return out


@pytest.fixture(scope="session")
def perturbed_records() -> pa.Table:
    encoder = RecordEncoder(LinkageKey(secret=bytes(range(32))))
    rows: list[dict[str, Any]] = []
    variants = _variants(random.Random(5))
    per_child = len(variants) // len(BASE)
    for number, (given, middle, family, dob, sex, postcode, nhs) in enumerate(variants, 1):
        child, variant = divmod(number - 1, per_child)
        # identifiers: variants 0 and 2 agree, variant 3 carries another value, others none
        upn_body = f"801{child:08d}{int(variant == 3)}"
        upn = upn_check_letter(upn_body) + upn_body if variant in (0, 2, 3) else ""
        local = f"LA{child}{'X' * (variant == 3)}" if variant in (0, 1, 3) else ""
        raw = {
            "source_system": "health",
            "record_id": f"R{number}",
            "given_name": given,
            "middle_names": middle,
            "family_name": family,
            "date_of_birth": dob,
            "sex": sex,
            "postcode": postcode,
            "nhs_number": nhs,
            "upn": upn,
            "la_child_id": local,
        }
        encoded, _ = encoder.encode(raw)
        row = dict(zip(PSEUDONYMISED_COLUMN_NAMES, encoded.values(), strict=True))
        row["given_name_canon"] = list(row["given_name_canon"])
        row["unique_id"] = number
        rows.append(row)
    return pa.Table.from_pylist(rows)
