"""Explanations of scored pairs for review items: the waterfall of match weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from linkage.model.backend import as_arrays
from linkage.model.realtime import TermFrequencies, compiled_model, explanation


class Explainer:
    """The waterfall of scored pairs (prior, then each comparison's level and weight), from the
    native scorer with the run's term frequencies: equal to Splink's, and available for pairs
    kept from earlier runs as much as for pairs scored now. Built only for new review items."""

    def __init__(
        self, records: pa.Table, model: dict[str, Any], frequencies: TermFrequencies | None
    ) -> None:
        self.records = records
        self.model = model
        self.frequencies = frequencies

    def __call__(self, pairs: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
        if not pairs:
            return []
        compiled = compiled_model(self.model)
        frequencies = self.frequencies or count_frequencies(
            as_arrays(self.records), compiled.tf_columns
        )
        wanted = sorted({uid for pair in pairs for uid in pair})
        mask = pc.is_in(self.records["unique_id"], value_set=pa.array(wanted, pa.int64()))
        # Only the rows wanted made comparable: as_arrays of a million took 0.3 s of each run.
        rows = {row["unique_id"]: row for row in as_arrays(self.records.filter(mask)).to_pylist()}
        explained = []
        for a, b in pairs:
            explained.append(explanation(compiled.score(rows[a], rows[b], frequencies)))
        return explained


def count_frequencies(records: pa.Table, columns: Sequence[str]) -> dict[str, dict[Any, float]]:
    """Splink's term-frequency tables over `records`: count of a value / non-null values."""
    tables: dict[str, dict[Any, float]] = {}
    for column in columns:
        counts = pc.value_counts(records[column].drop_null())
        values, numbers = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
        total = sum(numbers)
        tables[column] = {v: n / total for v, n in zip(values, numbers, strict=True)}
    return tables
