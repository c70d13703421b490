"""Data officers' decisions: record one, then re-cluster the children it touches at once.

A decision on a pair (same child / different children / unsure) is a constraint for every
later run (DESIGN.md, Words). Waiting for the next batch run would leave the officer looking at
a stale cluster, so the clusters of the two records are rebuilt here, in the caller's
transaction: their current members are scored natively with the active model and its frozen
term frequencies, clustered under every decision among them and the NHS-number rule, and the
CCI changes are planned by the same stable-identifier rules a batch run uses and written as
events. Splitting a record off a CCI and merging two CCIs are decisions too, so every later run
keeps them.

Where one pair has several decisions, the latest verdict stands (an officer may undo a merge).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, or_, select, text, update

from linkage.contract import ENCODING_COLUMNS
from linkage.errors import CCIError
from linkage.identity.assignment import AssignmentPlan, PriorIdentifier, assign_identifiers
from linkage.identity.clustering import cluster_records
from linkage.match import Matcher, as_scorable
from linkage.model.realtime import CompiledModel, PairScore, TermFrequencies
from linkage.run import Thresholds
from linkage.store.audit import audit
from linkage.store.database import hold_event_order
from linkage.store.models import (
    Assignment,
    Decision,
    Event,
    Identifier,
    Record,
    ReviewItem,
    SourceSystem,
    as_utc,
    record_versions,
    utcnow,
)
from linkage.twins import TwinRule

VERDICTS = ("same", "different", "unsure")
#: Key of the PostgreSQL advisory lock that serialises decisions (any constant unique to it).
DECISION_LOCK = 0x43434904
_ENCODINGS = tuple(c.name for c in ENCODING_COLUMNS)


class DecisionError(CCIError):
    """A decision cannot be taken as asked (unknown or withdrawn record, inactive CCI)."""


@dataclass(frozen=True)
class PairScorer:
    """The active model compiled, with its frozen term frequencies and the thresholds."""

    compiled: CompiledModel
    frequencies: TermFrequencies
    thresholds: Thresholds
    model_version: int

    @classmethod
    def active(cls, matcher: Matcher, connection: Connection) -> PairScorer:
        """The scorer the real-time matcher uses now (same model, same frequencies)."""
        model = matcher.model(connection)
        return cls(model.compiled, model.frequencies, matcher.thresholds, model.version)

    def score(self, left: Mapping[str, Any], right: Mapping[str, Any]) -> PairScore:
        return self.compiled.score(left, right, self.frequencies)


@dataclass(frozen=True)
class MemberRecord:
    """A record as re-clustering reads it: who holds it and its current encodings."""

    pk: int
    source_system: str
    source_kind: str
    record_id: str
    restricted: bool
    cci: str | None
    row: dict[str, Any]


@dataclass(frozen=True)
class ChangeEvent:
    type: str
    cci: str
    related_cci: str | None
    record_pk: int | None


@dataclass
class DecisionOutcome:
    """What a decision changed: the CCIs before and after, and the events written."""

    decision_ids: list[int]
    verdict: str
    ccis_before: list[str]
    clusters: dict[str, list[int]] = field(default_factory=dict)  # cci -> record pks
    events: list[ChangeEvent] = field(default_factory=list)


def load_members(connection: Connection, pks: Iterable[int]) -> dict[int, MemberRecord]:
    """Current versions of the active records `pks`, with their current CCI."""
    v = record_versions.c
    query = (
        select(
            Record.id,
            SourceSystem.code,
            SourceSystem.kind,
            Record.record_id,
            Record.restricted,
            Assignment.cci,
            v.sex,
            *(v[name] for name in _ENCODINGS),
        )
        .join(SourceSystem, SourceSystem.id == Record.source_system_id)
        .join(record_versions, and_(v.record_pk == Record.id, v.version == Record.current_version))
        .outerjoin(
            Assignment, and_(Assignment.record_pk == Record.id, Assignment.ended_at.is_(None))
        )
        .where(Record.id.in_(list(pks)), Record.status == "active")
    )
    found: dict[int, MemberRecord] = {}
    for row in connection.execute(query).mappings():
        encodings = {"sex": row["sex"], **{name: row[name] for name in _ENCODINGS}}
        found[row["id"]] = MemberRecord(
            row["id"],
            row["code"],
            row["kind"],
            row["record_id"],
            bool(row["restricted"]),
            row["cci"],
            as_scorable(encodings),
        )
    return found


def cluster_members(connection: Connection, ccis: Iterable[str]) -> set[int]:
    """Active records currently carrying any of `ccis`."""
    query = (
        select(Assignment.record_pk)
        .join(Record, Record.id == Assignment.record_pk)
        .where(
            Assignment.cci.in_(list(ccis)),
            Assignment.ended_at.is_(None),
            Record.status == "active",
        )
    )
    return set(connection.scalars(query))


def standing_constraints(
    connection: Connection, pks: set[int]
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(must-link, cannot-link) among `pks`: the latest same/different verdict per pair."""
    query = (
        select(Decision.record_pk_l, Decision.record_pk_r, Decision.verdict)
        .where(
            Decision.record_pk_l.in_(list(pks)),
            Decision.record_pk_r.in_(list(pks)),
            Decision.verdict != "unsure",
        )
        .order_by(Decision.id)
    )
    latest: dict[tuple[int, int], str] = {}
    for left, right, verdict in connection.execute(query):
        latest[(min(left, right), max(left, right))] = verdict
    must = [pair for pair, verdict in latest.items() if verdict == "same"]
    cannot = [pair for pair, verdict in latest.items() if verdict == "different"]
    return must, cannot


def decide_pair(
    connection: Connection,
    *,
    record_l: int,
    record_r: int,
    verdict: str,
    reason: str | None,
    actor: str,
    scorer: PairScorer,
    review_item: int | None = None,
) -> DecisionOutcome:
    """Record a verdict on two records and re-cluster their CCIs (an unsure verdict is kept
    for the record but constrains nothing, and leaves the review item open)."""
    if verdict not in VERDICTS:
        raise DecisionError(f"verdict must be one of {', '.join(VERDICTS)}")
    if record_l == record_r:
        raise DecisionError("a decision needs two different records")
    left, right = sorted((record_l, record_r))
    _serialise(connection)
    members = load_members(connection, (left, right))
    if len(members) < 2:
        raise DecisionError("both records must be active in the registry")
    decision_id = _insert_decision(connection, left, right, verdict, reason, actor)
    if verdict != "unsure":
        _close_review_items(connection, [(left, right)], review_item)
    audit(
        connection,
        actor,
        "decide_pair",
        f"{members[left].cci}/{members[right].cci}",
        {
            "decision": decision_id,
            "verdict": verdict,
            "records": [left, right],
            "review_item": review_item,
        },
    )
    ccis = {m.cci for m in members.values() if m.cci is not None}
    return _recluster(connection, ccis, {left, right}, scorer, [decision_id], verdict)


def split_record(
    connection: Connection,
    *,
    cci: str,
    record_pk: int,
    reason: str | None,
    actor: str,
    scorer: PairScorer,
) -> DecisionOutcome:
    """Split one record off a CCI: "different children" between it and every other member."""
    _serialise(connection)
    _require_active(connection, [cci])
    others = cluster_members(connection, [cci])
    if record_pk not in others:
        raise DecisionError(f"the record does not carry {cci}")
    others.discard(record_pk)
    if not others:
        raise DecisionError(f"{cci} holds only this record: there is nothing to split it from")
    ids = [
        _insert_decision(
            connection, min(record_pk, other), max(record_pk, other), "different", reason, actor
        )
        for other in sorted(others)
    ]
    _close_review_items(connection, [(record_pk, other) for other in others], None)
    audit(connection, actor, "split_record", cci, {"record": record_pk, "decisions": ids})
    return _recluster(connection, {cci}, {record_pk}, scorer, ids, "different")


def merge_identifiers(
    connection: Connection,
    *,
    cci: str,
    other_cci: str,
    reason: str | None,
    actor: str,
    scorer: PairScorer,
) -> DecisionOutcome:
    """Merge two CCIs (one child): "same child" between their best-scoring pair of records,
    which joins the two clusters in every later run, whatever the NHS-number rule says."""
    if cci == other_cci:
        raise DecisionError("a CCI cannot be merged with itself")
    _serialise(connection)
    _require_active(connection, [cci, other_cci])
    ours, theirs = cluster_members(connection, [cci]), cluster_members(connection, [other_cci])
    if not ours or not theirs:
        raise DecisionError("both CCIs must hold active records")
    members = load_members(connection, ours | theirs)
    best = max(
        ((a, b) for a in sorted(ours) for b in sorted(theirs)),
        key=lambda pair: scorer.score(members[pair[0]].row, members[pair[1]].row).match_weight,
    )
    left, right = sorted(best)
    decision_id = _insert_decision(connection, left, right, "same", reason, actor)
    _close_review_items(connection, [(a, b) for a in ours for b in theirs], None)
    audit(
        connection,
        actor,
        "merge_identifiers",
        cci,
        {"with": other_cci, "decision": decision_id, "records": [left, right]},
    )
    return _recluster(connection, {cci, other_cci}, {left, right}, scorer, [decision_id], "same")


def reapply_decisions(connection: Connection, *, after: int, matcher: Matcher) -> int:
    """Apply again the decisions taken after a batch run's snapshot (`after`: the newest
    decision id it read), on top of the run's result, in its write transaction; returns how
    many constrain anything.

    The run planned its clusters without them, so its write could undo one (merge two records
    an officer had just said are different children) until the next run. Their records'
    clusters are rebuilt as `decide_pair` rebuilt them, and review items the run opened on the
    decided pairs are closed again. The run holds the event-order lock: no decision or
    real-time write can come in between."""
    rows = connection.execute(
        select(Decision.id, Decision.record_pk_l, Decision.record_pk_r)
        .where(Decision.id > after, Decision.verdict != "unsure")
        .order_by(Decision.id)
    ).all()
    if not rows:
        return 0
    pairs = [(left, right) for _, left, right in rows]
    _close_review_items(connection, pairs, None)
    records = {pk for pair in pairs for pk in pair}
    ccis = set(
        connection.scalars(
            select(Assignment.cci).where(
                Assignment.record_pk.in_(sorted(records)), Assignment.ended_at.is_(None)
            )
        )
    )
    scorer = PairScorer.active(matcher, connection)
    ids = [decision_id for decision_id, _, _ in rows]
    _recluster(connection, ccis, records, scorer, ids, "reapplied")
    return len(rows)


def _serialise(connection: Connection) -> None:
    """One decision at a time on PostgreSQL (SQLite's write transaction already is), and no
    run or real-time write between reading the clusters and writing the new ones."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": DECISION_LOCK})
        hold_event_order(connection)


def _require_active(connection: Connection, ccis: list[str]) -> None:
    found = dict(
        connection.execute(
            select(Identifier.cci, Identifier.status).where(Identifier.cci.in_(ccis))
        ).all()
    )
    for cci in ccis:
        if found.get(cci) != "active":
            raise DecisionError(f"{cci} is not an active CCI")


def _insert_decision(
    connection: Connection, left: int, right: int, verdict: str, reason: str | None, actor: str
) -> int:
    decision_id = connection.execute(
        insert(Decision)
        .values(
            record_pk_l=left,
            record_pk_r=right,
            verdict=verdict,
            reason=reason,
            decided_by=actor,
            created_at=utcnow(),
        )
        .returning(Decision.id)
    ).scalar_one()
    return int(decision_id)


def _close_review_items(
    connection: Connection, pairs: list[tuple[int, int]], item: int | None
) -> None:
    """Open items on the decided pairs (and the item decided on) are done."""
    conditions = [
        and_(ReviewItem.record_pk_l == min(a, b), ReviewItem.record_pk_r == max(a, b))
        for a, b in pairs
    ]
    if item is not None:
        conditions.append(ReviewItem.id == item)
    connection.execute(
        update(ReviewItem)
        .where(ReviewItem.status == "open", or_(*conditions))
        .values(status="decided", decided_at=utcnow())
    )


def _recluster(
    connection: Connection,
    ccis: set[str],
    extra: set[int],
    scorer: PairScorer,
    decision_ids: list[int],
    verdict: str,
) -> DecisionOutcome:
    """Rebuild the clusters of `ccis` (and the `extra` records) and write the CCI changes.

    The caller holds the event-order lock (`_serialise`, or a run's write), which a real-time
    write takes before it reads the CCIs it joins: so no record joins these clusters while
    they are rebuilt. Taking the members' blocking-key locks as well would invert the
    real-time path's order (keys, then event order) and deadlock with it."""
    before = sorted(ccis)
    members = load_members(connection, cluster_members(connection, ccis) | extra)
    outcome = DecisionOutcome(decision_ids, verdict, before)
    must, cannot = standing_constraints(connection, set(members))
    links = []
    for a, b in combinations(sorted(members), 2):
        weight = scorer.score(members[a].row, members[b].row).match_weight
        if weight >= scorer.thresholds.auto_link:
            links.append((a, b, weight))
    health_nhs = {
        pk: m.row["nhs_number_enc"]
        for pk, m in members.items()
        if m.source_kind == "health" and m.row.get("nhs_number_enc") is not None
    }
    clusters = cluster_records(
        sorted(members),
        links,
        health_nhs=health_nhs,
        must_link=must,
        cannot_link=cannot,
        conflict_key={pk: m.row.get("dob_tok") for pk, m in members.items()},
        conflicts=TwinRule.of_rows({pk: m.row for pk, m in members.items()}),
    ).clusters
    # Where a CCI's records end up split evenly, it stays with the records that carried it
    # longest (the stable-identifier rules break such ties by cluster order), so undoing a
    # merge gives the merged-in records their old CCI back rather than the survivor.
    since = dict(
        connection.execute(
            select(Assignment.record_pk, Assignment.assigned_at).where(
                Assignment.record_pk.in_(list(members)), Assignment.ended_at.is_(None)
            )
        ).all()
    )
    latest = datetime.max.replace(tzinfo=UTC)
    clusters.sort(
        key=lambda c: (min(as_utc(since[pk]) if pk in since else latest for pk in c), min(c))
    )
    identifiers = {
        cci: PriorIdentifier(cci, as_utc(created), bool(anchored))
        for cci, created, anchored in connection.execute(
            select(Identifier.cci, Identifier.created_at, Identifier.nhs_anchored).where(
                Identifier.cci.in_({m.cci for m in members.values() if m.cci}),
                Identifier.status == "active",
            )
        )
    }
    prior_cci = {pk: m.cci for pk, m in members.items() if m.cci in identifiers}
    plan = assign_identifiers(
        clusters,
        prior_cci,
        identifiers,
        members_when_superseded=_superseded_into(connection, set(identifiers)),
    )
    anchored = {
        cci: any(pk in health_nhs for pk in cluster)
        for cci, cluster in zip(plan.cci_of_cluster, clusters, strict=True)
    }
    _write_plan(connection, plan, anchored, decision_ids)
    outcome.clusters = {
        cci: sorted(cluster) for cci, cluster in zip(plan.cci_of_cluster, clusters, strict=True)
    }
    outcome.events = [ChangeEvent(e.type, e.cci, e.related_cci, e.record) for e in plan.events]
    return outcome


def _superseded_into(
    connection: Connection, ccis: set[str]
) -> dict[str, tuple[str, frozenset[int]]]:
    """Superseded CCIs that resolve to one of `ccis` -> (that CCI, the records they held), so
    a split that undoes a merge reinstates the old CCI. Walks the successor chains backwards."""
    resolved: dict[str, str] = {}
    frontier = {cci: cci for cci in ccis}
    while frontier:
        rows = connection.execute(
            select(Identifier.cci, Identifier.successor_cci).where(
                Identifier.status == "superseded", Identifier.successor_cci.in_(list(frontier))
            )
        ).all()
        frontier = {
            cci: frontier[after] for cci, after in rows if after is not None and cci not in resolved
        }
        resolved.update(frontier)
    if not resolved:
        return {}
    held: dict[str, set[int]] = {}
    for pk, cci in connection.execute(
        select(Assignment.record_pk, Assignment.cci).where(Assignment.cci.in_(list(resolved)))
    ):
        held.setdefault(cci, set()).add(pk)
    return {cci: (root, frozenset(held.get(cci, ()))) for cci, root in resolved.items()}


def _write_plan(
    connection: Connection,
    plan: AssignmentPlan,
    anchored: Mapping[str, bool],
    decision_ids: list[int],
) -> None:
    """Identifiers, assignments and events, as a batch run writes them (method `manual`)."""
    now = utcnow()
    if plan.created:
        connection.execute(
            insert(Identifier),
            [
                {
                    "cci": c,
                    "status": "active",
                    "nhs_anchored": anchored[c],
                    "created_at": now,
                    "changed_at": now,
                }
                for c in plan.created
            ],
        )
    live = plan.kept + plan.reinstated
    if live:
        connection.execute(
            update(Identifier)
            .where(Identifier.cci == bindparam("key"))
            .values(
                status="active",
                successor_cci=None,
                nhs_anchored=bindparam("anchored"),
                changed_at=now,
            ),
            [{"key": c, "anchored": anchored[c]} for c in live],
        )
    if plan.superseded:
        connection.execute(
            update(Identifier)
            .where(Identifier.cci == bindparam("key"))
            .values(status="superseded", successor_cci=bindparam("successor"), changed_at=now),
            [{"key": old, "successor": new} for old, new in plan.superseded.items()],
        )
    if plan.retired:
        connection.execute(
            update(Identifier)
            .where(Identifier.cci == bindparam("key"))
            .values(status="retired", changed_at=now),
            [{"key": c} for c in plan.retired],
        )
    if plan.reassigned:
        ended = [{"key": r} for r, (old, _) in plan.reassigned.items() if old is not None]
        if ended:
            connection.execute(
                update(Assignment)
                .where(Assignment.record_pk == bindparam("key"), Assignment.ended_at.is_(None))
                .values(ended_at=now),
                ended,
            )
        connection.execute(
            insert(Assignment),
            [
                {"record_pk": r, "cci": new, "method": "manual", "assigned_at": now}
                for r, (_, new) in plan.reassigned.items()
            ],
        )
    events = plan.events
    if events:
        hold_event_order(connection)
        connection.execute(
            insert(Event),
            [
                {
                    "type": e.type,
                    "cci": e.cci,
                    "related_cci": e.related_cci,
                    "record_pk": e.record,
                    "detail": {"decisions": decision_ids},
                    "created_at": now,
                }
                for e in events
            ],
        )
