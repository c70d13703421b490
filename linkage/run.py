"""One linkage run over a registry snapshot: score, cluster under constraints, assign CCIs.

Pure with respect to the store: the caller loads a `RegistrySnapshot` and writes the returned
`RunOutcome` in one transaction, so a run killed at any point changes nothing.

Incremental: given the pairs kept by earlier runs with the same model (`ScoredState`), a run
scores only pairs with a new or changed record and clusters again only the components they
touch (`linkage.affected`); it ends where a full run over the same registry would.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.affected import PRIOR_SCHEMA, affected_records
from linkage.identity.assignment import (
    IDENTIFIER_SCHEMA,
    AssignmentPlan,
    PriorIdentifier,
    assign_identifiers,
    prior_identifiers,
)
from linkage.identity.clustering import cluster_records
from linkage.model.backend import release
from linkage.model.incremental import VERSION_SCHEMA, ordered_pairs, score_changed_pairs
from linkage.model.realtime import TermFrequencies
from linkage.model.scoring import score_pairs
from linkage.twins import TwinRule
from linkage.waterfall import Explainer

Stage = Callable[[str], None]
#: Above this share of new or changed records, scoring everything afresh is as cheap.
INCREMENTAL_MAX_SHARE = 0.2


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a block that builds millions of long-lived
    containers and no cycles worth collecting: every full collection would rescan them all
    (measured on 180,000 records: clustering 7.7 s with it, 3.4 s without)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
    #: Each record's current version (VERSION_SCHEMA, by key): compared with the versions
    #: the kept pairs were scored at.
    versions: pa.Table = field(default_factory=VERSION_SCHEMA.empty_table)
    #: Each record's current CCI (PRIOR_SCHEMA), records no longer active included.
    prior: pa.Table = field(default_factory=PRIOR_SCHEMA.empty_table)
    #: The active CCIs (IDENTIFIER_SCHEMA).
    identifiers: pa.Table = field(default_factory=IDENTIFIER_SCHEMA.empty_table)
    members_when_superseded: dict[str, tuple[str, frozenset[int]]] = field(default_factory=dict)
    must_link: list[tuple[int, int]] = field(default_factory=list)
    cannot_link: list[tuple[int, int]] = field(default_factory=list)
    #: The newest event cursor when the snapshot was read: what changed after it (real-time
    #: submissions, withdrawals, decisions) is carried onto the run's result when it is written.
    event_mark: int = 0
    #: The newest decision the snapshot's constraints include: decisions taken after it are
    #: applied again on top of the run's result when it is written.
    decision_mark: int = 0
    #: Versions read from the registry's rows because its columnar copy lacked them (stored
    #: in real time, or before the copy existed): the run's write adds them to the copy.
    uncached_versions: pa.Table | None = None

    @cached_property
    def prior_cci(self) -> dict[int, str]:
        """`prior` as a dictionary: what a full run's assignment looks CCIs up in."""
        ids, ccis = self.prior["unique_id"].to_pylist(), self.prior["cci"].to_pylist()
        return dict(zip(ids, ccis, strict=True))


@dataclass
class ReviewPair:
    record_l: int
    record_r: int
    match_weight: float
    match_probability: float
    reason: str  # "review_band" | "nhs_conflict"


@dataclass
class ScoredState:
    """Pairs at or above `review_weight` kept from earlier runs with one model version, and
    the record versions they were scored at."""

    model_version: int
    review_weight: float
    pairs: pa.Table  # unique_id_l < unique_id_r, match_weight, match_probability
    versions: pa.Table  # VERSION_SCHEMA


@dataclass
class ScoredUpdate:
    """What is kept for the next run: every pair at or above the review weight (scored afresh
    when `full`, else the kept ones of unchanged records and those scored again) and the
    version each current record was scored at."""

    full: bool
    model_version: int
    pairs: pa.Table
    versions: pa.Table  # VERSION_SCHEMA


@dataclass
class RunOutcome:
    clusters: list[set[int]]
    plan: AssignmentPlan
    nhs_anchored: list[bool]
    review: list[ReviewPair]
    stats: dict[str, Any]
    scored: ScoredUpdate
    #: The waterfall of each given pair, for review items made by this run.
    explain: Callable[[Sequence[tuple[int, int]]], list[dict[str, Any]]]
    #: Kept CCIs whose cluster gained or lost a health-verified NHS number.
    anchoring_changed: list[str] = field(default_factory=list)
    #: Explanations worked out before the write, as stored (`store.registry.explain_ahead`).
    explained: dict[tuple[int, int], str] = field(default_factory=dict)


def run_linkage(
    snapshot: RegistrySnapshot,
    model: dict[str, Any],
    thresholds: Thresholds,
    *,
    model_version: int = 0,
    prior: ScoredState | None = None,
    term_frequencies: TermFrequencies | None = None,
    db_api: Any = None,
    stage: Stage | None = None,
) -> RunOutcome:
    """Score the blocked pairs, cluster them under the decisions, and plan CCI changes.

    With `prior` (pairs kept from earlier runs with this model version) only pairs involving
    new or changed records are scored; the rest are taken from `prior`. `term_frequencies` are
    the model version's frozen tables (without them Splink counts over these records): with
    them a pair scores the same in every run of the model, kept or scored again, and the same
    as in real-time matching. `db_api` is released once the pairs are scored (`release`): the
    caller must not use it again.
    """
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
    ids = records["unique_id"]
    scorable = records.drop_columns(["source_kind"])
    scored = _score(
        snapshot, scorable, model, model_version, thresholds, prior, term_frequencies, db_api
    )
    pairs = scored.update.pairs  # every pair at or above the review weight
    release(db_api)
    mark("score")

    with collector_paused():
        # Which current assignments are of current records (the rest: records withdrawn since).
        current = pc.is_in(snapshot.prior["unique_id"], value_set=ids)
        held = snapshot.prior.filter(current)
        auto_pairs = pairs.filter(pc.greater_equal(pairs["match_weight"], thresholds.auto_link))
        if not scored.update.full:
            affected = pa.array(
                sorted(_affected(snapshot, ids, current, auto_pairs, scored.touched)), pa.int64()
            )
            records = records.filter(pc.is_in(ids, value_set=affected))
            auto_pairs = auto_pairs.filter(pc.is_in(auto_pairs["unique_id_l"], value_set=affected))
        scope: list[int] = records["unique_id"].to_pylist()
        in_scope = set(scope)
        health_nhs = {
            uid: nhs
            for uid, nhs, kind in zip(
                scope,
                records["nhs_number_enc"].to_pylist(),
                records["source_kind"].to_pylist(),
                strict=True,
            )
            if nhs is not None and kind == "health"
        }
        links = [
            (a, b, w)
            for a, b, w in zip(
                auto_pairs["unique_id_l"].to_pylist(),
                auto_pairs["unique_id_r"].to_pylist(),
                auto_pairs["match_weight"].to_pylist(),
                strict=True,
            )
            if a in in_scope
        ]
        clustering = cluster_records(
            scope,
            links,
            health_nhs=health_nhs,
            must_link=[p for p in snapshot.must_link if p[0] in in_scope],
            cannot_link=[p for p in snapshot.cannot_link if p[0] in in_scope],
            conflict_key=dict(zip(scope, records["dob_tok"].to_pylist(), strict=True)),
            conflicts=TwinRule(records),
        )
        mark("cluster")

        # The CCIs of current records: those clustered again, and those left as they were.
        again = pc.is_in(held["unique_id"], value_set=records["unique_id"])
        # In Arrow: on an incremental run, most of the registry's CCIs.
        untouched = pc.unique(held["cci"].filter(pc.invert(again)))
        if scored.update.full:
            prior_cci = snapshot.prior_cci
            in_play = prior_identifiers(snapshot.identifiers)
        else:
            scoped = held.filter(again)
            prior_cci = dict(
                zip(scoped["unique_id"].to_pylist(), scoped["cci"].to_pylist(), strict=True)
            )
            in_play = _identifiers_in_play(snapshot, held, prior_cci)
        plan = assign_identifiers(
            clustering.clusters,
            prior_cci,
            in_play,
            members_when_superseded=snapshot.members_when_superseded,
        )
        health = set(health_nhs)  # a set: isdisjoint then walks the smaller side, in C
        anchored = [not members.isdisjoint(health) for members in clustering.clusters]
        anchoring_changed = [
            cci
            for cci, flag in zip(plan.cci_of_cluster, anchored, strict=True)
            if cci in in_play and in_play[cci].nhs_anchored != flag
        ]
        mark("assign")

        cci_now = {
            uid: plan.cci_of_cluster[i] for i, ms in enumerate(clustering.clusters) for uid in ms
        }
        # A link refused by a constraint leaves its records in different clusters, and a link
        # between different clusters was refused: so both kinds of item follow from the CCIs,
        # in re-clustered and untouched components alike.
        decided = {frozenset(p) for p in snapshot.must_link + snapshot.cannot_link}
        apart = _across_identifiers(pairs, cci_now, held)
        review = []
        for a, b, weight, chance in zip(
            apart["unique_id_l"].to_pylist(),
            apart["unique_id_r"].to_pylist(),
            apart["match_weight"].to_pylist(),
            apart["match_probability"].to_pylist(),
            strict=True,
        ):
            if decided and frozenset((a, b)) in decided:
                continue
            reason = "review_band" if weight < thresholds.auto_link else "nhs_conflict"
            review.append(ReviewPair(a, b, weight, chance, reason))
        mark("review")

    stats = {
        "records": len(ids),
        "scoring": "incremental" if not scored.update.full else "full",
        "records_scored": scored.records_scored,
        "records_reclustered": len(scope),
        "review_weight": thresholds.review,
        "pairs_scored": scored.pairs_scored,
        "pairs_above_review_threshold": pairs.num_rows,
        "links": clustering.links_used,
        "refused_nhs_conflict": clustering.refused_nhs_conflict,
        "refused_cannot_link": clustering.refused_cannot_link,
        "refused_twin_rule": clustering.refused_conflict,
        "clusters": len(clustering.clusters) + len(untouched),
        "new": len(plan.created),
        "kept": len(plan.kept) + len(untouched),
        "merged": len(plan.superseded),
        "split": len(plan.split_from),
        "reinstated": len(plan.reinstated),
        "retired": len(plan.retired),
        "reassigned_records": len(plan.reassigned),
        "review_items": len(review),
        "nhs_anchored_clusters": sum(anchored) + _anchored_among(snapshot, untouched),
        "seconds": seconds,
    }
    return RunOutcome(
        clustering.clusters,
        plan,
        anchored,
        review,
        stats,
        scored.update,
        Explainer(scorable, model, term_frequencies),
        anchoring_changed,
    )


def _affected(
    snapshot: RegistrySnapshot,
    present: pa.ChunkedArray,
    current: pa.ChunkedArray,
    auto_pairs: pa.Table,
    touched: list[int],
) -> set[int]:
    """The records an incremental run clusters again (`linkage.affected`): `touched` (new or
    changed, or paired with one or with a record gone), decided on, without a CCI, or sharing
    a CCI with a record no longer current; then all records linked to those or sharing their
    CCIs. `current` marks the snapshot's assignments of `present` records."""
    # Arrow filters over the million records, not Python loops: an incremental run pays for
    # these on every record however small its delivery.
    held = snapshot.prior.filter(current)
    orphaned = pc.unique(snapshot.prior["cci"].filter(pc.invert(current)))
    without = present.filter(pc.invert(pc.is_in(present, value_set=held["unique_id"])))
    starts = set(touched) | set(without.to_pylist())
    starts.update(uid for pair in snapshot.must_link + snapshot.cannot_link for uid in pair)
    if len(orphaned):
        sharing = pc.is_in(held["cci"], value_set=orphaned)
        starts.update(held["unique_id"].filter(sharing).to_pylist())
    must = pa.table(
        {
            "unique_id_l": pa.array([a for a, _ in snapshot.must_link], pa.int64()),
            "unique_id_r": pa.array([b for _, b in snapshot.must_link], pa.int64()),
        }
    )
    edges = pa.concat_tables([auto_pairs.select(["unique_id_l", "unique_id_r"]), must])
    return affected_records(present, held, edges, starts)


def _identifiers_in_play(
    snapshot: RegistrySnapshot, held: pa.Table, prior_cci: dict[int, str]
) -> dict[str, PriorIdentifier]:
    """The active CCIs an incremental run's assignment decides on: those held by the records
    clustered again (`prior_cci`), and those no current record holds (`held`: the current
    records' CCIs), to be retired."""
    ccis = snapshot.identifiers["cci"]
    unheld = ccis.filter(pc.invert(pc.is_in(ccis, value_set=pc.unique(held["cci"]))))
    wanted = set(prior_cci.values()) | set(unheld.to_pylist())
    return prior_identifiers(snapshot.identifiers, wanted)


def _anchored_among(snapshot: RegistrySnapshot, ccis: pa.Array) -> int:
    """How many of these active CCIs are NHS-anchored."""
    if not len(ccis):
        return 0
    identifiers = snapshot.identifiers
    among = pc.is_in(identifiers["cci"], value_set=ccis)
    return int(pc.sum(pc.and_(among, identifiers["nhs_anchored"])).as_py() or 0)


def _across_identifiers(pairs: pa.Table, cci_now: dict[int, str], held: pa.Table) -> pa.Table:
    """The pairs whose records hold different CCIs after the run: this run's CCI for records
    it clustered (`cci_now`), the one they held (`held`) for the rest."""
    now = pa.table(
        [pa.array(list(cci_now), pa.int64()), pa.array(list(cci_now.values()), pa.string())],
        schema=PRIOR_SCHEMA,
    )
    kept = held.filter(pc.invert(pc.is_in(held["unique_id"], value_set=now["unique_id"])))
    every = pa.concat_tables([now, kept.cast(PRIOR_SCHEMA)]).combine_chunks()
    uids, ccis = every["unique_id"].chunk(0), every["cci"].chunk(0)
    left = ccis.take(pc.index_in(pairs["unique_id_l"], value_set=uids))
    right = ccis.take(pc.index_in(pairs["unique_id_r"], value_set=uids))
    return pairs.filter(pc.fill_null(pc.not_equal(left, right), True))


@dataclass
class _Scored:
    update: ScoredUpdate
    records_scored: int
    #: New or changed records and the partners of their dropped pairs (incremental runs).
    touched: list[int] = field(default_factory=list)
    #: Pairs at or above the review weight that this run scored (not kept from earlier).
    pairs_scored: int = 0


def _score(
    snapshot: RegistrySnapshot,
    records: pa.Table,
    model: dict[str, Any],
    model_version: int,
    thresholds: Thresholds,
    prior: ScoredState | None,
    frequencies: TermFrequencies | None,
    db_api: Any,
) -> _Scored:
    """All pairs at or above the review weight: scored afresh, or kept from `prior` where
    neither record changed since, when `prior` holds this model's pairs at this threshold."""
    versions = snapshot.versions
    usable = (
        prior is not None
        and prior.model_version == model_version
        and prior.review_weight <= thresholds.review
    )
    if prior is not None and usable:
        changed, gone = _changed_since(prior.versions, versions)
        if len(changed) <= INCREMENTAL_MAX_SHARE * versions.num_rows:
            stale = changed + gone
            fresh = score_changed_pairs(
                records,
                changed,
                model,
                threshold_match_weight=thresholds.review,
                db_api=db_api,
                frequencies=frequencies,
            )
            kept = prior.pairs
            touched = list(changed)
            if stale:
                gone = pa.array(stale, pa.int64())
                dropped = pc.or_(
                    pc.is_in(kept["unique_id_l"], value_set=gone),
                    pc.is_in(kept["unique_id_r"], value_set=gone),
                )
                # Their old partners too: a withdrawn record may have been a cluster's bridge.
                lost = kept.filter(dropped)
                touched += lost["unique_id_l"].to_pylist() + lost["unique_id_r"].to_pylist()
                kept = kept.filter(pc.invert(dropped))
            kept = kept.filter(pc.greater_equal(kept["match_weight"], thresholds.review))
            every = pa.concat_tables([kept, fresh])
            update = ScoredUpdate(False, model_version, every, versions)
            return _Scored(update, len(changed), touched, fresh.num_rows)
    pairs = ordered_pairs(
        score_pairs(
            records,
            model,
            threshold_match_weight=thresholds.review,
            db_api=db_api,
            explain=False,
            frequencies=frequencies,
        )
    )
    update = ScoredUpdate(True, model_version, pairs, versions)
    return _Scored(update, versions.num_rows, pairs_scored=pairs.num_rows)


def _ascending(ids: np.ndarray) -> bool:
    return bool(len(ids) < 2 or (ids[1:] > ids[:-1]).all())


def _changed_since(before: pa.Table, now: pa.Table) -> tuple[list[int], list[int]]:
    """Records new or at another version in `now` than in `before`, and records of `before`
    that `now` lacks (both VERSION_SCHEMA). Array look-ups, not dictionaries: an incremental
    run pays for this on every record however small its delivery."""
    old_ids, new_ids = (np.asarray(t["unique_id"].combine_chunks()) for t in (before, now))
    if len(old_ids) and len(new_ids) and _ascending(old_ids) and _ascending(new_ids):
        # In key order, as snapshots are: binary searches, no hash table of 1M keys to build
        # (0.1 s against 0.3 s).
        old_versions = np.asarray(before["version"].combine_chunks())
        new_versions = np.asarray(now["version"].combine_chunks())
        at = np.minimum(np.searchsorted(old_ids, new_ids), len(old_ids) - 1)
        same = (old_ids[at] == new_ids) & (old_versions[at] == new_versions)
        back = np.minimum(np.searchsorted(new_ids, old_ids), len(new_ids) - 1)
        present = new_ids[back] == old_ids
        return new_ids[~same].tolist(), old_ids[~present].tolist()
    at = pc.index_in(now["unique_id"], value_set=before["unique_id"].combine_chunks())
    was = before["version"].combine_chunks().take(at)  # null where `before` lacks the record
    same = pc.fill_null(pc.equal(now["version"], was), False)
    changed = now["unique_id"].filter(pc.invert(same))
    present = pc.is_in(before["unique_id"], value_set=now["unique_id"].combine_chunks())
    gone = before["unique_id"].filter(pc.invert(present))
    return changed.to_pylist(), gone.to_pylist()
