"""Turning one validated raw record into its keyed encodings (see docs/encodings.md).

Tokens are HMAC-SHA256 under the attribute group's sub-key, truncated to a signed 64-bit
integer (comparable in SQLite, PostgreSQL, DuckDB and Spark as a BIGINT). Every message carries
a short purpose tag ("T|", "P|", ...) so one sub-key serves several encodings without any two
of them ever agreeing by accident.

Names, dates and postcodes repeat heavily, so each distinct value is encoded once, kept in a
bounded cache, and carries its CSV text ready-made: the hot path then only joins strings.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from metaphone import doublemetaphone

from linkage.contract import (
    BLOOM_WORDS,
    ENCODING_VERSION,
    PSEUDONYMISED_COLUMN_NAMES,
    RAW_COLUMNS,
)
from linkage.pseudonymise import normalise as norm
from linkage.pseudonymise.keys import LinkageKey
from linkage.pseudonymise.variants import canonical_forms

#: Entries per cache. Bounded so memory stays flat however large the input: the common
#: names, dates and postcode sectors fit; the long tail is simply encoded again.
CACHE_SIZE = 50_000
BLOOM_HASHES = 4
# Bit positions are single digest bytes, so the filter is exactly 256 bits.
assert 64 * BLOOM_WORDS == 256
_WORD_MASK = (1 << 64) - 1

Tokeniser = Callable[[bytes], int]


def _tokeniser(subkey: bytes) -> Tokeniser:
    def token(message: bytes) -> int:
        return int.from_bytes(hmac.digest(subkey, message, "sha256")[:8], "big", signed=True)

    return token


def _signed(word: int) -> int:
    return word - (1 << 64) if word >= 1 << 63 else word


def _csv(values: Sequence[object]) -> str:
    """CSV text of encoding values (ints, sets of ints, None): none ever needs quoting."""
    return ",".join(
        "" if v is None else " ".join(map(str, v)) if isinstance(v, tuple) else str(v)
        for v in values
    )


@dataclass(frozen=True, slots=True)
class Part:
    """The encoding of one distinct value: its column values and their CSV text."""

    values: tuple[Any, ...]
    csv: str

    @classmethod
    def of(cls, *values: Any) -> Part:
        return cls(values, _csv(values))


@dataclass(frozen=True, slots=True)
class NameEncoding:
    """given/family columns: tok, dm, dm_alt, [canon], bf1..4; middle: tok, first word tok."""

    full: Part  # tok, dm, dm_alt, canon, bf1..4 (given names)
    without_canon: Part  # tok, dm, dm_alt, bf1..4 (family names)
    as_middle: Part  # tok, first-word tok (middle names)


_NO_MIDDLE = Part.of(None, None)
_NO_POSTCODE = Part.of(None, None, None)


class Rejected(Exception):
    """A row whose required fields fail validation. The reason never echoes input values."""


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    """One pseudonymised record, as contract-ordered values or as a CSV line."""

    head: tuple[Any, ...]  # source_system .. la_child_id, in clear or per-row encodings
    given: Part
    middle: Part
    family: Part
    dob: Part
    postcode: Part

    def values(self) -> list[Any]:
        return [
            *self.head,
            *self.given.values,
            *self.middle.values,
            *self.family.values,
            *self.dob.values,
            *self.postcode.values,
        ]

    def csv_line(self) -> str:
        source, record_id, key_id, version, sex, restricted, nhs, upn, local = self.head
        if any(c in record_id for c in ',"\r\n'):
            record_id = '"' + record_id.replace('"', '""') + '"'
        return (
            f"{source},{record_id},{key_id},{version},{sex or ''},"
            f"{'true' if restricted else 'false'},{nhs or ''},"
            f"{'' if upn is None else upn},{'' if local is None else local},"
            f"{self.given.csv},{self.middle.csv},{self.family.csv},{self.dob.csv},"
            f"{self.postcode.csv}\n"
        )


class RecordEncoder:
    """Validates and encodes raw records under one linkage key."""

    def __init__(self, key: LinkageKey) -> None:
        self.key_id = key.key_id
        self._name_key = key.subkey("name")
        self._name = _tokeniser(self._name_key)
        self._dob = _tokeniser(key.subkey("dob"))
        self._postcode = _tokeniser(key.subkey("postcode"))
        self._upn = _tokeniser(key.subkey("upn"))
        self._local = _tokeniser(key.subkey("la_child_id"))
        self._nhs = key.nhs_encryptor()
        self._bigram_bits: dict[str, int] = {}
        self.encode_name = lru_cache(maxsize=CACHE_SIZE)(self._encode_name)
        self.encode_dob = lru_cache(maxsize=CACHE_SIZE)(self._encode_dob)
        self.encode_postcode = lru_cache(maxsize=CACHE_SIZE)(self._encode_postcode)
        # Full postcodes are nearly unique per household; sectors and districts repeat a lot.
        self._postcode_part = lru_cache(maxsize=CACHE_SIZE)(self._postcode)

    # -- names --------------------------------------------------------------------------
    def _bigram(self, bigram: str) -> int:
        """Bloom filter bits of one bigram: four positions (one byte each) of a keyed digest."""
        bits = self._bigram_bits.get(bigram)
        if bits is None:
            digest = hmac.digest(self._name_key, b"B|" + bigram.encode(), "sha256")
            bits = 0
            for position in digest[:BLOOM_HASHES]:
                bits |= 1 << position
            self._bigram_bits[bigram] = bits
        return bits

    def _encode_name(self, raw: str) -> NameEncoding | None:
        normalised = norm.normalise_name(raw)
        if normalised is None:
            return None
        words = normalised.split(" ")
        letters = "".join(words)
        primary, alternate = doublemetaphone(letters)
        padded = f"_{letters}_"
        bloom = 0
        for i in range(len(padded) - 1):
            bloom |= self._bigram(padded[i : i + 2])
        tok = self._name(b"T|" + letters.encode())
        dm = self._name(b"P|" + primary.encode()) if primary else None
        dm_alt = (
            self._name(b"P|" + alternate.encode()) if alternate and alternate != primary else None
        )
        canon = tuple(
            sorted(self._name(b"C|" + form.encode()) for form in canonical_forms(words[0]))
        )
        words64 = tuple(_signed((bloom >> (64 * i)) & _WORD_MASK) for i in range(BLOOM_WORDS))
        return NameEncoding(
            full=Part.of(tok, dm, dm_alt, canon, *words64),
            without_canon=Part.of(tok, dm, dm_alt, *words64),
            as_middle=Part.of(tok, self._name(b"T|" + words[0].encode())),
        )

    # -- dates and postcodes ------------------------------------------------------------
    def _encode_dob(self, raw: str) -> Part | None:
        value = norm.parse_date_of_birth(raw)
        if value is None:
            return None
        y, m, d = f"{value.year:04d}", f"{value.month:02d}", f"{value.day:02d}"
        swapped = None
        if value.day <= 12 and value.day != value.month:
            swapped = self._dob(f"D|{y}-{d}-{m}".encode())
        return Part.of(
            self._dob(f"D|{y}-{m}-{d}".encode()),
            swapped,
            self._dob(f"YM|{y}-{m}".encode()),
            self._dob(f"MD|{m}-{d}".encode()),
            self._dob(f"YD|{y}-{d}".encode()),
        )

    def _encode_postcode(self, raw: str) -> Part | None:
        parts = norm.normalise_postcode(raw)
        if parts is None:
            return None
        full, sector, district = parts
        return Part.of(
            self._postcode(b"P|" + full.encode()),
            self._postcode_part(b"S|" + sector.encode()),
            self._postcode_part(b"D|" + district.encode()),
        )

    # -- whole records ------------------------------------------------------------------
    def encode(self, raw: Mapping[str, str | None]) -> tuple[EncodedRecord, list[str]]:
        """One raw record (column name -> text) -> (encoded record, warnings)."""
        return self.encode_row(tuple(raw.get(name) or "" for name in RAW_COLUMNS))

    def encode_row(self, row: Sequence[str]) -> tuple[EncodedRecord, list[str]]:
        """One raw record as texts in RAW_COLUMNS order -> (encoded record, warnings).

        Raises Rejected when a required field fails. Warnings name the optional field that was
        blanked and why, never its value. Positional on purpose: this is the hot path.
        """
        (source_text, record_text, given_text, family_text, dob_text,
         nhs_text, upn_text, local_text, middle_text, sex_text, postcode_text,
         restricted_text) = row  # fmt: skip
        warnings: list[str] = []

        source = norm.normalise_source_code(source_text)
        if source is None:
            raise Rejected("source_system missing or not a valid code")
        record_id = norm.normalise_record_id(record_text)
        if record_id is None:
            raise Rejected("record_id missing or longer than 128 characters")
        given = self.encode_name(given_text)
        if given is None:
            raise Rejected("given_name missing or has no letters")
        family = self.encode_name(family_text)
        if family is None:
            raise Rejected("family_name missing or has no letters")
        dob = self.encode_dob(dob_text)
        if dob is None:
            if not dob_text.strip():
                raise Rejected("date_of_birth missing")
            raise Rejected("date_of_birth is not a real YYYY-MM-DD date in 1900..today")
        restricted = norm.parse_restricted(restricted_text) if restricted_text else False
        if restricted is None:
            raise Rejected("restricted flag is not true/false")

        nhs_enc = None
        if nhs_text:
            nhs_number = norm.normalise_nhs_number(nhs_text.strip())
            if nhs_number is None:
                warnings.append("nhs_number blanked: not 10 digits with a valid check digit")
            else:
                nhs_enc = self._nhs(nhs_number)
        upn_tok = None
        if upn_text:
            upn = norm.normalise_upn(upn_text)
            if upn is None:
                warnings.append("upn blanked: wrong format or check letter")
            else:
                upn_tok = self._upn(b"U|" + upn.encode())
        local_tok = None
        if local_text:
            local = norm.normalise_local_id(local_text)
            if local is None:
                warnings.append("la_child_id blanked: longer than 64 characters")
            else:
                local_tok = self._local(b"L|" + local.encode())
        sex = None
        if sex_text:
            sex = norm.normalise_sex(sex_text)
            if sex is None:
                warnings.append("sex blanked: not F, M or U")
        postcode = _NO_POSTCODE
        if postcode_text:
            encoded = self.encode_postcode(postcode_text)
            if encoded is None:
                warnings.append("postcode blanked: not a valid UK postcode")
            else:
                postcode = encoded
        middle = self.encode_name(middle_text) if middle_text else None

        return EncodedRecord(
            head=(
                source,
                record_id,
                self.key_id,
                ENCODING_VERSION,
                sex,
                restricted,
                nhs_enc,
                upn_tok,
                local_tok,
            ),
            given=given.full,
            middle=middle.as_middle if middle else _NO_MIDDLE,
            family=family.without_canon,
            dob=dob,
            postcode=postcode,
        ), warnings


assert len(PSEUDONYMISED_COLUMN_NAMES) == 9 + (4 + BLOOM_WORDS) + 2 + (3 + BLOOM_WORDS) + 5 + 3
