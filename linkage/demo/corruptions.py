"""The errors real agency data has, applied when one agency records a child's true details.

Each kind of error has its own rate (ErrorRates) and, when applied, its name is reported
with the record, so evaluations can break accuracy down by error kind and tests can check
that each kind occurs at about its rate.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from datetime import date, timedelta

#: Error kinds, as reported in RawRecord.errors.
GIVEN_TYPO = "given_name_typo"
FAMILY_TYPO = "family_name_typo"
NICKNAME = "nickname_or_variant"
NAMES_SWAPPED = "names_swapped"
SURNAME_CHANGED = "surname_changed"
SURNAME_HYPHENATED = "surname_hyphenated"
CASE_NOISE = "case_noise"
PUNCTUATION_NOISE = "spacing_punctuation_noise"
ACCENTS_DROPPED = "accents_dropped"
DOB_SWAPPED = "dob_day_month_swapped"
DOB_COMPONENT = "dob_component_wrong"
STALE_POSTCODE = "stale_postcode"
POSTCODE_FORMAT = "postcode_format_noise"
POSTCODE_MISSING = "postcode_missing"
SEX_MISSING = "sex_missing"
MIDDLE_MISSING = "middle_names_missing"
NHS_MISSING = "nhs_number_missing"
NHS_WRONG_VALID = "nhs_number_wrong_valid"
NHS_BAD_CHECK = "nhs_number_bad_check_digit"
DUPLICATE = "duplicate_in_source"
INVALID_ROW = "invalid_row"
RESTRICTED = "restricted"
ERROR_KINDS: tuple[str, ...] = (
    GIVEN_TYPO, FAMILY_TYPO, NICKNAME, NAMES_SWAPPED, SURNAME_CHANGED, SURNAME_HYPHENATED,
    CASE_NOISE, PUNCTUATION_NOISE, ACCENTS_DROPPED, DOB_SWAPPED, DOB_COMPONENT, STALE_POSTCODE,
    POSTCODE_FORMAT, POSTCODE_MISSING, SEX_MISSING, MIDDLE_MISSING, NHS_MISSING, NHS_WRONG_VALID,
    NHS_BAD_CHECK, DUPLICATE, INVALID_ROW, RESTRICTED,
)  # fmt: skip


@dataclass(frozen=True)
class ErrorRates:
    """Share of records (or of children, where noted) with each kind of error.

    Plausible defaults for English children's services data, not measured values. Rates
    marked "when possible" apply only where the error can happen (a name with a short form,
    a date whose day is 12 or less, a child whose family moved).
    """

    given_name_typo: float = 0.02
    family_name_typo: float = 0.02
    nickname_or_variant: float = 0.06  # when the given name has a known variant
    names_swapped: float = 0.004
    surname_changed: float = 0.02  # of children: one source holds another family name
    surname_hyphenated: float = 0.01  # of children: one source holds a double-barrelled name
    case_noise: float = 0.10
    spacing_punctuation_noise: float = 0.03
    accents_dropped: float = 0.5  # when the name has accents
    dob_day_month_swapped: float = 0.004  # when possible
    dob_component_wrong: float = 0.008
    stale_postcode: float = 0.4  # when the family moved recently
    postcode_format_noise: float = 0.12
    postcode_missing: float = 0.03
    sex_missing: float = 0.02
    nhs_number_missing: float = 0.01  # of health records
    nhs_number_wrong_valid: float = 0.002  # a valid number of someone else
    nhs_number_bad_check_digit: float = 0.002
    duplicate_in_source: float = 0.01  # of a child's records in one source
    invalid_row: float = 0.001
    restricted: float = 0.005

    def scaled(self, factor: float) -> ErrorRates:
        """The same mix with every rate multiplied (capped at 1): 0 gives clean data."""
        return ErrorRates(
            **{f.name: min(1.0, getattr(self, f.name) * factor) for f in fields(self)}
        )


_LOWER = "abcdefghijklmnopqrstuvwxyz"
_KEYBOARD_NEIGHBOURS = {
    "a": "sqz", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj",
    "i": "uo", "j": "hk", "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip", "p": "o",
    "q": "wa", "r": "et", "s": "ad", "t": "ry", "u": "yi", "v": "cb", "w": "qe", "x": "zc",
    "y": "tu", "z": "xa",
}  # fmt: skip


def typo(rng: random.Random, name: str) -> str:
    """One keying error: insert, delete, substitute (often a neighbouring key) or transpose.

    The first letter is rarely wrong (people check it), so errors fall after it.
    """
    if len(name) < 3:
        return name
    i = rng.randrange(1, len(name))
    kind = rng.randrange(4)
    letter = name[i].lower()
    new = rng.choice(_KEYBOARD_NEIGHBOURS.get(letter, _LOWER)) if rng.random() < 0.7 else ""
    new = new or rng.choice(_LOWER)
    if name[i].isupper():
        new = new.upper()
    if kind == 0:
        return name[:i] + new + name[i:]
    if kind == 1:
        return name[:i] + name[i + 1 :]
    if kind == 2:
        return name[:i] + new + name[i + 1 :]
    if i == len(name) - 1 or name[i] == name[i + 1]:
        return name[:i] + name[i + 1 :]
    return name[:i] + name[i + 1] + name[i] + name[i + 2 :]


def case_noise(rng: random.Random, names: list[str]) -> list[str]:
    """Systems that store capitals only, lower-case entry, or a capitalised surname."""
    roll = rng.random()
    if roll < 0.6:
        return [n.upper() for n in names]
    if roll < 0.8:
        return [n.lower() for n in names]
    return [*names[:-1], names[-1].upper()]


def punctuation_noise(rng: random.Random, name: str) -> str:
    """Stray spaces, apostrophes and hyphens dropped, doubled or swapped for look-alikes."""
    roll = rng.random()
    if "'" in name:
        return name.replace("'", rng.choice(("", " ", "’", "`")))
    if "-" in name:
        return name.replace("-", rng.choice((" ", "", " - ", "--")))
    if roll < 0.85:
        return f" {name} " if roll < 0.4 else f"{name}  "
    return name.replace(" ", "  ") if " " in name else f"{name}."


_ACCENTS = str.maketrans(
    "àáâãäåçèéêëìíîïñòóôõöùúûüýÿÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝąćęłńśźżĄĆĘŁŃŚŹŻşŞıİğĞčČřŘšŠžŽěĚůŮ",
    "aaaaaaceeeeiiiinooooouuuuyyAAAAAACEEEEIIIINOOOOOUUUUYacelnszzACELNSZZsSiIgGcCrRsSzZeEuU",
)


def drop_accents(name: str) -> str:
    """What a system without Unicode support keeps: Zoë -> Zoe, Łukasz -> Lukasz."""
    return name.translate(_ACCENTS)


def swap_day_month(value: date) -> date | None:
    """The date with day and month exchanged, or None when that is no different date."""
    if value.day > 12 or value.day == value.month:
        return None
    return value.replace(month=value.day, day=value.month)


def wrong_component(rng: random.Random, value: date) -> date:
    """The date with its day, month or year keyed wrongly (still a real date)."""
    for _ in range(10):
        kind = rng.randrange(3)
        try:
            if kind == 0:
                day = value.day + rng.choice((-10, -2, -1, 1, 2, 10))
                wrong = value.replace(day=day)
            elif kind == 1:
                wrong = value.replace(
                    month=rng.choice([m for m in range(1, 13) if m != value.month])
                )
            else:
                wrong = value.replace(year=value.year + rng.choice((-1, 1)))
        except ValueError:
            continue
        return wrong
    return value + timedelta(days=1)


def postcode_format(rng: random.Random, value: str) -> str:
    """How postcodes arrive: without the space, in lower case, with extra spaces."""
    roll = rng.random()
    if roll < 0.45:
        return value.replace(" ", "")
    if roll < 0.75:
        return value.lower()
    if roll < 0.9:
        return value.replace(" ", "  ")
    return value.lower().replace(" ", "")


def invalid(rng: random.Random, row: dict[str, str]) -> None:
    """Make a row that validation must reject: an impossible or badly formatted date of birth,
    or an empty required name."""
    roll = rng.randrange(5)
    year = row["date_of_birth"][:4]
    if roll == 0:
        row["date_of_birth"] = f"{year}-02-30"
    elif roll == 1:
        row["date_of_birth"] = f"{year}-{rng.choice(('04', '06', '09', '11'))}-31"
    elif roll == 2 and len(row["date_of_birth"]) == 10:
        value = row["date_of_birth"]
        row["date_of_birth"] = f"{value[8:10]}/{value[5:7]}/{value[:4]}"
    elif roll == 3:
        row["given_name"] = rng.choice(("", " "))
    else:
        row["family_name"] = ""
