"""Constrained clustering: decisions and the NHS rule outrank scores."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.identity.clustering import PRECHECK_MAX, cluster_records, greedy_clusters


def as_sets(clusters: list[set[object]]) -> set[frozenset[object]]:
    return {frozenset(c) for c in clusters}


def test_links_join_records_transitively() -> None:
    result = cluster_records([1, 2, 3, 4], [(1, 2, 20.0), (2, 3, 15.0)])
    assert as_sets(result.clusters) == {frozenset({1, 2, 3}), frozenset({4})}


def test_different_health_nhs_numbers_are_never_chained() -> None:
    # 1 and 3 hold different NHS numbers; 2 (education, none) links strongly to both.
    result = cluster_records(
        [1, 2, 3], [(1, 2, 20.0), (2, 3, 18.0)], health_nhs={1: "nhsA", 3: "nhsB"}
    )
    assert as_sets(result.clusters) == {frozenset({1, 2}), frozenset({3})}
    assert result.refused_nhs_conflict == 1


def test_same_nhs_number_may_join() -> None:
    result = cluster_records([1, 2], [(1, 2, 20.0)], health_nhs={1: "nhsA", 2: "nhsA"})
    assert as_sets(result.clusters) == {frozenset({1, 2})}


def test_cannot_link_refuses_direct_and_chained_links() -> None:
    result = cluster_records(
        [1, 2, 3], [(1, 2, 20.0), (2, 3, 18.0), (1, 3, 30.0)], cannot_link=[(1, 3)]
    )
    assert as_sets(result.clusters) == {frozenset({1, 2}), frozenset({3})}
    assert result.refused_cannot_link == 2


def test_must_link_joins_without_a_score_and_outranks_the_nhs_rule() -> None:
    result = cluster_records([1, 2], [], health_nhs={1: "nhsA", 2: "nhsB"}, must_link=[(1, 2)])
    assert as_sets(result.clusters) == {frozenset({1, 2})}


def test_order_is_by_weight_so_the_strongest_link_wins_a_conflict() -> None:
    # 2 could join 1 (weak) or 3 (strong); 1 and 3 conflict.
    result = cluster_records(
        [1, 2, 3], [(1, 2, 10.0), (2, 3, 25.0)], health_nhs={1: "nhsA", 3: "nhsB"}
    )
    assert as_sets(result.clusters) == {frozenset({2, 3}), frozenset({1})}


def test_conflicting_records_in_one_bucket_are_kept_apart() -> None:
    # 1 and 3 are "twins" (same bucket, conflicting); 2 links to both; 4 shares no bucket.
    buckets = {1: "dob1", 2: "dob1", 3: "dob1", 4: "dob2"}
    result = cluster_records(
        [1, 2, 3, 4],
        [(1, 2, 20.0), (2, 3, 18.0), (3, 4, 17.0)],
        conflict_key=buckets,
        conflicts=lambda a, b: {a, b} == {1, 3},
    )
    assert as_sets(result.clusters) == {frozenset({1, 2}), frozenset({3, 4})}
    assert result.refused_conflict == 1


records = st.lists(st.integers(0, 30), min_size=2, max_size=25, unique=True)


@st.composite
def problems(draw: st.DrawFn) -> dict[str, Any]:
    """Random records, links, NHS numbers, decisions, buckets and a conflict rule."""
    nodes = draw(records)
    ends = st.sampled_from([*nodes, 40, 41])  # 40, 41: met only through a link or decision
    pair = st.tuples(ends, ends)
    weights = st.sampled_from([12.0, 15.5, 15.5, 20.0, 31.0])  # ties on purpose
    links = draw(st.lists(st.tuples(ends, ends, weights)))
    some = st.lists(st.sampled_from(nodes), unique=True)
    clashing = frozenset(
        draw(st.lists(st.frozensets(st.sampled_from(nodes), min_size=2, max_size=2)))
    )
    return {
        "records": nodes,
        "links": links,
        "health_nhs": {n: draw(st.sampled_from(["", "A", "B", "C"])) for n in draw(some)},
        "must_link": draw(st.lists(pair, max_size=2)),
        "cannot_link": draw(st.lists(pair, max_size=3)),
        "conflict_key": {n: draw(st.sampled_from(["d1", "d2", None])) for n in draw(some)},
        "conflicts": lambda a, b: frozenset((a, b)) in clashing,
    }


@settings(deadline=None, max_examples=400)
@given(problems())
def test_components_first_gives_the_greedy_unions_result(problem: dict[str, Any]) -> None:
    """Clustering only the components that hold a constrained pair is a shortcut: clusters
    (in order), link counts and refusals are the greedy union's over everything."""
    fast = cluster_records(**problem)
    greedy = greedy_clusters(**problem)
    assert fast.clusters == greedy.clusters
    assert fast.links_used == greedy.links_used
    assert fast.refused == greedy.refused
    assert (fast.refused_nhs_conflict, fast.refused_cannot_link, fast.refused_conflict) == (
        greedy.refused_nhs_conflict,
        greedy.refused_cannot_link,
        greedy.refused_conflict,
    )


def test_a_large_component_is_clustered_greedily_with_the_same_result() -> None:
    """A component past PRECHECK_MAX skips the pairwise pre-check; the greedy union then
    keeps its conflicting pair apart as it would have anyway."""
    size = PRECHECK_MAX + 50
    chain = [(n, n + 1, 20.0 - n / 1000) for n in range(size - 1)]
    problem: dict[str, Any] = {
        "records": list(range(size)),
        "links": chain,
        "conflict_key": dict.fromkeys(range(size), "d1"),
        "conflicts": lambda a, b: {a, b} == {0, size - 1},
    }
    fast, greedy = cluster_records(**problem), greedy_clusters(**problem)
    assert fast.clusters == greedy.clusters and len(fast.clusters) == 2
    assert fast.refused_conflict == greedy.refused_conflict == 1


def test_conflict_keys_of_mixed_types_are_buckets_too() -> None:
    """Keys Arrow cannot put in one column (ints beside text, tuples) are coded in Python;
    the result is still the greedy union's."""
    problem: dict[str, Any] = {
        "records": [1, 2, 3, 4, 5],
        "links": [(1, 2, 20.0), (2, 3, 18.0), (4, 5, 15.0)],
        "conflict_key": {1: 7, 2: "7", 3: 7, 4: ("d", 1), 5: ("d", 1)},
        "conflicts": lambda a, b: {a, b} in ({1, 3}, {4, 5}),
    }
    fast, greedy = cluster_records(**problem), greedy_clusters(**problem)
    assert fast.clusters == greedy.clusters == [{1, 2}, {3}, {4}, {5}]
    assert fast.refused_conflict == greedy.refused_conflict == 2
