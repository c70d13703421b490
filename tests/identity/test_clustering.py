"""Constrained clustering: decisions and the NHS rule outrank scores."""

from linkage.identity.clustering import cluster_records


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
