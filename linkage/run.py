"""One linkage run over a registry snapshot: score, cluster under constraints, assign CCIs.

Pure with respect to the store: the caller loads a `RegistrySnapshot` and writes the returned
`RunOutcome` in one transaction, so a run killed at any point changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from linkage.identity.assignment import AssignmentPlan, PriorIdentifier, assign_identifiers
from linkage.identity.clustering import cluster_records
from linkage.model.comparisons import COMPARISONS
from linkage.model.scoring import score_pairs

Stage = Callable[[str], None]


@dataclass(frozen=True)
class Thresholds:
    """Match weights: at or above `auto_link` link; in [review, auto_link) ask an officer."""

    auto_link: float
    review: float


@dataclass
class RegistrySnapshot:
    #: Current versions of active records: contract columns + `unique_id` (record pk) +
    #: `source_kind` (health / education / social_care / other).
    records: pa.Table
    prior_cci: dict[int, str] = field(default_factory=dict)
    identifiers: dict[str, PriorIdentifier] = field(default_factory=dict)
    members_when_superseded: dict[str, tuple[str, frozenset[int]]] = field(default_factory=dict)
    must_link: list[tuple[int, int]] = field(default_factory=list)
    cannot_link: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class ReviewPair:
    record_l: int
    record_r: int
    match_weight: float
    match_probability: float
    reason: str  # "review_band" | "nhs_conflict"
    explanation: dict[str, Any]


@dataclass
class RunOutcome:
    clusters: list[set[int]]
    plan: AssignmentPlan
    nhs_anchored: list[bool]
    review: list[ReviewPair]
    stats: dict[str, Any]


def run_linkage(
    snapshot: RegistrySnapshot,
    model: dict[str, Any],
    thresholds: Thresholds,
    *,
    db_api: Any = None,
    stage: Stage | None = None,
) -> RunOutcome:
    """Score all blocked pairs, cluster them under the decisions, and plan CCI changes."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    def mark(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        seconds[name] = round(now - started, 3)
        started = now
        if stage is not None:
            stage(name)

    records = snapshot.records
    ids: list[int] = records["unique_id"].to_pylist()
    health_nhs = {
        uid: nhs
        for uid, nhs, kind in zip(
            ids,
            records["nhs_number_enc"].to_pylist(),
            records["source_kind"].to_pylist(),
            strict=True,
        )
        if nhs is not None and kind == "health"
    }
    scorable = records.drop_columns(["source_kind"])
    pairs = score_pairs(scorable, model, threshold_match_weight=thresholds.review, db_api=db_api)
    mark("score")

    weights = pairs["match_weight"].to_pylist()
    left = pairs["unique_id_l"].to_pylist()
    right = pairs["unique_id_r"].to_pylist()
    links = [
        (a, b, w) for a, b, w in zip(left, right, weights, strict=True) if w >= thresholds.auto_link
    ]
    clustering = cluster_records(
        ids,
        links,
        health_nhs=health_nhs,
        must_link=snapshot.must_link,
        cannot_link=snapshot.cannot_link,
        conflict_key=dict(zip(ids, records["dob_tok"].to_pylist(), strict=True)),
        conflicts=_TwinRule(records),
    )
    mark("cluster")

    plan = assign_identifiers(
        clustering.clusters,
        snapshot.prior_cci,
        snapshot.identifiers,
        members_when_superseded=snapshot.members_when_superseded,
    )
    anchored = [any(uid in health_nhs for uid in members) for members in clustering.clusters]
    mark("assign")

    cluster_of = {uid: i for i, members in enumerate(clustering.clusters) for uid in members}
    decided = {frozenset(p) for p in snapshot.must_link + snapshot.cannot_link}
    refused = {frozenset(p) for p in clustering.refused}
    review = []
    for index, (a, b, weight) in enumerate(zip(left, right, weights, strict=True)):
        if frozenset((a, b)) in decided:
            continue
        if weight < thresholds.auto_link and cluster_of[a] != cluster_of[b]:
            reason = "review_band"
        elif frozenset((a, b)) in refused:
            reason = "nhs_conflict"
        else:
            continue
        row = pairs.slice(index, 1).to_pylist()[0]
        review.append(
            ReviewPair(a, b, weight, row["match_probability"], reason, _explanation(row, model))
        )
    mark("review")

    stats = {
        "records": len(ids),
        "pairs_above_review_threshold": pairs.num_rows,
        "links": clustering.links_used,
        "refused_nhs_conflict": clustering.refused_nhs_conflict,
        "refused_cannot_link": clustering.refused_cannot_link,
        "refused_twin_rule": clustering.refused_conflict,
        "clusters": len(clustering.clusters),
        "new": len(plan.created),
        "kept": len(plan.kept),
        "merged": len(plan.superseded),
        "split": len(plan.split_from),
        "reinstated": len(plan.reinstated),
        "retired": len(plan.retired),
        "reassigned_records": len(plan.reassigned),
        "review_items": len(review),
        "nhs_anchored_clusters": sum(anchored),
        "seconds": seconds,
    }
    return RunOutcome(clustering.clusters, plan, anchored, review, stats)


class _TwinRule:
    """Twins look alike on everything but the given name: two records with the same date of
    birth (the clustering's bucket) and family name, whose given names disagree at every level
    and which share no identifier, are kept apart unless a decision joins them."""

    GIVEN = next(c for c in COMPARISONS if c.name == "given_name")
    IDENTIFIERS = ("nhs_number_enc", "upn_tok", "la_child_id_tok")
    COLUMNS = tuple(sorted({*GIVEN.columns, "family_name_tok", "family_name_dm", *IDENTIFIERS}))

    def __init__(self, records: pa.Table) -> None:
        self.position = {uid: i for i, uid in enumerate(records["unique_id"].to_pylist())}
        self.columns = {c: records[c].to_pylist() for c in self.COLUMNS}

    def _row(self, uid: int) -> dict[str, Any]:
        i = self.position[uid]
        row = {c: values[i] for c, values in self.columns.items()}
        canon = row["given_name_canon"]
        row["given_name_canon"] = (
            [int(t) for t in canon.split()] if isinstance(canon, str) else canon
        )
        return row

    def __call__(self, a: int, b: int) -> bool:
        left, right = self._row(a), self._row(b)
        same_family = left["family_name_tok"] == right["family_name_tok"] or (
            left["family_name_dm"] is not None and left["family_name_dm"] == right["family_name_dm"]
        )
        if not same_family:
            return False
        if any(left[c] is not None and left[c] == right[c] for c in self.IDENTIFIERS):
            return False
        return self.GIVEN.level_of(left, right) == 0


def _explanation(row: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    """The waterfall of one scored pair: prior, then each comparison's level and weight."""
    prior = model["probability_two_random_records_match"]
    parts = []
    for comparison in model["comparisons"]:
        name = comparison["output_column_name"]
        gamma = row.get(f"gamma_{name}")
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        label = "missing on either side"
        if gamma is not None and gamma >= 0:
            label = levels[len(levels) - 1 - gamma].get("label_for_charts", "")
        parts.append(
            {
                "comparison": name,
                "level": gamma,
                "label": label,
                "match_weight": row.get(f"mw_{name}"),
                "tf_adjustment": row.get(f"mw_tf_adj_{name}", 0.0),
            }
        )
    return {"prior_probability": prior, "match_weight": row["match_weight"], "parts": parts}
