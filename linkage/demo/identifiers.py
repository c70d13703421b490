"""Identifiers that look and validate like the real ones: NHS numbers, UPNs, LA child ids,
postcodes and agency record ids.

Valid check digits matter: the pseudonymiser blanks invalid identifiers, so a generator that
made them invalid by accident would silently remove the strongest evidence from the demo.
"""

from __future__ import annotations

import random
from datetime import date
from functools import cache
from math import gcd

from linkage.demo.names import District

#: Letters a postcode's inward code may end with (never C, I, K, M, O or V).
UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
_NHS_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_UPN_WEIGHTS = tuple(range(2, 14))
#: UPN check letters (stdnum.gb.upn's alphabet, first 23 entries).
_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"


def _weighted_sums(weights: tuple[int, ...], modulus: int) -> list[int]:
    """Weighted digit sum (mod `modulus`) of every number with len(weights) digits: a lookup
    table, because digit-by-digit sums are the slowest part of making a million ids."""
    size = len(weights)
    return [
        sum(int(d) * w for d, w in zip(f"{n:0{size}d}", weights, strict=True)) % modulus
        for n in range(10**size)
    ]


@cache
def _nhs_tables() -> tuple[list[int], list[int], list[int]]:
    w = _NHS_WEIGHTS
    return _weighted_sums(w[0:3], 11), _weighted_sums(w[3:6], 11), _weighted_sums(w[6:9], 11)


@cache
def _upn_tables() -> tuple[list[int], list[int], list[int], list[int]]:
    w = _UPN_WEIGHTS
    return (
        _weighted_sums(w[0:3], 23),
        _weighted_sums(w[3:7], 23),
        _weighted_sums(w[7:9], 23),
        _weighted_sums(w[9:12], 23),
    )


def nhs_check_digit(body: int) -> int:
    """Modulus 11 check digit of a 9-digit body; 10 means the body cannot be used."""
    high, middle, low = _nhs_tables()
    check = 11 - (high[body // 1_000_000] + middle[body // 1000 % 1000] + low[body % 1000]) % 11
    return 0 if check == 11 else check


def nhs_number(rng: random.Random) -> str:
    """A valid NHS number from the ranges issued in England (400-499 and 600-708 million)."""
    while True:
        roll = rng.random()
        if roll < 0.7:
            body = 400_000_000 + int(roll / 0.7 * 100_000_000)
        else:
            body = 600_000_000 + int((roll - 0.7) / 0.3 * 108_800_000)
        check = nhs_check_digit(body)
        if check != 10:
            return f"{body}{check}"


def bad_check_digit(number: str) -> str:
    """The same NHS number with a check digit that fails Modulus 11 (a keying error)."""
    return number[:9] + str((int(number[9]) + 1) % 10)


def upn(rng: random.Random, la_number: int, date_of_birth: date) -> str:
    """A valid UPN: check letter, LA number, DfE establishment number, allocation year, serial.

    The allocation year is the year the child started school, as in real UPNs.
    """
    school = 2000 + int(rng.random() * 5000)
    year = (date_of_birth.year + 4 + (date_of_birth.month >= 9)) % 100
    serial = int(rng.random() * 1000)
    # All-digit body: each digit's index in stdnum's alphabet is 23 + digit, and 23 = 0 mod 23,
    # so the check is the weighted digit sum mod 23 (looked up in parts).
    t_la, t_school, t_year, t_serial = _upn_tables()
    check = (t_la[la_number] + t_school[school] + t_year[year] + t_serial[serial]) % 23
    return f"{_UPN_LETTERS[check]}{la_number:03d}{school}{year:02d}{serial:03d}"


def la_child_id(rng: random.Random, la_number: int) -> str:
    """A local authority children's social care id (letters keep it unlike any other id)."""
    return f"LA{la_number}-{int(rng.random() * 10_000_000):07d}"


def postcode(rng: random.Random, district: District) -> str:
    """A full postcode in a real district: sector digit and two unit letters."""
    roll = rng.random()
    sector = 1 + int(roll * 9)
    unit = int((roll * 9 - sector + 1) * 400)  # the roll's remaining precision: 20 x 20 units
    return f"{district.district} {sector}{UNIT_LETTERS[unit // 20]}{UNIT_LETTERS[unit % 20]}"


class RecordIds:
    """Agency record keys such as `H0471902`: a fixed permutation of a counter, so keys are
    unique, stable across deliveries and carry nothing about the child (not even the order
    in which the generator made them)."""

    def __init__(self, prefix: str, digits: int, rng: random.Random) -> None:
        self.prefix, self.digits = prefix, digits
        self.modulus = 10**digits
        multiplier = rng.randrange(self.modulus // 3, self.modulus)
        while gcd(multiplier, self.modulus) != 1:
            multiplier += 1
        self.multiplier, self.offset = multiplier, rng.randrange(self.modulus)
        self.issued = 0

    def next(self, avoid: tuple[str, ...] = ()) -> str:
        """The next key whose digits contain none of `avoid` (the record's own identifiers and
        date of birth), so a key can never give an identifier away, not even by chance."""
        while True:
            if self.issued >= self.modulus:
                raise OverflowError(f"more than {self.modulus} {self.prefix} record ids")
            value = (
                f"{(self.multiplier * self.issued + self.offset) % self.modulus:0{self.digits}d}"
            )
            self.issued += 1
            if not any(part and part in value for part in avoid):
                return self.prefix + value
