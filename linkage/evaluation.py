"""Accuracy of a clustering against ground truth: pairwise and cluster-level metrics.

Pairwise counts come from the contingency table of (predicted cluster, true entity), so no
pair is ever enumerated: a pair is a true positive when both records share both labels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import asdict, dataclass


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


@dataclass(frozen=True)
class Accuracy:
    records: int
    true_pairs: int
    predicted_pairs: int
    true_positive_pairs: int
    precision: float
    recall: float
    f1: float
    #: Share of true entities whose records form exactly one predicted cluster, alone.
    exact_cluster_rate: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def accuracy(
    predicted: Mapping[Hashable, Hashable], truth: Mapping[Hashable, Hashable]
) -> Accuracy:
    """Compare record -> cluster labels with record -> true entity labels (same records)."""
    records = [r for r in truth if r in predicted]
    cells = Counter((predicted[r], truth[r]) for r in records)
    by_cluster = Counter(predicted[r] for r in records)
    by_entity = Counter(truth[r] for r in records)
    tp = sum(_pairs(n) for n in cells.values())
    predicted_pairs = sum(_pairs(n) for n in by_cluster.values())
    true_pairs = sum(_pairs(n) for n in by_entity.values())
    precision = tp / predicted_pairs if predicted_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    exact = sum(
        1 for (cluster, entity), n in cells.items() if n == by_cluster[cluster] == by_entity[entity]
    )
    return Accuracy(
        records=len(records),
        true_pairs=true_pairs,
        predicted_pairs=predicted_pairs,
        true_positive_pairs=tp,
        precision=precision,
        recall=recall,
        f1=f1,
        exact_cluster_rate=exact / len(by_entity) if by_entity else 1.0,
    )
