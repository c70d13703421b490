"""Normalisation and validation of raw values, before anything is encoded.

Each function returns the normalised value, or None when the value is missing or invalid;
callers decide whether that rejects the row (required fields) or blanks the value (optional).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache

from stdnum.gb import nhs, upn

# Letters that Unicode decomposition does not reduce to ASCII.
_SPECIAL_LETTERS = str.maketrans(
    {"ß": "SS", "Ø": "O", "ø": "O", "Ł": "L", "ł": "L", "Æ": "AE", "æ": "AE", "Œ": "OE",
     "œ": "OE", "Đ": "D", "đ": "D", "Þ": "TH", "þ": "TH", "ı": "I", "Ð": "D", "ð": "D"}
)  # fmt: skip
_APOSTROPHES = re.compile(r"['’`´ʼ‘]")
_NON_LETTERS = re.compile(r"[^A-Z]+")


def normalise_name(raw: str) -> str | None:
    """Upper-case ASCII words: accents stripped, apostrophes dropped, other punctuation a space.

    "  o'Brien-Smith " -> "OBRIEN SMITH"; "Zoë" -> "ZOE". None when no letter is left.
    """
    text = _APOSTROPHES.sub("", raw.translate(_SPECIAL_LETTERS))
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).upper()
    words = _NON_LETTERS.sub(" ", text).split()
    return " ".join(words) if words else None


def parse_date_of_birth(raw: str, *, today: date | None = None) -> date | None:
    """A `YYYY-MM-DD` date that exists, is not in the future and not before 1900."""
    text = raw.strip()
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        return None
    try:
        value = date.fromisoformat(text)
    except ValueError:
        return None
    if value.year < 1900 or value > (today or date.today()):
        return None
    return value


def normalise_nhs_number(raw: str) -> str | None:
    """Ten digits whose Modulus 11 check digit is right (spaces and hyphens allowed)."""
    number = raw.replace(" ", "").replace("-", "")
    if len(number) != 10 or not number.isdigit() or nhs.checksum(number) != 0:
        return None
    return number


# Local authority numbers a UPN may carry (python-stdnum's list of DfE LA codes).
_UPN_LA_NUMBERS: frozenset[int] = frozenset(getattr(upn, "_la_numbers", ()))


def normalise_upn(raw: str) -> str | None:
    """A Unique Pupil Number: check letter, 3-digit LA number, 8 digits, last digit or letter.

    Same rules as `stdnum.gb.upn.validate`, without its per-call cleaning (this is a hot path).
    """
    number = raw.replace(" ", "").upper()
    if len(number) != 13 or not number[1:12].isdigit():
        return None
    if _UPN_LA_NUMBERS and int(number[1:4]) not in _UPN_LA_NUMBERS:
        return None
    try:
        check = upn.calc_check_digit(number[1:])
    except ValueError:  # last character outside the check alphabet
        return None
    return number if check == number[0] else None


def normalise_local_id(raw: str) -> str | None:
    """A local authority child id: trimmed, upper-cased, inner spaces removed."""
    value = "".join(raw.split()).upper()
    return value if 0 < len(value) <= 64 else None


# Outward code (area letters, district) and inward code (sector digit, two unit letters).
# Unit letters never include C, I, K, M, O, V. GIR 0AA is the one historic exception.
_POSTCODE = re.compile(
    r"^(?P<out>[A-PR-UWYZ](?:[0-9][0-9A-HJKPS-UW]?|[A-HK-Y][0-9][0-9ABEHMNPRV-Y]?))"
    r"(?P<sector>[0-9])(?P<unit>[ABD-HJLNP-UW-Z]{2})$"
)


def normalise_postcode(raw: str) -> tuple[str, str, str] | None:
    """(full, sector, district) of a valid UK postcode in canonical spacing, e.g.
    "ls61ab" -> ("LS6 1AB", "LS6 1", "LS6")."""
    compact = "".join(raw.split()).upper()
    if compact == "GIR0AA":
        return ("GIR 0AA", "GIR 0", "GIR")
    match = _POSTCODE.match(compact)
    if match is None:
        return None
    outward, sector = match["out"], match["sector"]
    return (f"{outward} {sector}{match['unit']}", f"{outward} {sector}", outward)


_SEX = {"F": "F", "M": "M", "U": "U", "FEMALE": "F", "MALE": "M", "UNKNOWN": "U"}


def normalise_sex(raw: str) -> str | None:
    return _SEX.get(raw.strip().upper())


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0", ""}


def parse_restricted(raw: str) -> bool | None:
    """True/False, or None when the flag cannot be understood (the row is then rejected:
    guessing "not restricted" could disclose a record that must stay hidden)."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


_SOURCE_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@lru_cache(maxsize=1024)
def normalise_source_code(raw: str) -> str | None:
    code = raw.strip().lower()
    return code if _SOURCE_CODE.match(code) else None


def normalise_record_id(raw: str) -> str | None:
    value = raw.strip()
    return value if 0 < len(value) <= 128 else None
