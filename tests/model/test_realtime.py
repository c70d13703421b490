"""The native scorer gives Splink's match weight for every pair, term frequencies included."""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
from splink import Linker

from linkage.model.backend import duckdb_api, register_records
from linkage.model.realtime import CompiledModel, term_frequencies
from linkage.model.settings import settings_creator


def model_with_parameters() -> dict[str, Any]:
    """Untrained settings with arbitrary but distinct m/u on every level."""
    model = settings_creator(prior=2e-4).get_settings("duckdb").as_dict()
    for c_index, comparison in enumerate(model["comparisons"]):
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        for l_index, level in enumerate(levels):
            level["m_probability"] = (len(levels) - l_index) / (len(levels) * 2.0) + c_index / 100
            level["u_probability"] = (l_index + 1) / (len(levels) * 3.0) + 1e-4 * c_index
    return model


def test_native_scores_equal_splink_scores(perturbed_records: pa.Table) -> None:
    model = model_with_parameters()
    settings = dict(model, blocking_rules_to_generate_predictions=["1 = 1"])
    linker = Linker(
        register_records(duckdb_api(memory_limit="1GB"), perturbed_records, "r"),
        settings,
        log_level=logging.ERROR,
    )
    pairs = linker.inference.predict().as_record_list()
    rows = perturbed_records.to_pylist()
    by_id = {row["unique_id"]: row for row in rows}
    compiled = CompiledModel(model)
    assert compiled.tf_columns == ("family_name_tok", "given_name_tok", "postcode_tok")
    tf = term_frequencies(rows, compiled.tf_columns)

    worst = 0.0
    for pair in pairs:
        score = compiled.score(by_id[pair["unique_id_l"]], by_id[pair["unique_id_r"]], tf)
        worst = max(worst, abs(score.match_weight - pair["match_weight"]))
        assert abs(score.match_probability - pair["match_probability"]) < 1e-9
    assert len(pairs) > 3000
    assert worst < 1e-9
