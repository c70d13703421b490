"""Scoring only the pairs that involve new or changed records (incremental linkage runs).

A full run scores every blocked pair of the registry. After a small delivery almost all of
those pairs are unchanged, so a re-run with the same model keeps them and asks Splink only for
the pairs with at least one changed record: `predict_between(unchanged, changed)` for the
pairs across, and `predict_within(changed)` for those among the changed. Term frequencies are
the model's frozen tables when given (`frequencies`), else counted over all records as a full
run counts them, so each pair scores as it would there.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from splink import Linker

from linkage.model.backend import as_arrays, duckdb_api, register_records
from linkage.model.scoring import (
    PAIR_COLUMNS,
    frequency_lookups,
    use_frequencies,
    with_catalogue_sql,
)

PAIR_SCHEMA = pa.schema(
    [
        ("unique_id_l", pa.int64()),
        ("unique_id_r", pa.int64()),
        ("match_weight", pa.float64()),
        ("match_probability", pa.float64()),
    ]
)
#: The version each record was read or scored at, by record key.
VERSION_SCHEMA = pa.schema([("unique_id", pa.int64()), ("version", pa.int64())])


def ordered_pairs(pairs: pa.Table) -> pa.Table:
    """PAIR_COLUMNS with the smaller record key on the left, so that a pair has one form
    whichever way round Splink produced it."""
    left, right = pairs["unique_id_l"], pairs["unique_id_r"]
    return pa.table(
        [
            pc.cast(pc.min_element_wise(left, right), pa.int64()),
            pc.cast(pc.max_element_wise(left, right), pa.int64()),
            pc.cast(pairs["match_weight"], pa.float64()),
            pc.cast(pairs["match_probability"], pa.float64()),
        ],
        schema=PAIR_SCHEMA,
    )


def score_changed_pairs(
    records: pa.Table,
    changed: Collection[int],
    model: dict[str, Any],
    *,
    threshold_match_weight: float,
    db_api: Any = None,
    frequencies: Mapping[str, Mapping[Any, float]] | None = None,
) -> pa.Table:
    """Every blocked pair of `records` with at least one record in `changed`, at or above the
    threshold, as PAIR_SCHEMA (smaller key on the left)."""
    if not changed:
        return PAIR_SCHEMA.empty_table()
    settings = with_catalogue_sql(model)  # as score_pairs does, so both score alike
    settings["retain_matching_columns"] = False
    settings["retain_intermediate_calculation_columns"] = False
    settings["additional_columns_to_retain"] = []
    db_api = db_api or duckdb_api()
    records = as_arrays(records)  # once, not for each of the three tables registered
    is_changed = pc.is_in(records["unique_id"], value_set=pa.array(list(changed), pa.int64()))
    everyone = register_records(db_api, records, "incremental_all")
    fresh = register_records(db_api, records.filter(is_changed), "incremental_changed")
    rest = register_records(db_api, records.filter(pc.invert(is_changed)), "incremental_rest")
    # The settings are a model this service trained: checking them again only cost time
    # (Splink parses every comparison's SQL to look for missing columns: 0.2-0.4 s a run).
    linker = Linker(everyone, settings, log_level=logging.WARNING, validate_settings=False)
    use_frequencies(linker, db_api, frequency_lookups(records, frequencies), "incremental")
    inference = linker.inference
    parts = [
        inference.predict_between(rest, fresh, threshold_match_weight=threshold_match_weight),
        inference.predict_within(fresh, threshold_match_weight=threshold_match_weight),
    ]
    tables = [
        ordered_pairs(p.as_pyarrow_table().select(list(PAIR_COLUMNS)))  # type: ignore[no-untyped-call]
        for p in parts
    ]
    return pa.concat_tables(tables)
