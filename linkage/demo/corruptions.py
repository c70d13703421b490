"""The errors real agency data has, applied to a child's true details when recording them."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import date

from linkage.demo.names import VARIANTS
from linkage.demo.population import FAMILY_NAMES, Child, nhs_number


@dataclass(frozen=True)
class ErrorRates:
    """Share of records with each kind of error (defaults are plausible, not measured)."""

    typo: float = 0.04
    short_or_variant_name: float = 0.06
    names_swapped: float = 0.01
    surname_changed: float = 0.015
    surname_hyphenated: float = 0.01
    formatting_noise: float = 0.15
    dob_transposed: float = 0.008
    dob_component_wrong: float = 0.012
    old_postcode: float = 0.5  # of records of children who moved
    postcode_missing: float = 0.04
    postcode_formatting: float = 0.25
    sex_missing: float = 0.03
    nhs_wrong_valid: float = 0.005
    nhs_bad_check_digit: float = 0.003
    duplicate_in_source: float = 0.01
    invalid_row: float = 0.002
    restricted: float = 0.005


def typo(rng: random.Random, name: str) -> str:
    if len(name) < 3:
        return name
    i = rng.randrange(1, len(name) - 1)
    letter = rng.choice(string.ascii_lowercase)
    kind = rng.randrange(4)
    if kind == 0:
        return name[:i] + letter + name[i:]
    if kind == 1:
        return name[:i] + name[i + 1 :]
    if kind == 2:
        return name[:i] + letter + name[i + 1 :]
    return name[: i - 1] + name[i] + name[i - 1] + name[i + 1 :]


def formatting_noise(rng: random.Random, name: str) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return name.upper()
    if kind == 1:
        return name.lower()
    if kind == 2:
        return f" {name}  "
    return name.replace("ë", "e").replace("é", "e").replace("'", "")


def transpose_day_month(value: date) -> date:
    if value.day <= 12 and value.day != value.month:
        try:
            return value.replace(month=value.day, day=value.month)
        except ValueError:
            return value
    return value


def one_component_wrong(rng: random.Random, value: date) -> date:
    kind = rng.randrange(3)
    try:
        if kind == 0:
            return value.replace(day=rng.choice([d for d in range(1, 29) if d != value.day]))
        if kind == 1:
            return value.replace(month=rng.choice([m for m in range(1, 13) if m != value.month]))
        return value.replace(year=value.year + rng.choice((-1, 1)))
    except ValueError:
        return value


def postcode_format(rng: random.Random, value: str) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return value.replace(" ", "")
    if kind == 1:
        return value.lower()
    return value.replace(" ", "  ")


def corrupt(rng: random.Random, rates: ErrorRates, c: Child, today: date) -> dict[str, str]:
    """The child's details as one agency records them (possibly wrongly)."""
    given, family, middle = c.given_name, c.family_name, c.middle_names
    born = c.date_of_birth
    if rng.random() < rates.short_or_variant_name and given in VARIANTS:
        given = rng.choice(VARIANTS[given])
    if rng.random() < rates.typo:
        if rng.random() < 0.5:
            given = typo(rng, given)
        else:
            family = typo(rng, family)
    if rng.random() < rates.surname_changed:
        family = FAMILY_NAMES.pick(rng)
    elif rng.random() < rates.surname_hyphenated:
        family = f"{family}-{FAMILY_NAMES.pick(rng)}"
    if rng.random() < rates.names_swapped:
        given, family = family, given
    if rng.random() < rates.formatting_noise:
        given = formatting_noise(rng, given)
        family = formatting_noise(rng, family)
    if rng.random() < rates.dob_transposed:
        born = transpose_day_month(born)
    elif rng.random() < rates.dob_component_wrong:
        born = one_component_wrong(rng, born)
        born = min(born, today)
    home = c.postcode
    if c.previous_postcode and rng.random() < rates.old_postcode:
        home = c.previous_postcode
    if rng.random() < rates.postcode_missing:
        home = ""
    elif rng.random() < rates.postcode_formatting:
        home = postcode_format(rng, home)
    return {
        "given_name": given,
        "middle_names": middle if rng.random() < 0.7 else "",
        "family_name": family,
        "date_of_birth": born.isoformat(),
        "sex": "" if rng.random() < rates.sex_missing else c.sex,
        "postcode": home,
        "restricted": "true" if rng.random() < rates.restricted else "",
    }


def wrong_nhs_number(rng: random.Random, rates: ErrorRates, true_number: str) -> str:
    roll = rng.random()
    if roll < rates.nhs_wrong_valid:
        return nhs_number(rng)
    if roll < rates.nhs_wrong_valid + rates.nhs_bad_check_digit:
        return true_number[:9] + str((int(true_number[9]) + 1) % 10)
    return true_number


def invalidate(rng: random.Random, row: dict[str, str]) -> None:
    """Make a row one that validation must reject."""
    if rng.random() < 0.5:
        row["date_of_birth"] = "2019-02-30"
    else:
        row["given_name"] = ""
