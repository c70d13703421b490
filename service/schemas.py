"""Request and response bodies of the REST API (the OpenAPI document is generated from these).

The submitted record is generated from the record contract, so the API cannot drift from
what the pseudonymiser writes.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from linkage.contract import (
    ENCODING_COLUMNS,
    ENCODING_VERSION,
    PSEUDONYMISED_COLUMN_NAMES,
    PSEUDONYMISED_REQUIRED,
)
from linkage.pseudonymise import LinkageKey, RecordEncoder

INT64 = {"ge": -(2**63), "le": 2**63 - 1}


@lru_cache
def example_record() -> dict[str, Any]:
    """A fictional child pseudonymised under a throwaway key (all zeros): the API's example."""
    encoder = RecordEncoder(LinkageKey(secret=bytes(32)))
    raw = {
        "source_system": "education",
        "record_id": "E1000042",
        "nhs_number": "",
        "upn": "",
        "la_child_id": "",
        "given_name": "Amelia",
        "middle_names": "Rose",
        "family_name": "Hughes",
        "date_of_birth": "2016-04-09",
        "sex": "F",
        "postcode": "LS6 1AB",
        "restricted": "",
    }
    encoded, _ = encoder.encode(raw)
    values = dict(zip(PSEUDONYMISED_COLUMN_NAMES, encoded.values(), strict=True))
    return {
        k: " ".join(str(t) for t in v) if isinstance(v, tuple) else v
        for k, v in values.items()
        if v is not None
    }


def _field(column: Any) -> tuple[Any, Any]:
    required = column.name in PSEUDONYMISED_REQUIRED
    if column.type == "int64":
        kind: Any = int if required else int | None
        return kind, Field(... if required else None, description=column.doc, **INT64)
    if column.type == "int64_set":
        text = Annotated[str, Field(pattern=r"^-?\d{1,19}( -?\d{1,19})*$", max_length=2000)]
        tokens = list[Annotated[int, Field(**INT64)]]
        return text | Annotated[tokens, Field(max_length=100)] | None, Field(
            None,
            description=column.doc + " (space-separated text, as in the pseudonymiser's files, "
            "or an array)",
        )
    return (str if required else str | None), Field(
        ... if required else None,
        description=column.doc,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
    )


PseudonymisedRecord = create_model(  # type: ignore[call-overload]
    "PseudonymisedRecord",
    __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [example_record()]}),
    source_system=(
        str,
        Field(
            description="your registered source system code",
            min_length=1,
            max_length=64,
            pattern=r"^[a-z0-9_]+$",
        ),
    ),
    record_id=(
        str,
        Field(description="the record's key in your system", min_length=1, max_length=128),
    ),
    key_id=(
        str,
        Field(
            description="id of the linkage key that encoded the record", min_length=1, max_length=32
        ),
    ),
    encoding_version=(
        int,
        Field(description="encoding scheme version", ge=ENCODING_VERSION, le=ENCODING_VERSION),
    ),
    sex=(Literal["F", "M", "U"] | None, Field(None, description="F, M, U or missing")),
    restricted=(bool, Field(False, description="never disclose to another agency")),
    **{c.name: _field(c) for c in ENCODING_COLUMNS},
)


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, str]] | None = Field(
        None, description="field-level validation errors: field, message, type"
    )


Grade = Literal["certain", "probable", "possible", "certainly-not"]


class MatchResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source_system": "education",
                    "record_id": "E1000042",
                    "cci": "K7QW2M9XR46",
                    "decision": "linked",
                    "match_probability": 0.99998,
                    "match_weight": 15.6,
                    "grade": "certain",
                    "nhs_anchored": True,
                    "candidates": 3,
                    "model_version": 2,
                }
            ]
        }
    )

    source_system: str
    record_id: str
    cci: str = Field(description="the child's Consistent Childhood Identifier")
    decision: Literal["linked", "new", "review", "existing"] = Field(
        description="linked: joined an existing CCI; new: a new CCI; review: a new CCI and a "
        "close pair awaits a data officer; existing: the record already had this CCI"
    )
    match_probability: float | None = Field(description="of the best candidate, if any")
    match_weight: float | None = None
    grade: Grade | None = Field(description="FHIR match-grade of the best candidate")
    nhs_anchored: bool = Field(description="the CCI's cluster holds a health-verified NHS number")
    candidates: int
    model_version: int


class RecordView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source_system": "education",
                    "record_id": "E1000042",
                    "status": "active",
                    "restricted": False,
                    "cci": "K7QW2M9XR46",
                    "version": 2,
                    "updated_at": "2026-11-22T09:14:03Z",
                }
            ]
        }
    )

    source_system: str
    record_id: str
    status: Literal["active", "withdrawn"]
    restricted: bool
    cci: str | None = Field(description="current CCI; null when withdrawn or not yet linked")
    version: int
    updated_at: datetime


class IdentifierView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "cci": "H3MX8P2KD6E",
                    "status": "superseded",
                    "resolved_cci": "K7QW2M9XR46",
                    "successor_cci": "K7QW2M9XR46",
                    "nhs_anchored": True,
                    "created_at": "2026-10-01T08:00:00Z",
                    "changed_at": "2026-11-22T09:14:03Z",
                    "source_systems": ["education", "health"],
                    "nhs_number_enc": None,
                }
            ]
        }
    )

    cci: str
    status: Literal["active", "superseded", "retired"]
    resolved_cci: str | None = Field(
        description="the active CCI this one resolves to (itself when active, the successor "
        "when superseded, null when retired)"
    )
    successor_cci: str | None
    nhs_anchored: bool
    created_at: datetime
    changed_at: datetime
    source_systems: list[str] | None = Field(
        None, description="with the resolve scope: source systems holding records of the child"
    )
    nhs_number_enc: list[str] | None = Field(
        None,
        description="with the trace scope: the cluster's health-verified NHS number as "
        "ciphertext under the linkage key (decrypt with `cci reveal`)",
    )


class FeedEvent(BaseModel):
    cursor: int
    type: Literal[
        "created", "superseded", "split", "reinstated", "retired", "reassigned", "withdrawn"
    ]
    cci: str
    related_cci: str | None
    source_system: str | None = Field(None, description="set when the event is about your record")
    record_id: str | None = None
    at: datetime


class EventPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "cursor": 1041,
                            "type": "superseded",
                            "cci": "H3MX8P2KD6E",
                            "related_cci": "K7QW2M9XR46",
                            "source_system": None,
                            "record_id": None,
                            "at": "2026-11-22T09:14:03Z",
                        },
                        {
                            "cursor": 1042,
                            "type": "reassigned",
                            "cci": "K7QW2M9XR46",
                            "related_cci": "H3MX8P2KD6E",
                            "source_system": "education",
                            "record_id": "E1000042",
                            "at": "2026-11-22T09:14:03Z",
                        },
                    ],
                    "next_cursor": 1042,
                }
            ]
        }
    )

    events: list[FeedEvent]
    next_cursor: int = Field(description="pass as `after` to read on")


# -- data officers: review queue, decisions, clusters (service/routes/reviews.py) ----------


class ReviewRecord(BaseModel):
    """A record as a reviewer may see it: another system's restricted record shows only its
    source kind. Never encodings: check the cleartext in your own system by record id."""

    source_kind: Literal["health", "education", "social_care", "other"]
    source_system: str | None = Field(description="null when restricted and not yours")
    record_id: str | None = Field(description="null when restricted and not yours")
    cci: str | None = Field(description="the CCI it carries now; null when hidden or unlinked")
    restricted: bool


class ReviewItemRead(BaseModel):
    id: int
    left: ReviewRecord
    right: ReviewRecord
    match_weight: float
    match_probability: float
    reason: Literal["review_band", "nhs_conflict"] = Field(
        description="review_band: below the auto-link weight; nhs_conflict: strong, but the "
        "NHS-number rule kept the records apart"
    )
    merges_nhs_anchored: bool = Field(
        description='deciding "same child" would merge two NHS-anchored CCIs'
    )
    created_at: datetime


class ReviewQueue(BaseModel):
    items: list[ReviewItemRead]
    total: int = Field(description="open items matching the filters")
    offset: int
    limit: int
    waiting_by_source: dict[str, int] = Field(description="open items per source system")


class ComparisonPart(BaseModel):
    """One bar of the waterfall: a comparison's agreement level and its match weight."""

    comparison: str
    level: int | None = Field(description="agreement level (higher agrees more); null: missing")
    label: str
    match_weight: float | None
    tf_adjustment: float = Field(description="term-frequency part of the weight")


class DecisionRead(BaseModel):
    verdict: Literal["same", "different", "unsure"]
    reason: str | None
    decided_by: str
    at: datetime


class ReviewPairRead(ReviewItemRead):
    status: Literal["open", "decided", "obsolete"]
    prior_probability: float | None = Field(description="before any comparison")
    parts: list[ComparisonPart]
    decisions: list[DecisionRead] = Field(description="decisions on this pair, oldest first")


Reason = Annotated[str | None, Field(None, max_length=2000, description="why, for the record")]


class DecisionCreate(BaseModel):
    verdict: Literal["same", "different", "unsure"] = Field(
        description="same child / different children / not sure (recorded, changes nothing)"
    )
    reason: Reason = None


class SplitCreate(BaseModel):
    source_system: str = Field(max_length=64)
    record_id: str = Field(max_length=128)
    reason: Reason = None


class MergeCreate(BaseModel):
    other_cci: str = Field(max_length=32, description="the CCI to merge with this one")
    reason: Reason = None


class ChangeEventRead(BaseModel):
    type: str
    cci: str
    related_cci: str | None


class ClusterChange(BaseModel):
    cci: str
    records: int


class DecisionResult(BaseModel):
    verdict: Literal["same", "different", "unsure"]
    decisions: int = Field(description="decisions recorded (a split makes one per other record)")
    ccis_before: list[str]
    clusters: list[ClusterChange] = Field(description="the re-clustered CCIs and their sizes")
    events: list[ChangeEventRead] = Field(description="CCI changes written to the feed")


class HistoryEventRead(BaseModel):
    cursor: int
    type: str
    cci: str
    related_cci: str | None
    record: ReviewRecord | None
    at: datetime


class IdentifierHistory(BaseModel):
    cci: str
    events: list[HistoryEventRead]


class ClusterRecord(ReviewRecord):
    ref: int = Field(description="this record's position, named by `links`")


class ClusterLinkRead(BaseModel):
    left: int
    right: int
    match_weight: float
    match_probability: float


class ClusterRead(BaseModel):
    cci: str
    status: Literal["active", "superseded", "retired"]
    nhs_anchored: bool
    records: list[ClusterRecord]
    links: list[ClusterLinkRead] = Field(
        description="every pair inside scored with the active model, weakest first (empty "
        "for very large clusters)"
    )


class BatchReject(BaseModel):
    row: int = Field(description="data row number in the uploaded file (1 = first after header)")
    record_id: str | None
    reason: str


class BatchJobRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "6f1c2e0d9a8b4c7e8f90a1b2c3d4e5f6",
                    "status": "succeeded",
                    "phase": "done",
                    "progress": 1.0,
                    "file_name": "spring-census.csv",
                    "file_format": "csv",
                    "size_bytes": 1843200,
                    "rows_total": 2402,
                    "rows_ingested": 2400,
                    "rows_rejected": 2,
                    "rejects": [
                        {
                            "row": 17,
                            "record_id": "H0042",
                            "reason": "source system 'health' is not bound to this API key",
                        }
                    ],
                    "run_id": 12,
                    "error": None,
                    "attempts": 1,
                    "created_at": "2026-11-22T09:14:03Z",
                    "updated_at": "2026-11-22T09:15:41Z",
                    "finished_at": "2026-11-22T09:15:41Z",
                }
            ]
        }
    )

    id: str = Field(description="the job id (GET /v1/batches/{id})")
    status: Literal["queued", "running", "succeeded", "failed"]
    phase: Literal["check", "ingest", "link", "done"] | None = Field(
        description="check: reading the file and rejecting other source systems' rows; "
        "ingest: storing the accepted rows; link: the linkage run; null while queued"
    )
    progress: float = Field(
        ge=0,
        le=1,
        description="fraction done: checking and ingesting advance with the bytes read, the "
        "linkage run is one step",
    )
    file_name: str
    file_format: Literal["csv", "parquet"]
    size_bytes: int
    rows_total: int = Field(description="data rows read from the file")
    rows_ingested: int = Field(description="rows handed to ingest (unchanged records add nothing)")
    rows_rejected: int
    rejects: list[BatchReject] = Field(description="the first 1,000 rejected rows")
    run_id: int | None = Field(description="the linkage run that linked this job's records")
    error: str | None = Field(description="why the job failed (the whole file was refused)")
    attempts: int = Field(description="times the job was started (a restart runs it again)")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
