"""Batch scoring with Splink: candidate pairs from the blocking rules, scored by a stored model,
on DuckDB or Spark (the backend is the caller's `db_api`; pairs come back as Arrow either way)."""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
from splink import Linker

from linkage.model.backend import duckdb_api, register_records
from linkage.model.comparisons import COMPARISONS
from linkage.model.settings import BASE_DIALECT

PAIR_COLUMNS = ("unique_id_l", "unique_id_r", "match_weight", "match_probability")


def score_pairs(
    records: pa.Table,
    model: dict[str, Any],
    *,
    threshold_match_weight: float,
    db_api: Any = None,
    explain: bool = True,
) -> pa.Table:
    """Score every blocked pair of `records` (contract columns + unique_id) with `model`.

    Returns the pairs at or above the threshold with match weight and probability, plus the
    level (`gamma_<comparison>`) and match weight (`mw_<comparison>`, `mw_tf_adj_<comparison>`)
    of each comparison when `explain` is set: what the review pages draw as a waterfall.
    """
    settings = with_catalogue_sql(model)
    settings["retain_matching_columns"] = explain
    settings["retain_intermediate_calculation_columns"] = explain
    settings["additional_columns_to_retain"] = []
    db_api = db_api or duckdb_api()
    frame = register_records(db_api, records, "scoring_records")
    linker = Linker(frame, settings, log_level=logging.WARNING)
    predictions = linker.inference.predict(threshold_match_weight=threshold_match_weight)
    names = [c.name for c in COMPARISONS]
    wanted = list(PAIR_COLUMNS)
    if explain:
        wanted += [f"gamma_{n}" for n in names] + [f"mw_{n}" for n in names]
    table: pa.Table = predictions.as_pyarrow_table()  # type: ignore[no-untyped-call]
    tf_columns = [c for c in table.column_names if c.startswith("mw_tf_adj_")]
    return table.select(wanted + (tf_columns if explain else []))


def with_catalogue_sql(model: dict[str, Any]) -> dict[str, Any]:
    """A copy of `model` whose level SQL is the catalogue's, in the catalogue's dialect.

    A saved model freezes its level SQL in the dialect of the backend that trained it: a model
    trained on Spark holds Spark SQL, and models saved before the catalogue's SQL was
    backend-neutral hold DuckDB-only functions (`list_intersect`) that Spark cannot run. The
    levels are the catalogue's in the same order, as the real-time scorer already assumes, so
    taking the SQL from the catalogue changes no level and no weight.
    """
    settings = dict(model)
    settings["sql_dialect"] = BASE_DIALECT  # every level's SQL is replaced by the catalogue's
    by_name = {c.name: c for c in COMPARISONS}
    comparisons = []
    for stored in model["comparisons"]:
        comparison = by_name[stored["output_column_name"]]
        levels = stored["comparison_levels"]
        if len(levels) != len(comparison.levels) + 1:  # + the implicit ELSE
            raise ValueError(f"model comparison {comparison.name} does not fit the catalogue")
        rebuilt = [
            {**level, "sql_condition": ours.sql}
            for level, ours in zip(levels[:-1], comparison.levels, strict=True)
        ]
        comparisons.append({**stored, "comparison_levels": [*rebuilt, levels[-1]]})
    settings["comparisons"] = comparisons
    return settings
