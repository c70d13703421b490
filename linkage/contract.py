"""The record contract: the raw columns agencies export and the pseudonymised columns stored.

The pseudonymised shape is the one interface shared by the agency-side pseudonymiser, the
registry store, the linkage engine and the REST API, so it is defined once here.
See docs/encodings.md for what each encoding means and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Version of the encoding scheme. Bump when any encoding changes meaning; records encoded under
#: different versions never compare equal and must not be linked together.
ENCODING_VERSION = 1

RAW_REQUIRED_COLUMNS: tuple[str, ...] = (
    "source_system",
    "record_id",
    "given_name",
    "family_name",
    "date_of_birth",
)
RAW_OPTIONAL_COLUMNS: tuple[str, ...] = (
    "nhs_number",
    "upn",
    "la_child_id",
    "middle_names",
    "sex",
    "postcode",
    "restricted",
)
RAW_COLUMNS: tuple[str, ...] = RAW_REQUIRED_COLUMNS + RAW_OPTIONAL_COLUMNS

ColumnType = Literal["text", "int64", "int64_set", "bool"]


@dataclass(frozen=True, slots=True)
class Column:
    """One pseudonymised column: its name, its storage type and what it carries."""

    name: str
    type: ColumnType
    doc: str


#: Number of signed 64-bit words in each name Bloom filter (4 x 64 = 256 bits).
BLOOM_WORDS = 4


def _bloom(prefix: str) -> tuple[Column, ...]:
    return tuple(
        Column(f"{prefix}_bf{i}", "int64", f"keyed bigram Bloom filter word {i} of {prefix}")
        for i in range(1, BLOOM_WORDS + 1)
    )


#: Columns that identify a record and are carried in clear (they are the agency's own keys).
KEY_COLUMNS: tuple[Column, ...] = (
    Column("source_system", "text", "registered source system code"),
    Column("record_id", "text", "the record's key in its source system"),
    Column("key_id", "text", "id of the linkage key that produced the encodings"),
    Column("encoding_version", "int64", "version of the encoding scheme"),
)

#: Attributes that are not identifying and are carried in clear.
CLEAR_COLUMNS: tuple[Column, ...] = (
    Column("sex", "text", "F, M, U or missing"),
    Column("restricted", "bool", "never disclosed to another agency"),
)

#: Keyed encodings. `int64` tokens are HMAC-SHA256 truncated to a signed 64-bit integer;
#: `int64_set` is a set of such tokens (space-separated decimal integers in CSV).
ENCODING_COLUMNS: tuple[Column, ...] = (
    Column("nhs_number_enc", "text", "AES-SIV ciphertext of the NHS number (base64url)"),
    Column("upn_tok", "int64", "HMAC of the UPN"),
    Column("la_child_id_tok", "int64", "HMAC of the local authority child id"),
    Column("given_name_tok", "int64", "HMAC of the normalised given name"),
    Column("given_name_dm", "int64", "HMAC of the given name's primary Double Metaphone"),
    Column("given_name_dm_alt", "int64", "HMAC of the given name's alternate Double Metaphone"),
    Column("given_name_canon", "int64_set", "HMACs of the given name's canonical forms"),
    *_bloom("given_name"),
    Column("middle_names_tok", "int64", "HMAC of the normalised middle names"),
    Column("middle_name1_tok", "int64", "HMAC of the first middle name"),
    Column("family_name_tok", "int64", "HMAC of the normalised family name"),
    Column("family_name_dm", "int64", "HMAC of the family name's primary Double Metaphone"),
    Column("family_name_dm_alt", "int64", "HMAC of the family name's alternate Double Metaphone"),
    *_bloom("family_name"),
    Column("dob_tok", "int64", "HMAC of the full date of birth"),
    Column("dob_swap_tok", "int64", "HMAC of the date with day and month exchanged"),
    Column("dob_ym_tok", "int64", "HMAC of year and month"),
    Column("dob_md_tok", "int64", "HMAC of month and day"),
    Column("dob_yd_tok", "int64", "HMAC of year and day"),
    Column("postcode_tok", "int64", "HMAC of the full postcode"),
    Column("postcode_sector_tok", "int64", "HMAC of the postcode sector"),
    Column("postcode_district_tok", "int64", "HMAC of the postcode district"),
)

PSEUDONYMISED_COLUMNS: tuple[Column, ...] = KEY_COLUMNS + CLEAR_COLUMNS + ENCODING_COLUMNS
PSEUDONYMISED_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in PSEUDONYMISED_COLUMNS)
COLUMN_TYPES: dict[str, ColumnType] = {c.name: c.type for c in PSEUDONYMISED_COLUMNS}

#: Columns every pseudonymised record must have a value in.
PSEUDONYMISED_REQUIRED: tuple[str, ...] = (
    "source_system",
    "record_id",
    "key_id",
    "encoding_version",
    "given_name_tok",
    "family_name_tok",
    "dob_tok",
)

SOURCE_KINDS: tuple[str, ...] = ("health", "education", "social_care", "other")
