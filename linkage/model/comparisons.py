"""The comparison catalogue: every comparison level once, as Splink SQL and as Python.

Splink settings (batch linkage on DuckDB or Spark) are generated from the SQL; the real-time
scorer evaluates the Python predicates. One catalogue keeps the two in step: a test checks that
both choose the same level for every scored pair. SQL is written in DuckDB's dialect with only
functions that sqlglot translates for Spark (`bit_count`, `&`, `=`, CAST, `array_intersect`):
the SQL is frozen into every saved model, and a model trained on one backend must run on the
other (tests/model/test_spark_engine.py).

SQL NULL semantics carry over: a comparison with a NULL operand is never true, so the Python
predicates treat a missing value as "does not agree".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from linkage.contract import BLOOM_WORDS

Record = Mapping[str, Any]
Predicate = Callable[[Record, Record], bool]
_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class Level:
    label: str
    sql: str
    agrees: Predicate
    is_null_level: bool = False
    tf_column: str | None = None
    #: Built by Splink's ArrayIntersectLevel instead of CustomLevel. Unused: its SQL is
    #: rendered in the training backend's dialect and frozen into the model, so a model
    #: trained on DuckDB would not run on Spark.
    array_intersect_column: str | None = None


@dataclass(frozen=True)
class Comparison:
    name: str
    description: str
    levels: tuple[Level, ...]  # the ELSE level is implicit and always last

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(sorted({c for level in self.levels for c in _columns_in(level.sql)}))

    def level_of(self, left: Record, right: Record) -> int:
        """Splink's comparison vector value (gamma) for a pair: -1 for the null level (always
        first here), then the other levels count down so that the implicit ELSE is 0."""
        count = len(self.levels)
        for index, level in enumerate(self.levels):
            if level.agrees(left, right):
                return -1 if level.is_null_level else count - index
        return 0


def _columns_in(sql: str) -> set[str]:
    return {m[:-2] for m in re.findall(r"\b([a-z0-9_]+_(?:l|r))\b", sql)}


# -- predicate builders (Python) and their SQL twins ----------------------------------------
def _eq(a: str, b: str | None = None) -> tuple[str, Predicate]:
    """Column a of the left equals column b (default a) of the right."""
    b = b or a

    def agrees(left: Record, right: Record) -> bool:
        value = left[a]
        return value is not None and value == right[b]

    return f"{a}_l = {b}_r", agrees


def _either_null(column: str) -> Level:
    return Level(
        "missing on either side",
        f"{column}_l IS NULL OR {column}_r IS NULL",
        lambda left, right: left[column] is None or right[column] is None,
        is_null_level=True,
    )


def _any_of(label: str, *pairs: tuple[str, Predicate], tf: str | None = None) -> Level:
    sql = " OR ".join(f"({s})" for s, _ in pairs) if len(pairs) > 1 else pairs[0][0]
    predicates = tuple(p for _, p in pairs)
    if len(predicates) == 1:
        return Level(label, sql, predicates[0], tf_column=tf)

    def agrees(left: Record, right: Record) -> bool:
        # A plain loop: any() over a generator cost a third of real-time scoring.
        for predicate in predicates:  # noqa: SIM110
            if predicate(left, right):
                return True
        return False

    return Level(label, sql, agrees, tf_column=tf)


def _symmetric(a: str, b: str) -> tuple[tuple[str, Predicate], tuple[str, Predicate]]:
    return _eq(a, b), _eq(b, a)


def _bits(value: int) -> int:
    return (value & _MASK).bit_count()


def _dice_at_least(prefix_l: str, prefix_r: str, numerator: int, denominator: int) -> Level:
    """Dice(bloom_l, bloom_r) >= numerator/denominator, as an integer inequality: no division."""
    words = range(1, BLOOM_WORDS + 1)
    left_cols = [f"{prefix_l}_bf{i}" for i in words]
    right_cols = [f"{prefix_r}_bf{i}" for i in words]
    # bit_count is TINYINT in DuckDB: widen before adding, or the sums overflow.
    common = " + ".join(
        f"CAST(bit_count({a}_l & {b}_r) AS BIGINT)"
        for a, b in zip(left_cols, right_cols, strict=True)
    )
    pops = " + ".join(
        [f"CAST(bit_count({a}_l) AS BIGINT)" for a in left_cols]
        + [f"CAST(bit_count({b}_r) AS BIGINT)" for b in right_cols]
    )
    sql = f"{2 * denominator} * ({common}) >= {numerator} * ({pops})"

    def agrees(left: Record, right: Record) -> bool:
        lw = [left[c] for c in left_cols]
        rw = [right[c] for c in right_cols]
        if None in lw or None in rw:
            return False
        common_bits = sum(_bits(x & y) for x, y in zip(lw, rw, strict=True))
        pop = sum(_bits(x) for x in lw) + sum(_bits(y) for y in rw)
        return 2 * denominator * common_bits >= numerator * pop

    label = f"bigram Dice >= {numerator / denominator:.2f}"
    return Level(label, sql, agrees)


def _canonical_intersect(column: str) -> Level:
    def agrees(left: Record, right: Record) -> bool:
        a, b = left[column], right[column]
        return bool(a) and bool(b) and not set(a).isdisjoint(b)

    # array_intersect, not DuckDB's list_intersect: sqlglot knows it and writes Spark's
    # SIZE(ARRAY_INTERSECT(...)); both deduplicate and give NULL (never >= 1) for a NULL side.
    return Level(
        "shares a canonical form (short name / transliteration)",
        f"array_length(array_intersect({column}_l, {column}_r)) >= 1",
        agrees,
    )


def _identifier(name: str, column: str, what: str) -> Comparison:
    return Comparison(
        name,
        f"{what}: exact agreement of the keyed encoding",
        (_either_null(column), _any_of(f"{what} agrees", _eq(column))),
    )


# -- the catalogue ----------------------------------------------------------------------------
def _given_name() -> Comparison:
    return Comparison(
        "given_name",
        "Given name: exact, short form, phonetic, typo-tolerant, or swapped with middle/family",
        (
            _either_null("given_name_tok"),
            _any_of("exact", _eq("given_name_tok"), tf="given_name_tok"),
            _canonical_intersect("given_name_canon"),
            _any_of(
                "same Double Metaphone",
                _eq("given_name_dm"),
                *_symmetric("given_name_dm", "given_name_dm_alt"),
            ),
            _dice_at_least("given_name", "given_name", 4, 5),
            _any_of(
                "given name is the other's first middle name",
                *_symmetric("given_name_tok", "middle_name1_tok"),
            ),
            _any_of(
                "given and family names swapped", *_symmetric("given_name_tok", "family_name_tok")
            ),
            _dice_at_least("given_name", "given_name", 3, 5),
        ),
    )


def _family_name() -> Comparison:
    return Comparison(
        "family_name",
        "Family name: exact, phonetic, typo-tolerant, or swapped with given name",
        (
            _either_null("family_name_tok"),
            _any_of("exact", _eq("family_name_tok"), tf="family_name_tok"),
            _any_of(
                "same Double Metaphone",
                _eq("family_name_dm"),
                *_symmetric("family_name_dm", "family_name_dm_alt"),
            ),
            _dice_at_least("family_name", "family_name", 4, 5),
            _any_of(
                "given and family names swapped", *_symmetric("family_name_tok", "given_name_tok")
            ),
            _dice_at_least("family_name", "family_name", 3, 5),
        ),
    )


def _date_of_birth() -> Comparison:
    return Comparison(
        "date_of_birth",
        "Date of birth: exact, day and month transposed, or one component wrong",
        (
            _either_null("dob_tok"),
            _any_of("exact", _eq("dob_tok")),
            _any_of("day and month transposed", *_symmetric("dob_swap_tok", "dob_tok")),
            _any_of(
                "one component differs",
                _eq("dob_ym_tok"),
                _eq("dob_md_tok"),
                _eq("dob_yd_tok"),
            ),
        ),
    )


def _postcode() -> Comparison:
    return Comparison(
        "postcode",
        "Postcode: full, sector or district",
        (
            _either_null("postcode_tok"),
            _any_of("full postcode", _eq("postcode_tok"), tf="postcode_tok"),
            _any_of("same sector", _eq("postcode_sector_tok")),
            _any_of("same district", _eq("postcode_district_tok")),
        ),
    )


def _sex() -> Comparison:
    return Comparison(
        "sex",
        "Recorded sex",
        (_either_null("sex"), _any_of("same", _eq("sex"))),
    )


COMPARISONS: tuple[Comparison, ...] = (
    _identifier("nhs_number", "nhs_number_enc", "NHS number"),
    _identifier("upn", "upn_tok", "UPN"),
    _identifier("la_child_id", "la_child_id_tok", "LA child id"),
    _given_name(),
    _family_name(),
    _date_of_birth(),
    _postcode(),
    _sex(),
)
