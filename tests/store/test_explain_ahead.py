"""Review items' explanations worked out ahead of a run's write, a slice at a time, until the
run must write: the write works out the rest."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from linkage.identity.assignment import AssignmentPlan
from linkage.model.incremental import PAIR_SCHEMA, VERSION_SCHEMA
from linkage.run import ReviewPair, RunOutcome, ScoredUpdate
from linkage.store import registry


def _outcome(pairs: int, asked: list[int]) -> RunOutcome:
    def explain(given: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
        asked.append(len(given))
        return [{"pair": list(pair)} for pair in given]

    return RunOutcome(
        clusters=[],
        plan=AssignmentPlan(),
        nhs_anchored=[],
        review=[ReviewPair(i, i + 1, 5.0, 0.9, "review_band") for i in range(pairs)],
        stats={},
        scored=ScoredUpdate(True, 1, PAIR_SCHEMA.empty_table(), VERSION_SCHEMA.empty_table()),
        explain=explain,
    )


def test_explaining_ahead_stops_when_told_and_resumes_where_it_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry, "EXPLAIN_SLICE", 4)
    asked: list[int] = []
    outcome = _outcome(10, asked)
    checks = iter([False, True])
    registry.explain_ahead(outcome, until=lambda: next(checks))
    assert asked == [4] and len(outcome.explained) == 4  # one slice, then told to stop
    registry.explain_ahead(outcome)
    assert asked == [4, 4, 2]  # only what was missing
    assert outcome.explained[(7, 8)] == json.dumps({"pair": [7, 8]})
    assert len(outcome.explained) == 10
