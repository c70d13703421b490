"""Batch scoring with Splink: candidate pairs from the blocking rules, scored by a stored model,
on DuckDB or Spark (the backend is the caller's `db_api`; pairs come back as Arrow either way)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
from splink import Linker

from linkage.model.backend import duckdb_api, register_records
from linkage.model.comparisons import COMPARISONS
from linkage.model.settings import BASE_DIALECT

PAIR_COLUMNS = ("unique_id_l", "unique_id_r", "match_weight", "match_probability")
#: The columns whose term frequencies adjust match weights.
TF_COLUMNS: tuple[str, ...] = tuple(
    sorted({level.tf_column for c in COMPARISONS for level in c.levels if level.tf_column})
)


def score_pairs(
    records: pa.Table,
    model: dict[str, Any],
    *,
    threshold_match_weight: float,
    db_api: Any = None,
    explain: bool = True,
    frequencies: Mapping[str, Mapping[Any, float]] | None = None,
) -> pa.Table:
    """Score every blocked pair of `records` (contract columns + unique_id) with `model`.

    Returns the pairs at or above the threshold with match weight and probability, plus the
    level (`gamma_<comparison>`) and match weight (`mw_<comparison>`, `mw_tf_adj_<comparison>`)
    of each comparison when `explain` is set: what the review pages draw as a waterfall.
    `frequencies`: the model's frozen term-frequency tables (else Splink counts them over
    `records`).
    """
    settings = with_catalogue_sql(model)
    settings["retain_matching_columns"] = explain
    settings["retain_intermediate_calculation_columns"] = explain
    settings["additional_columns_to_retain"] = []
    db_api = db_api or duckdb_api()
    frame = register_records(db_api, records, "scoring_records")
    # A trained model's settings: not checked again (`incremental.score_changed_pairs`).
    linker = Linker(frame, settings, log_level=logging.WARNING, validate_settings=False)
    use_frequencies(linker, db_api, frequency_lookups(records, frequencies), "scoring")
    predictions = linker.inference.predict(threshold_match_weight=threshold_match_weight)
    names = [c.name for c in COMPARISONS]
    wanted = list(PAIR_COLUMNS)
    if explain:
        wanted += [f"gamma_{n}" for n in names] + [f"mw_{n}" for n in names]
    table: pa.Table = predictions.as_pyarrow_table()  # type: ignore[no-untyped-call]
    tf_columns = [c for c in table.column_names if c.startswith("mw_tf_adj_")]
    return table.select(wanted + (tf_columns if explain else []))


def frequency_lookups(
    records: pa.Table, frequencies: Mapping[str, Mapping[Any, float]] | None
) -> dict[str, pa.Table]:
    """A model's frozen term frequencies (`linkage.run`) as Splink lookup tables
    (`<column>`, `tf_<column>`), typed as `records`' columns. A value a table lacks gets no
    adjustment, as in real-time scoring.

    Lookups, not `tf_` columns on the records: Splink joins its own counted `tf_` columns
    onto its input whatever that input holds, so on DuckDB a `tf_` input column stood beside
    a second, counted one, and on Spark the two were an ambiguous reference that stopped the
    run. Every predict path reads lookups, and Splink then counts nothing."""
    return {
        column: pa.table(
            {
                column: pa.array(list(table.keys()), records.schema.field(column).type),
                f"tf_{column}": pa.array(list(table.values()), pa.float64()),
            }
        )
        for column, table in (frequencies or {}).items()
    }


def use_frequencies(linker: Linker, db_api: Any, lookups: dict[str, pa.Table], name: str) -> None:
    """Give `linker` the frozen lookups (`frequency_lookups`); a column without one is
    counted over the linker's records, as Splink would."""
    for column in TF_COLUMNS:
        if column not in lookups:
            linker.table_management.compute_tf_table(column)
            continue
        table = db_api.register(lookups[column], table_name=f"{name}_tf_{column}")
        linker.table_management.register_term_frequency_lookup(table, column)


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
