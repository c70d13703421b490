"""The Python twin of every comparison level chooses the same level as Splink's SQL."""

from __future__ import annotations

import logging

import pyarrow as pa
from splink import Linker

from linkage.model.backend import duckdb_api, register_records
from linkage.model.comparisons import COMPARISONS
from linkage.model.settings import settings_creator


def test_python_levels_equal_splink_levels_on_every_pair(perturbed_records: pa.Table) -> None:
    settings = settings_creator().get_settings("duckdb").as_dict()
    settings["blocking_rules_to_generate_predictions"] = ["1 = 1"]  # every pair
    settings["retain_intermediate_calculation_columns"] = True
    settings["retain_matching_columns"] = True
    db_api = duckdb_api(memory_limit="1GB")
    linker = Linker(
        register_records(db_api, perturbed_records, "r"), settings, log_level=logging.ERROR
    )
    pairs = linker.inference.predict().as_record_list()
    by_id = {row["unique_id"]: row for row in perturbed_records.to_pylist()}
    n = perturbed_records.num_rows
    assert len(pairs) == n * (n - 1) // 2

    seen: dict[str, set[int]] = {c.name: set() for c in COMPARISONS}
    for pair in pairs:
        left, right = by_id[pair["unique_id_l"]], by_id[pair["unique_id_r"]]
        for comparison in COMPARISONS:
            expected = pair[f"gamma_{comparison.name}"]
            assert comparison.level_of(left, right) == expected, (comparison.name, pair)
            seen[comparison.name].add(expected)
    # the data exercises every level of every comparison
    for comparison in COMPARISONS:
        non_null = len(comparison.levels) - 1
        assert seen[comparison.name] >= set(range(non_null + 1)), comparison.name
