"""A synthetic population of children in England: households, siblings, twins, identifiers."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate

from stdnum.gb import upn as upn_check

from linkage.demo.names import BOYS, DISTRICTS, FAMILY, GIRLS, MIDDLE, weighted

UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
TWIN_RATE = 0.015
LA_NUMBERS = (201, 202, 204, 206, 302, 303, 306, 308, 330, 336, 341, 350, 373, 380, 383, 801,
              802, 873, 886, 909, 925, 926, 928, 929, 931, 935, 936, 937, 938)  # fmt: skip


class Choice:
    """Fast weighted choice from a name table (precomputed cumulative weights)."""

    def __init__(self, table: str) -> None:
        self.values, weights = weighted(table)
        self.cumulative = list(accumulate(weights))

    def pick(self, rng: random.Random) -> str:
        return rng.choices(self.values, cum_weights=self.cumulative)[0]


GIRL_NAMES, BOY_NAMES, FAMILY_NAMES, MIDDLE_NAMES = (
    Choice(t) for t in (GIRLS, BOYS, FAMILY, MIDDLE)
)
DISTRICT_LIST = DISTRICTS.split()


@dataclass
class Child:
    child_id: str
    given_name: str
    middle_names: str
    family_name: str
    date_of_birth: date
    sex: str
    nhs_number: str
    upn: str
    la_child_id: str
    postcode: str
    previous_postcode: str
    household: int
    in_social_care: bool


def nhs_number(rng: random.Random) -> str:
    """A valid NHS number (Modulus 11), drawn from the 400-499 million range."""
    while True:
        body = str(rng.randint(400_000_000, 499_999_999))
        check = 11 - sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
        if check == 11:
            check = 0
        if check != 10:
            return body + str(check)


def upn(rng: random.Random) -> str:
    """A valid Unique Pupil Number: check letter, LA number, school and serial digits."""
    body = f"{rng.choice(LA_NUMBERS)}{rng.randint(0, 99_999_999):08d}{rng.randint(0, 9)}"
    return upn_check.calc_check_digit(body) + body


def postcode(rng: random.Random) -> str:
    district = rng.choice(DISTRICT_LIST)
    return f"{district} {rng.randint(1, 9)}{rng.choice(UNIT_LETTERS)}{rng.choice(UNIT_LETTERS)}"


def _birth_date(rng: random.Random, today: date, max_age_days: int) -> date:
    return today - timedelta(days=rng.randint(30, max_age_days))


def population(children: int, seed: int, today: date) -> list[Child]:
    """`children` children in households of 1-4 siblings; twins share DOB, surname, address."""
    rng = random.Random(f"population/{seed}")
    out: list[Child] = []
    household = 0
    while len(out) < children:
        household += 1
        family = FAMILY_NAMES.pick(rng)
        home = postcode(rng)
        moved = postcode(rng) if rng.random() < 0.12 else ""
        siblings = rng.choices((1, 2, 3, 4), weights=(45, 35, 14, 6))[0]
        births: list[date] = []
        while len(births) < siblings:
            born = _birth_date(rng, today, 18 * 365 - 1)
            births.append(born)
            if rng.random() < TWIN_RATE and len(births) < siblings + 1:
                births.append(born)  # a twin: same date, same family, same home
        for born in births:
            if len(out) >= children:
                break
            sex = "F" if rng.random() < 0.49 else "M"
            names = GIRL_NAMES if sex == "F" else BOY_NAMES
            given = names.pick(rng)
            while any(c.household == household and c.given_name == given for c in out[-6:]):
                given = names.pick(rng)  # siblings and twins never share a given name
            age_years = (today - born).days / 365.25
            number = len(out) + 1
            out.append(
                Child(
                    child_id=f"C{number:08d}",
                    given_name=given,
                    middle_names=MIDDLE_NAMES.pick(rng) if rng.random() < 0.45 else "",
                    family_name=family,
                    date_of_birth=born,
                    sex="U" if rng.random() < 0.002 else sex,
                    nhs_number=nhs_number(rng),
                    upn=upn(rng) if age_years >= 4 else "",
                    la_child_id=f"LA{rng.randint(100_000, 999_999)}",
                    postcode=home,
                    previous_postcode=moved,
                    household=household,
                    in_social_care=rng.random() < 0.07,
                )
            )
    return out
