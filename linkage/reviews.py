"""What data officers read: the review queue, one pair, a CCI's cluster and history, quality.

Never returns encodings: officers check the cleartext in their own agency system by record
id. A restricted record of another source system shows only its source kind (DESIGN.md,
Access): `own_sources` are the source-system ids the officer's key is bound to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select
from sqlalchemy.orm import aliased

from linkage.decisions import PairScorer, cluster_members, load_members
from linkage.store.models import (
    Assignment,
    Decision,
    Event,
    Identifier,
    Record,
    ReviewItem,
    SourceSystem,
)

#: Above this many records a cluster view lists its records without pairwise scores.
MAX_SCORED_MEMBERS = 60
#: Bands of match weight the quality page counts the workload in.
BAND_EDGES = (4.0, 6.0, 8.0, 10.0, 12.0)


@dataclass(frozen=True)
class RecordView:
    """One side of a pair or a cluster member, as an officer may see it."""

    pk: int
    source_kind: str
    #: None when the record is restricted and the officer is not of its source system.
    source_system: str | None
    record_id: str | None
    cci: str | None
    restricted: bool


@dataclass(frozen=True)
class QueueItem:
    id: int
    left: RecordView
    right: RecordView
    match_weight: float
    match_probability: float
    reason: str
    #: Deciding "same child" would merge two NHS-anchored CCIs.
    merges_anchored: bool
    created_at: datetime


@dataclass(frozen=True)
class QueuePage:
    items: list[QueueItem]
    total: int
    waiting_by_source: dict[str, int]


@dataclass(frozen=True)
class PairView:
    item: QueueItem
    status: str
    prior_probability: float | None
    parts: list[dict[str, Any]]
    decisions: list[dict[str, Any]]


def _views(
    connection: Connection, pks: Collection[int], own_sources: Collection[int]
) -> dict[int, RecordView]:
    rows = connection.execute(
        select(
            Record.id,
            Record.source_system_id,
            SourceSystem.code,
            SourceSystem.kind,
            Record.record_id,
            Record.restricted,
            Assignment.cci,
        )
        .join(SourceSystem, SourceSystem.id == Record.source_system_id)
        .outerjoin(
            Assignment, and_(Assignment.record_pk == Record.id, Assignment.ended_at.is_(None))
        )
        .where(Record.id.in_(list(pks)))
    )
    views = {}
    for pk, source_id, code, kind, record_id, restricted, cci in rows:
        hidden = bool(restricted) and source_id not in own_sources
        views[pk] = RecordView(
            pk,
            kind,
            None if hidden else code,
            None if hidden else record_id,
            None if hidden else cci,
            bool(restricted),
        )
    return views


def review_queue(
    connection: Connection,
    *,
    own_sources: Collection[int],
    source_system: str | None = None,
    reason: str | None = None,
    min_weight: float | None = None,
    max_weight: float | None = None,
    offset: int = 0,
    limit: int = 50,
) -> QueuePage:
    """Open items, most consequential first: those that would merge two NHS-anchored CCIs,
    then the closest to a coin toss (probability nearest 0.5), then the oldest."""
    left_a, right_a = aliased(Assignment), aliased(Assignment)
    left_i, right_i = aliased(Identifier), aliased(Identifier)
    left_r, right_r = aliased(Record), aliased(Record)
    left_s, right_s = aliased(SourceSystem), aliased(SourceSystem)
    merges_anchored = and_(
        left_i.nhs_anchored.is_(True),
        right_i.nhs_anchored.is_(True),
        left_a.cci != right_a.cci,
    )
    base = (
        select(ReviewItem.id)
        .join(left_r, left_r.id == ReviewItem.record_pk_l)
        .join(right_r, right_r.id == ReviewItem.record_pk_r)
        .join(left_s, left_s.id == left_r.source_system_id)
        .join(right_s, right_s.id == right_r.source_system_id)
        .outerjoin(left_a, and_(left_a.record_pk == left_r.id, left_a.ended_at.is_(None)))
        .outerjoin(right_a, and_(right_a.record_pk == right_r.id, right_a.ended_at.is_(None)))
        .outerjoin(left_i, left_i.cci == left_a.cci)
        .outerjoin(right_i, right_i.cci == right_a.cci)
        .where(ReviewItem.status == "open")
    )
    if source_system:
        base = base.where(or_(left_s.code == source_system, right_s.code == source_system))
    if reason:
        base = base.where(ReviewItem.reason == reason)
    if min_weight is not None:
        base = base.where(ReviewItem.match_weight >= min_weight)
    if max_weight is not None:
        base = base.where(ReviewItem.match_weight < max_weight)
    total = connection.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = connection.execute(
        base.add_columns(
            ReviewItem.record_pk_l,
            ReviewItem.record_pk_r,
            ReviewItem.match_weight,
            ReviewItem.match_probability,
            ReviewItem.reason,
            ReviewItem.created_at,
            case((merges_anchored, True), else_=False).label("merges_anchored"),
        )
        .order_by(
            case((merges_anchored, 0), else_=1),
            func.abs(ReviewItem.match_probability - 0.5),
            ReviewItem.id,
        )
        .offset(offset)
        .limit(limit)
    ).all()
    views = _views(
        connection, {r.record_pk_l for r in rows} | {r.record_pk_r for r in rows}, own_sources
    )
    items = [
        QueueItem(
            r.id,
            views[r.record_pk_l],
            views[r.record_pk_r],
            r.match_weight,
            r.match_probability,
            r.reason,
            bool(r.merges_anchored),
            r.created_at,
        )
        for r in rows
    ]
    return QueuePage(items, int(total), waiting_by_source(connection))


def waiting_by_source(connection: Connection) -> dict[str, int]:
    """Open items per source system (an item counts once for each system it involves)."""
    counts: Counter[str] = Counter()
    rows = connection.execute(
        select(ReviewItem.id, SourceSystem.code)
        .join(
            Record,
            or_(Record.id == ReviewItem.record_pk_l, Record.id == ReviewItem.record_pk_r),
        )
        .join(SourceSystem, SourceSystem.id == Record.source_system_id)
        .where(ReviewItem.status == "open")
        .distinct()
    )
    for _item, code in rows:
        counts[code] += 1
    return dict(sorted(counts.items()))


def review_pair(
    connection: Connection, item_id: int, *, own_sources: Collection[int]
) -> PairView | None:
    """One review item with the waterfall stored when it was scored, and its decisions."""
    row = connection.execute(select(ReviewItem).where(ReviewItem.id == item_id)).first()
    if row is None:
        return None
    views = _views(connection, (row.record_pk_l, row.record_pk_r), own_sources)
    left, right = views[row.record_pk_l], views[row.record_pk_r]
    current = {
        pk: (cci, bool(anchored))
        for pk, cci, anchored in connection.execute(
            select(Assignment.record_pk, Identifier.cci, Identifier.nhs_anchored)
            .join(Identifier, Identifier.cci == Assignment.cci)
            .where(
                Assignment.record_pk.in_((row.record_pk_l, row.record_pk_r)),
                Assignment.ended_at.is_(None),
            )
        )
    }
    cci_l, anchored_l = current.get(row.record_pk_l, (None, False))
    cci_r, anchored_r = current.get(row.record_pk_r, (None, False))
    item = QueueItem(
        row.id,
        left,
        right,
        row.match_weight,
        row.match_probability,
        row.reason,
        cci_l != cci_r and anchored_l and anchored_r,
        row.created_at,
    )
    explanation = row.explanation or {}
    parts = [
        {
            "comparison": p["comparison"],
            "level": p.get("level"),
            "label": p.get("label", ""),
            "match_weight": float(p.get("match_weight") or 0.0),
            "tf_adjustment": float(p.get("tf_adjustment") or 0.0),
        }
        for p in explanation.get("parts", [])
    ]
    decisions = [
        {"verdict": d.verdict, "reason": d.reason, "decided_by": d.decided_by, "at": d.created_at}
        for d in connection.execute(
            select(Decision)
            .where(Decision.record_pk_l == row.record_pk_l, Decision.record_pk_r == row.record_pk_r)
            .order_by(Decision.id)
        )
    ]
    return PairView(item, row.status, explanation.get("prior_probability"), parts, decisions)


@dataclass(frozen=True)
class ClusterLink:
    left: int
    right: int
    match_weight: float
    match_probability: float


@dataclass(frozen=True)
class ClusterView:
    cci: str
    status: str
    nhs_anchored: bool
    records: list[RecordView]
    #: Every pair inside, weakest first; empty above MAX_SCORED_MEMBERS records.
    links: list[ClusterLink]


def cluster_view(
    connection: Connection, cci: str, *, scorer: PairScorer, own_sources: Collection[int]
) -> ClusterView | None:
    row = connection.execute(
        select(Identifier.status, Identifier.nhs_anchored).where(Identifier.cci == cci)
    ).first()
    if row is None:
        return None
    pks = cluster_members(connection, [cci])
    views = _views(connection, pks, own_sources)
    links: list[ClusterLink] = []
    if len(pks) <= MAX_SCORED_MEMBERS:
        members = load_members(connection, pks)
        for a, b in combinations(sorted(members), 2):
            score = scorer.score(members[a].row, members[b].row)
            links.append(ClusterLink(a, b, score.match_weight, score.match_probability))
        links.sort(key=lambda link: (link.match_weight, link.left, link.right))
    return ClusterView(
        cci,
        row.status,
        bool(row.nhs_anchored),
        [views[pk] for pk in sorted(views)],
        links,
    )


@dataclass(frozen=True)
class HistoryEvent:
    cursor: int
    type: str
    cci: str
    related_cci: str | None
    record: RecordView | None
    at: datetime


def identifier_history(
    connection: Connection, cci: str, *, own_sources: Collection[int], limit: int = 500
) -> list[HistoryEvent]:
    """Events naming the CCI (as itself or as the related CCI), oldest first."""
    rows = connection.execute(
        select(Event)
        .where(or_(Event.cci == cci, Event.related_cci == cci))
        .order_by(Event.cursor)
        .limit(limit)
    ).all()
    views = _views(connection, {r.record_pk for r in rows if r.record_pk is not None}, own_sources)
    return [
        HistoryEvent(
            r.cursor,
            r.type,
            r.cci,
            r.related_cci,
            views.get(r.record_pk) if r.record_pk is not None else None,
            r.created_at,
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Quality:
    """Decisions as a labelled sample, the workload per band and the weight distribution."""

    auto_link_weight: float
    labelled_pairs: int
    #: Share of "same child" among decided pairs at or above the auto-link weight (None: none).
    precision_at_auto_link: float | None
    labelled_at_auto_link: int
    #: (band label, open items, decided same, decided different)
    bands: list[tuple[str, int, int, int]]
    #: (lower edge of a 1-weight bin, review items in it)
    histogram: list[tuple[int, int]]


def _band(weight: float) -> str:
    lower = None
    for edge in BAND_EDGES:
        if weight >= edge:
            lower = edge
    if lower is None:
        return f"below {BAND_EDGES[0]:g}"
    upper = next((e for e in BAND_EDGES if e > lower), None)
    return f"{lower:g} and above" if upper is None else f"{lower:g} to {upper:g}"


def quality(connection: Connection, *, scorer: PairScorer) -> Quality:
    """Each decided pair (latest same/different verdict) is scored with the active model, so
    the sample covers merges and splits as well as review items."""
    latest: dict[tuple[int, int], str] = {}
    for left, right, verdict in connection.execute(
        select(Decision.record_pk_l, Decision.record_pk_r, Decision.verdict)
        .where(Decision.verdict != "unsure")
        .order_by(Decision.id)
    ):
        latest[(left, right)] = verdict
    members = load_members(connection, {pk for pair in latest for pk in pair})
    labelled = [
        (scorer.score(members[a].row, members[b].row).match_weight, verdict)
        for (a, b), verdict in latest.items()
        if a in members and b in members
    ]
    auto = scorer.thresholds.auto_link
    above = [verdict for weight, verdict in labelled if weight >= auto]
    precision = above.count("same") / len(above) if above else None
    labels = [f"below {BAND_EDGES[0]:g}"] + [_band(edge) for edge in BAND_EDGES]
    bands = {label: [0, 0, 0] for label in labels}
    weights = list(connection.execute(select(ReviewItem.match_weight, ReviewItem.status)).tuples())
    for weight, status in weights:
        if status == "open":
            bands[_band(weight)][0] += 1
    for weight, verdict in labelled:
        bands[_band(weight)][1 if verdict == "same" else 2] += 1
    histogram = Counter(int(weight // 1) for weight, _ in weights)
    return Quality(
        auto,
        len(labelled),
        precision,
        len(above),
        [(label, *counts) for label, counts in bands.items()],  # type: ignore[misc]
        sorted(histogram.items()),
    )
