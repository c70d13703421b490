"""Batch scoring with Splink: candidate pairs from the blocking rules, scored by a stored model."""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
from splink import Linker

from linkage.model.backend import duckdb_api, register_records
from linkage.model.comparisons import COMPARISONS

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
    settings = dict(model)
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
