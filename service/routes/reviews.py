"""Data officers (review scope): the review queue, decisions, a CCI's cluster and history.

Every decision re-clusters the records it touches at once (linkage.decisions); every decision
and every read of a CCI's cluster or history is audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import Connection, Engine, select

from linkage.decisions import DecisionOutcome, PairScorer, decide_pair, merge_identifiers
from linkage.decisions import split_record as split_off
from linkage.identity.cci import normalise_cci
from linkage.reviews import (
    ClusterView,
    QueueItem,
    RecordView,
    cluster_view,
    identifier_history,
    review_pair,
    review_queue,
)
from linkage.store.audit import audit
from linkage.store.clients import Client
from linkage.store.database import write_transaction
from linkage.store.models import Record, ReviewItem, SourceSystem
from service.auth import require
from service.problems import PROBLEM_RESPONSES, Problem, responses
from service.schemas import (
    ChangeEventRead,
    ClusterChange,
    ClusterLinkRead,
    ClusterRead,
    ClusterRecord,
    ComparisonPart,
    DecisionCreate,
    DecisionRead,
    DecisionResult,
    HistoryEventRead,
    IdentifierHistory,
    MergeCreate,
    ReviewItemRead,
    ReviewPairRead,
    ReviewQueue,
    ReviewRecord,
    SplitCreate,
)

router = APIRouter(prefix="/v1", tags=["reviews"], responses=PROBLEM_RESPONSES)
Reviewer = require("review")
CciPath = Annotated[str, Path(max_length=32, description="a CCI (any case, spaces ignored)")]


def record_read(view: RecordView) -> ReviewRecord:
    return ReviewRecord(
        source_kind=view.source_kind,  # type: ignore[arg-type]
        source_system=view.source_system,
        record_id=view.record_id,
        cci=view.cci,
        restricted=view.restricted,
    )


def item_read(item: QueueItem) -> ReviewItemRead:
    return ReviewItemRead(
        id=item.id,
        left=record_read(item.left),
        right=record_read(item.right),
        match_weight=item.match_weight,
        match_probability=item.match_probability,
        reason=item.reason,  # type: ignore[arg-type]
        merges_nhs_anchored=item.merges_anchored,
        created_at=item.created_at,
    )


def outcome_read(outcome: DecisionOutcome) -> DecisionResult:
    return DecisionResult(
        verdict=outcome.verdict,  # type: ignore[arg-type]
        decisions=len(outcome.decision_ids),
        ccis_before=outcome.ccis_before,
        clusters=[ClusterChange(cci=c, records=len(r)) for c, r in outcome.clusters.items()],
        events=[
            ChangeEventRead(type=e.type, cci=e.cci, related_cci=e.related_cci)
            for e in outcome.events
        ],
    )


def cluster_read(view: ClusterView) -> ClusterRead:
    ref = {record.pk: index for index, record in enumerate(view.records)}
    return ClusterRead(
        cci=view.cci,
        status=view.status,  # type: ignore[arg-type]
        nhs_anchored=view.nhs_anchored,
        records=[ClusterRecord(ref=ref[r.pk], **record_read(r).model_dump()) for r in view.records],
        links=[
            ClusterLinkRead(
                left=ref[link.left],
                right=ref[link.right],
                match_weight=link.match_weight,
                match_probability=link.match_probability,
            )
            for link in view.links
        ],
    )


def scorer_for(request: Request) -> PairScorer:
    """The active model, loaded outside any write transaction (loading may freeze the term
    frequencies in a transaction of its own)."""
    engine: Engine = request.app.state.engine
    with engine.connect() as connection:
        return PairScorer.active(request.app.state.matcher, connection)


def known_cci(cci: str) -> str:
    wanted = normalise_cci(cci)
    if wanted is None:
        raise Problem(404, "not a valid CCI (check character)", kind="not-found")
    return wanted


def load_queue(
    connection: Connection,
    client: Client,
    *,
    source_system: str | None,
    reason: str | None,
    min_weight: float | None,
    max_weight: float | None,
    offset: int,
    limit: int,
) -> ReviewQueue:
    page = review_queue(
        connection,
        own_sources=client.sources.values(),
        source_system=source_system,
        reason=reason,
        min_weight=min_weight,
        max_weight=max_weight,
        offset=offset,
        limit=limit,
    )
    return ReviewQueue(
        items=[item_read(i) for i in page.items],
        total=page.total,
        offset=offset,
        limit=limit,
        waiting_by_source=page.waiting_by_source,
    )


@router.get(
    "/reviews", summary="Open review items, most consequential first", response_model=ReviewQueue
)
def list_reviews(
    request: Request,
    source_system: Annotated[str | None, Query(max_length=64)] = None,
    reason: Annotated[str | None, Query(pattern="^(review_band|nhs_conflict)$")] = None,
    min_weight: Annotated[float | None, Query(ge=-100, le=100)] = None,
    max_weight: Annotated[float | None, Query(ge=-100, le=100)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    client: Client = Reviewer,
) -> ReviewQueue:
    """First the pairs whose "same child" would merge two NHS-anchored CCIs, then by how close
    the probability is to 0.5. Filters: a source system either record belongs to, the reason,
    a match-weight range [min_weight, max_weight)."""
    engine: Engine = request.app.state.engine
    with engine.connect() as connection:
        return load_queue(
            connection,
            client,
            source_system=source_system,
            reason=reason,
            min_weight=min_weight,
            max_weight=max_weight,
            offset=offset,
            limit=limit,
        )


def load_pair(connection: Connection, client: Client, item_id: int) -> ReviewPairRead:
    pair = review_pair(connection, item_id, own_sources=client.sources.values())
    if pair is None:
        raise Problem(404, "no such review item", kind="not-found")
    return ReviewPairRead(
        **item_read(pair.item).model_dump(),
        status=pair.status,  # type: ignore[arg-type]
        prior_probability=pair.prior_probability,
        parts=[ComparisonPart(**p) for p in pair.parts],
        decisions=[DecisionRead(**d) for d in pair.decisions],
    )


@router.get("/reviews/{item_id}", summary="One pair to review", response_model=ReviewPairRead)
def get_review(
    request: Request, item_id: Annotated[int, Path(ge=1, le=2**63 - 1)], client: Client = Reviewer
) -> ReviewPairRead:
    """The two records' source systems, record ids and CCIs, each comparison's agreement level
    and match weight (the waterfall), the prior and the final probability."""
    engine: Engine = request.app.state.engine
    with engine.connect() as connection:
        return load_pair(connection, client, item_id)


def decide(request: Request, client: Client, item_id: int, body: DecisionCreate) -> DecisionResult:
    scorer = scorer_for(request)
    with write_transaction(request.app.state.engine) as connection:
        pair = connection.execute(
            select(ReviewItem.record_pk_l, ReviewItem.record_pk_r, ReviewItem.status).where(
                ReviewItem.id == item_id
            )
        ).first()
        if pair is None:
            raise Problem(404, "no such review item", kind="not-found")
        if pair.status == "obsolete":
            raise Problem(409, "a later run has dropped this pair from review", kind="obsolete")
        outcome = decide_pair(
            connection,
            record_l=pair.record_pk_l,
            record_r=pair.record_pk_r,
            verdict=body.verdict,
            reason=body.reason,
            actor=client.actor,
            scorer=scorer,
            review_item=item_id,
        )
    return outcome_read(outcome)


@router.post(
    "/reviews/{item_id}/decision",
    summary="Decide a pair: same child, different children or not sure",
    response_model=DecisionResult,
    responses=responses(409, 503),
)
def post_decision(
    request: Request,
    item_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: DecisionCreate,
    client: Client = Reviewer,
) -> DecisionResult:
    """The decision becomes a constraint for every later run and the two records' clusters are
    re-clustered at once; the CCI changes are in the answer and in the change feed. A decided
    pair may be decided again (the latest verdict stands)."""
    return decide(request, client, item_id, body)


def load_history(connection: Connection, client: Client, cci: str) -> IdentifierHistory:
    events = identifier_history(connection, cci, own_sources=client.sources.values())
    if not events:
        raise Problem(404, "no such CCI", kind="not-found")
    audit(connection, client.actor, "read_history", cci)
    return IdentifierHistory(
        cci=cci,
        events=[
            HistoryEventRead(
                cursor=e.cursor,
                type=e.type,
                cci=e.cci,
                related_cci=e.related_cci,
                record=record_read(e.record) if e.record else None,
                at=e.at,
            )
            for e in events
        ],
    )


@router.get(
    "/identifiers/{cci}/history",
    summary="A CCI's history: created, merged, split, superseded by",
    response_model=IdentifierHistory,
)
def get_history(request: Request, cci: CciPath, client: Client = Reviewer) -> IdentifierHistory:
    """Events naming the CCI, as itself or as the related CCI, oldest first. Audited."""
    with write_transaction(request.app.state.engine) as connection:
        return load_history(connection, client, known_cci(cci))


def load_cluster(
    connection: Connection, client: Client, cci: str, scorer: PairScorer
) -> ClusterRead:
    view = cluster_view(connection, cci, scorer=scorer, own_sources=client.sources.values())
    if view is None:
        raise Problem(404, "no such CCI", kind="not-found")
    audit(connection, client.actor, "read_cluster", cci, {"records": len(view.records)})
    return cluster_read(view)


@router.get(
    "/identifiers/{cci}/cluster",
    summary="A CCI's records and the pairwise scores inside it",
    response_model=ClusterRead,
    responses=responses(503),
)
def get_cluster(request: Request, cci: CciPath, client: Client = Reviewer) -> ClusterRead:
    """Its active records and every pair among them scored with the active model, weakest
    first (the links a split would cut). Audited."""
    scorer = scorer_for(request)
    with write_transaction(request.app.state.engine) as connection:
        return load_cluster(connection, client, known_cci(cci), scorer)


def split(request: Request, client: Client, cci: str, body: SplitCreate) -> DecisionResult:
    scorer = scorer_for(request)
    with write_transaction(request.app.state.engine) as connection:
        found = connection.execute(
            select(Record.id, Record.restricted, Record.source_system_id)
            .join(SourceSystem, SourceSystem.id == Record.source_system_id)
            .where(SourceSystem.code == body.source_system, Record.record_id == body.record_id)
        ).first()
        hidden = found is not None and found.restricted
        if found is None or (hidden and found.source_system_id not in client.sources.values()):
            raise Problem(404, "no such record", kind="not-found")
        outcome = split_off(
            connection,
            cci=cci,
            record_pk=found.id,
            reason=body.reason,
            actor=client.actor,
            scorer=scorer,
        )
    return outcome_read(outcome)


@router.post(
    "/identifiers/{cci}/split",
    summary="Split a record off a CCI (different children from every other record)",
    response_model=DecisionResult,
    responses=responses(409, 503),
)
def post_split(
    request: Request, cci: CciPath, body: SplitCreate, client: Client = Reviewer
) -> DecisionResult:
    """Recorded as "different children" between the record and each other record of the CCI,
    so every later run keeps it apart. The CCI stays with the rest of its records."""
    return split(request, client, known_cci(cci), body)


def merge(request: Request, client: Client, cci: str, body: MergeCreate) -> DecisionResult:
    other = known_cci(body.other_cci)
    scorer = scorer_for(request)
    with write_transaction(request.app.state.engine) as connection:
        outcome = merge_identifiers(
            connection,
            cci=cci,
            other_cci=other,
            reason=body.reason,
            actor=client.actor,
            scorer=scorer,
        )
    return outcome_read(outcome)


@router.post(
    "/identifiers/{cci}/merge",
    summary="Merge two CCIs (the same child)",
    response_model=DecisionResult,
    responses=responses(409, 503),
)
def post_merge(
    request: Request, cci: CciPath, body: MergeCreate, client: Client = Reviewer
) -> DecisionResult:
    """Recorded as "same child" between the best-scoring pair of records across the two CCIs.
    One CCI survives (most records, then NHS-anchored, then oldest); the other is superseded
    and resolves to it."""
    return merge(request, client, known_cci(cci), body)
