"""Stable identifier rules on small hand-made cases (DESIGN.md, Stable identifiers)."""

from __future__ import annotations

from datetime import datetime
from itertools import count

from linkage.identity.assignment import PriorIdentifier, assign_identifiers

OLD = datetime(2025, 1, 1)
NEW = datetime(2026, 1, 1)


def fresh_ccis() -> object:
    numbers = count(1)
    return lambda: f"NEW{next(numbers)}"


def prior(*items: tuple[str, datetime, bool]) -> dict[str, PriorIdentifier]:
    return {cci: PriorIdentifier(cci, created, anchored) for cci, created, anchored in items}


def test_nothing_changes_when_clusters_are_unchanged() -> None:
    plan = assign_identifiers(
        [{1, 2}, {3}],
        {1: "A", 2: "A", 3: "B"},
        prior(("A", OLD, False), ("B", OLD, False)),
        make_cci=fresh_ccis(),  # type: ignore[arg-type]
    )
    assert plan.cci_of_cluster == ["A", "B"]
    assert plan.events == [] and not plan.created and not plan.superseded


def test_new_records_join_their_cluster_and_new_children_get_new_ccis() -> None:
    plan = assign_identifiers(
        [{1, 2, 9}, {10}],
        {1: "A", 2: "A"},
        prior(("A", OLD, False)),
        make_cci=fresh_ccis(),  # type: ignore[arg-type]
    )
    assert plan.cci_of_cluster == ["A", "NEW1"]
    assert plan.reassigned == {9: (None, "A"), 10: (None, "NEW1")}
    assert [e.type for e in plan.events] == ["created", "reassigned", "reassigned"]


def test_merge_keeps_the_larger_and_supersedes_the_other() -> None:
    plan = assign_identifiers(
        [{1, 2, 3, 4, 5}],
        {1: "A", 2: "A", 3: "B", 4: "B", 5: "B"},
        prior(("A", OLD, True), ("B", NEW, False)),
    )
    assert plan.cci_of_cluster == ["B"]
    assert plan.superseded == {"A": "B"}
    assert plan.reassigned == {1: ("A", "B"), 2: ("A", "B")}


def test_merge_tie_goes_to_the_nhs_anchored_then_the_oldest() -> None:
    records = {1: "A", 2: "B"}
    anchored = assign_identifiers([{1, 2}], records, prior(("A", OLD, False), ("B", NEW, True)))
    assert anchored.cci_of_cluster == ["B"] and anchored.superseded == {"A": "B"}
    oldest = assign_identifiers([{1, 2}], records, prior(("A", NEW, False), ("B", OLD, False)))
    assert oldest.cci_of_cluster == ["B"] and oldest.superseded == {"A": "B"}


def test_split_keeps_the_cci_on_the_larger_part() -> None:
    plan = assign_identifiers(
        [{1}, {2, 3}],
        {1: "A", 2: "A", 3: "A"},
        prior(("A", OLD, False)),
        make_cci=fresh_ccis(),  # type: ignore[arg-type]
    )
    assert plan.cci_of_cluster == ["NEW1", "A"]
    assert plan.split_from == {"NEW1": "A"}
    assert ("split", "NEW1", "A") in [(e.type, e.cci, e.related_cci) for e in plan.events]


def test_split_that_undoes_a_merge_reinstates_the_superseded_cci() -> None:
    plan = assign_identifiers(
        [{1, 2, 3}, {4, 5}],
        {1: "A", 2: "A", 3: "A", 4: "A", 5: "A"},
        prior(("A", OLD, False)),
        members_when_superseded={"B": ("A", frozenset({4, 5}))},
        make_cci=fresh_ccis(),  # type: ignore[arg-type]
    )
    assert plan.cci_of_cluster == ["A", "B"]
    assert plan.reinstated == ["B"] and not plan.created


def test_a_cci_left_without_records_is_retired() -> None:
    plan = assign_identifiers([{1}], {1: "A", 2: "B"}, prior(("A", OLD, False), ("B", OLD, False)))
    assert plan.retired == ["B"] and plan.cci_of_cluster == ["A"]


def test_three_way_shuffle_keeps_each_cci_where_most_of_its_records_went() -> None:
    # A = {1,2,3}, B = {4,5}: record 3 moves to B's child.
    plan = assign_identifiers(
        [{1, 2}, {3, 4, 5}],
        {1: "A", 2: "A", 3: "A", 4: "B", 5: "B"},
        prior(("A", OLD, False), ("B", OLD, False)),
    )
    assert plan.cci_of_cluster == ["A", "B"]
    assert plan.reassigned == {3: ("A", "B")}
    assert not plan.superseded and not plan.created
