"""Batch scoring with Splink: candidate pairs from the blocking rules, scored by a stored model,
on DuckDB or Spark (the backend is the caller's `db_api`; pairs come back as Arrow either way)."""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
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
    records, frozen = split_frozen_frequencies(records)
    frame = register_records(db_api, records, "scoring_records")
    linker = Linker(frame, settings, log_level=logging.WARNING)
    use_frequencies(linker, db_api, frozen, "scoring")
    predictions = linker.inference.predict(threshold_match_weight=threshold_match_weight)
    names = [c.name for c in COMPARISONS]
    wanted = list(PAIR_COLUMNS)
    if explain:
        wanted += [f"gamma_{n}" for n in names] + [f"mw_{n}" for n in names]
    table: pa.Table = predictions.as_pyarrow_table()  # type: ignore[no-untyped-call]
    tf_columns = [c for c in table.column_names if c.startswith("mw_tf_adj_")]
    return table.select(wanted + (tf_columns if explain else []))


def split_frozen_frequencies(records: pa.Table) -> tuple[pa.Table, dict[str, pa.Table]]:
    """`records` without their `tf_<column>` columns (a model's frozen term frequencies, see
    `linkage.run`), and those frequencies as lookup tables (`<column>`, `tf_<column>`).

    Splink joins its own term-frequency columns onto its input whatever that input holds: on
    DuckDB a `tf_` input column then stands beside a second one counted over the records, and
    on Spark the two are an ambiguous reference that stops the run. As lookup tables, every
    predict path reads the frozen values, and Splink counts nothing."""
    frozen = {c: f"tf_{c}" for c in TF_COLUMNS if f"tf_{c}" in records.column_names}
    lookups = {}
    for column, tf in frozen.items():
        known = records.select([column, tf]).filter(pc.is_valid(records[tf]))
        lookups[column] = known.group_by([column, tf]).aggregate([])
    return records.drop_columns(list(frozen.values())), lookups


def use_frequencies(linker: Linker, db_api: Any, lookups: dict[str, pa.Table], name: str) -> None:
    """Give `linker` the frozen lookups (`split_frozen_frequencies`); a column without one is
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
