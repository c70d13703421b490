"""Splink settings generated from the comparison catalogue and the blocking rules.

Nothing here is DuckDB-specific: level SQL is declared in DuckDB's dialect and Splink
translates it for the backend the data is registered with (DuckDB or Spark).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator
from splink.blocking_rule_library import CustomRule

from linkage.model.comparisons import COMPARISONS, Comparison, Level

UNIQUE_ID = "unique_id"
SOURCE_DATASET = "source_dataset"
BASE_DIALECT = "duckdb"
DEFAULT_PRIOR = 1e-5


@dataclass(frozen=True)
class BlockingRule:
    """Pairs whose left column values equal the right's: (left column, right column) each."""

    name: str
    equalities: tuple[tuple[str, str], ...]

    @property
    def sql(self) -> str:
        return " AND ".join(f"l.{a} = r.{b}" for a, b in self.equalities)


def _same(name: str, *columns: str) -> BlockingRule:
    return BlockingRule(name, tuple((c, c) for c in columns))


#: Candidate pairs are those that agree on at least one rule. Each rule is an equi-join, so the
#: real-time path can find the same candidates with indexed look-ups. Every rule pins the
#: date of birth or the place (two of its three parts, the district) besides names: a rule on
#: names alone makes buckets that grow with the population ("Oliver Smith"), and candidate
#: pairs per record with them (27 per record at a million records, 2.7 at 100,000).
BLOCKING_RULES: tuple[BlockingRule, ...] = (
    _same("nhs_number", "nhs_number_enc"),
    _same("upn", "upn_tok"),
    _same("la_child_id", "la_child_id_tok"),
    _same("names_year_month", "given_name_tok", "family_name_tok", "dob_ym_tok"),
    _same("names_year_day", "given_name_tok", "family_name_tok", "dob_yd_tok"),
    _same("names_district", "given_name_tok", "family_name_tok", "postcode_district_tok"),
    _same("dob_family_sound", "dob_tok", "family_name_dm"),
    _same("dob_given_sound", "dob_tok", "given_name_dm"),
    _same("dob_postcode", "dob_tok", "postcode_tok"),
    _same("sounds_month", "given_name_dm", "family_name_dm", "dob_ym_tok"),
    _same("family_birthday", "family_name_tok", "dob_md_tok", "given_name_dm"),
    BlockingRule(
        "names_swapped",
        (("given_name_tok", "family_name_tok"), ("family_name_tok", "given_name_tok")),
    ),
    BlockingRule(
        "dob_transposed", (("dob_swap_tok", "dob_tok"), ("family_name_dm", "family_name_dm"))
    ),
)


def _splink_level(level: Level) -> Any:
    if level.array_intersect_column is not None:
        created: Any = cll.ArrayIntersectLevel(level.array_intersect_column, min_intersection=1)
        return created.configure(label_for_charts=level.label)
    created = cll.CustomLevel(
        level.sql, label_for_charts=level.label, base_dialect_str=BASE_DIALECT
    )
    if level.is_null_level:
        return created.configure(is_null_level=True)
    if level.tf_column is not None:
        return created.configure(tf_adjustment_column=level.tf_column, tf_adjustment_weight=1.0)
    return created


def splink_comparison(comparison: Comparison) -> Any:
    return cl.CustomComparison(
        output_column_name=comparison.name,
        comparison_description=comparison.description,
        comparison_levels=[*(_splink_level(level) for level in comparison.levels), cll.ElseLevel()],
    )


def settings_creator(*, prior: float = DEFAULT_PRIOR) -> SettingsCreator:
    """Untrained settings for deduplicating the whole registry (all sources in one table)."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name=UNIQUE_ID,
        probability_two_random_records_match=prior,
        comparisons=[splink_comparison(c) for c in COMPARISONS],
        blocking_rules_to_generate_predictions=[CustomRule(rule.sql) for rule in BLOCKING_RULES],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=[],
        max_iterations=20,
        em_convergence=1e-4,
    )
