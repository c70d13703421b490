"""Native scoring of one pair with a stored model: the real-time path and explanations.

Splink's per-record path costs 200-400 ms; this one is microseconds. It evaluates the Python
twins of the catalogue's levels and takes every level's match weight from Splink's own model
objects (the same m/u clamping and term-frequency formula), so a pair scores the same here
as in a Splink batch run with the same model and term-frequency tables.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from splink import SettingsCreator

from linkage.model.comparisons import COMPARISONS, Comparison, Record

TermFrequencies = Mapping[str, Mapping[Any, float]]  # tf column -> value -> frequency


@dataclass(frozen=True)
class LevelWeight:
    label: str
    m_probability: float | None
    u_probability: float | None
    match_weight: float
    tf_column: str | None = None
    tf_weight: float = 0.0
    tf_log2_u_exact: float = 0.0
    tf_minimum_u: float = 0.0


@dataclass(frozen=True)
class ComparisonScore:
    """One bar of the waterfall: a comparison's level and its contribution."""

    comparison: str
    level: int
    label: str
    match_weight: float
    tf_adjustment: float


@dataclass(frozen=True)
class PairScore:
    match_weight: float
    match_probability: float
    prior_weight: float
    parts: tuple[ComparisonScore, ...]


def probability(match_weight: float) -> float:
    bayes_factor: float = 2.0**match_weight
    return bayes_factor / (1.0 + bayes_factor)


def compiled_model(model: dict[str, Any]) -> CompiledModel:
    """`CompiledModel(model)`, made once per process for the same settings: Splink builds its
    settings object in about 0.3 s, and a run needs the compiled model twice (term-frequency
    columns, then review explanations)."""
    return _compiled(json.dumps(model, sort_keys=True))


@lru_cache(maxsize=4)
def _compiled(settings: str) -> CompiledModel:
    return CompiledModel(json.loads(settings))


class CompiledModel:
    """A trained Splink model, compiled for scoring pairs in Python. Read only once made."""

    def __init__(self, model: dict[str, Any]) -> None:
        settings = SettingsCreator.from_path_or_dict(model).get_settings("duckdb")
        prior = settings._probability_two_random_records_match
        self.prior_weight = math.log2(prior / (1.0 - prior))
        by_name = {c.output_column_name: c for c in settings.comparisons}
        self.comparisons: list[tuple[Comparison, dict[int, LevelWeight]]] = []
        for comparison in COMPARISONS:
            splink_comparison = by_name[comparison.name]
            levels = splink_comparison.comparison_levels
            weights: dict[int, LevelWeight] = {}
            for level in levels:
                weight = level._match_weight
                tf_column = None
                tf_weight = 0.0
                log2_u_exact = 0.0
                if (
                    level._has_tf_adjustments
                    and level.comparison_vector_value != -1
                    and not level._is_else_level
                    and level._tf_adjustment_weight != 0
                ):
                    tf_column = level._tf_adjustment_input_column.unquote().name
                    tf_weight = float(level._tf_adjustment_weight)
                    u_exact = level._u_probability_corresponding_to_exact_match(levels)
                    log2_u_exact = math.log2(u_exact)
                weights[level.comparison_vector_value] = LevelWeight(
                    label=level.label_for_charts,
                    m_probability=None if level.is_null_level else level.m_probability,
                    u_probability=None if level.is_null_level else level.u_probability,
                    match_weight=0.0 if weight is None else float(weight),
                    tf_column=tf_column,
                    tf_weight=tf_weight,
                    tf_log2_u_exact=log2_u_exact,
                    tf_minimum_u=float(level._tf_minimum_u_value),
                )
            self.comparisons.append((comparison, weights))

    @property
    def tf_columns(self) -> tuple[str, ...]:
        return tuple(
            sorted({w.tf_column for _, ws in self.comparisons for w in ws.values() if w.tf_column})
        )

    def match_weight(self, left: Record, right: Record, tf: TermFrequencies | None = None) -> float:
        """`score(...).match_weight` without the waterfall: the hot path of real-time matching
        scores every candidate but explains only the few that decide. Same arithmetic, in the
        same order, as `score`, so the two agree to the last bit."""
        total = self.prior_weight
        for comparison, weights in self.comparisons:
            level = weights[comparison.level_of(left, right)]
            adjustment = 0.0
            if level.tf_column is not None and tf is not None:
                adjustment = _tf_adjustment(level, left, right, tf.get(level.tf_column, {}))
            total += level.match_weight + adjustment
        return total

    def score(self, left: Record, right: Record, tf: TermFrequencies | None = None) -> PairScore:
        total = self.prior_weight
        parts = []
        for comparison, weights in self.comparisons:
            gamma = comparison.level_of(left, right)
            level = weights[gamma]
            adjustment = 0.0
            if level.tf_column is not None and tf is not None:
                adjustment = _tf_adjustment(level, left, right, tf.get(level.tf_column, {}))
            total += level.match_weight + adjustment
            parts.append(
                ComparisonScore(comparison.name, gamma, level.label, level.match_weight, adjustment)
            )
        return PairScore(total, probability(total), self.prior_weight, tuple(parts))


def _tf_adjustment(
    level: LevelWeight, left: Record, right: Record, frequencies: Mapping[Any, float]
) -> float:
    """Splink's formula: weight * (log2(u of the exact level) - log2(max(tf_l, tf_r, min)))."""
    column = level.tf_column
    assert column is not None
    present = [
        frequency
        for value in (left[column], right[column])
        if value is not None and (frequency := frequencies.get(value)) is not None
    ]
    if not present:
        return 0.0
    return level.tf_weight * (level.tf_log2_u_exact - math.log2(max(*present, level.tf_minimum_u)))


def term_frequencies(
    records: list[Record], columns: tuple[str, ...]
) -> dict[str, dict[Any, float]]:
    """Splink's term-frequency tables: count of each value / count of non-null values."""
    tables: dict[str, dict[Any, float]] = {}
    for column in columns:
        counts: dict[Any, int] = {}
        for record in records:
            value = record[column]
            if value is not None:
                counts[value] = counts.get(value, 0) + 1
        total = sum(counts.values())
        tables[column] = {value: count / total for value, count in counts.items()}
    return tables


def explanation(score: PairScore) -> dict[str, Any]:
    """The waterfall of a pair, in the shape batch runs store on review items."""
    return {
        "prior_probability": probability(score.prior_weight),
        "match_weight": score.match_weight,
        "parts": [
            {
                "comparison": p.comparison,
                "level": p.level,
                "label": p.label,
                "match_weight": p.match_weight,
                "tf_adjustment": p.tf_adjustment,
            }
            for p in score.parts
        ],
    }
