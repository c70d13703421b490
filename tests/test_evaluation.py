from linkage.evaluation import accuracy


def test_pairwise_metrics_on_a_small_case() -> None:
    truth = {1: "a", 2: "a", 3: "a", 4: "b", 5: "b", 6: "c"}
    predicted = {1: "x", 2: "x", 3: "y", 4: "y", 5: "y", 6: "z"}
    result = accuracy(predicted, truth)
    # true pairs: (1,2),(1,3),(2,3),(4,5) = 4; predicted: (1,2),(3,4),(3,5),(4,5) = 4; tp = 2
    assert (result.true_pairs, result.predicted_pairs, result.true_positive_pairs) == (4, 4, 2)
    assert result.precision == 0.5 and result.recall == 0.5 and result.f1 == 0.5
    assert result.exact_cluster_rate == 1 / 3  # only "c" is exactly one cluster


def test_perfect_clustering() -> None:
    truth = {1: "a", 2: "a", 3: "b"}
    result = accuracy({1: 7, 2: 7, 3: 8}, truth)
    assert result.precision == result.recall == result.f1 == result.exact_cluster_rate == 1.0
