"""The registry's tables (SQLAlchemy 2). Enums are stored as strings; timestamps end in `_at`.

Record encodings are generated from the record contract, so the store cannot drift from it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from linkage.contract import ENCODING_COLUMNS, SOURCE_KINDS

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: A 64-bit integer primary key that autoincrements on SQLite too.
BigId = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> datetime:
    """Now, timezone-aware UTC: every `_at` column holds this."""
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def as_utc(value: datetime) -> datetime:
    """`value` timezone-aware: a naive time from the store is UTC (everything written is)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database: SQLite keeps no zone, so what it
    returns is marked UTC here (everything written is UTC), and callers never see a naive
    time."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


@functools.lru_cache(maxsize=16)
def _timestamp_processor(dialect: Dialect) -> Callable[[Any], Any] | None:
    return UtcDateTime().dialect_impl(dialect).bind_processor(dialect)


def stored_timestamp(dialect: Dialect, moment: datetime | None = None) -> Any:
    """`moment` (default: now) as the DB-API takes it for an `_at` column, for the bulk and
    hot paths that bypass SQLAlchemy's type handling (SQLite stores SQLAlchemy's text form).
    The dialect's processor is made once: about 80 µs each time."""
    processor = _timestamp_processor(dialect)
    moment = utcnow() if moment is None else moment
    return processor(moment) if processor else moment


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _timestamp(nullable: bool = False) -> Any:
    return mapped_column(UtcDateTime(), nullable=nullable, default=None if nullable else utcnow)


class SourceSystem(Base):
    """A registered agency system; its kind decides what its evidence counts for."""

    __tablename__ = "source_systems"
    __table_args__ = (CheckConstraint(_in("kind", SOURCE_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = _timestamp()


class LinkageKey(Base):
    """Key ids whose encodings the registry accepts."""

    __tablename__ = "linkage_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    registered_at: Mapped[datetime] = _timestamp()


class Record(Base):
    """One source system's record of a child; its encodings live in `record_versions`."""

    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("source_system_id", "record_id", name="source_record"),
        CheckConstraint(_in("status", ("active", "withdrawn")), name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_system_id: Mapped[int] = mapped_column(ForeignKey("source_systems.id"))
    record_id: Mapped[str] = mapped_column(String(128))
    current_version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(ForeignKey("linkage_keys.key_id"))
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = _timestamp()
    updated_at: Mapped[datetime] = _timestamp()


_SQL_TYPES = {"int64": BigInteger, "int64_set": Text, "text": Text, "bool": Boolean}
#: Look-ups for the real-time matcher's candidate search, one or more per blocking rule
#: (linkage.model.settings.BLOCKING_RULES): each rule's equalities lead an index, so finding a
#: record's candidates is a few index probes, never a walk over the table rows of every child
#: born that day (a single dob_tok index cost 0.6 ms per date rule on a 1M-record registry).
#: The names index serves four rules, filtering a handful of rows for the rest. The
#: date-of-birth index holds the other columns of the four date rules: one probe per date
#: checks them in its entries (about 150 a date on 1M records) and reads only the rows that
#: match; three (dob_tok, X) indexes took 2.7 s to build on 1M records, this one 1.1 s.
#: (name, columns); tests/store/test_lookup_indexes.py checks every rule is covered.
LOOKUP_INDEXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ix_record_versions_nhs_number_enc", ("nhs_number_enc",)),
    ("ix_record_versions_upn_tok", ("upn_tok",)),
    ("ix_record_versions_la_child_id_tok", ("la_child_id_tok",)),
    ("ix_record_versions_names", ("given_name_tok", "family_name_tok")),
    ("ix_record_versions_dob", ("dob_tok", "family_name_dm", "given_name_dm", "postcode_tok")),
    ("ix_record_versions_sounds_month", ("family_name_dm", "given_name_dm", "dob_ym_tok")),
    ("ix_record_versions_family_birthday", ("family_name_tok", "dob_md_tok", "given_name_dm")),
)

#: Identifiers most records lack (35% of a million demo records hold no NHS number, 57% no
#: UPN, 94% no local authority child id): their look-up indexes leave the NULLs out, which
#: no look-up asks for (`column = ?` implies the index's condition on both databases).
SPARSE_LOOKUPS = ("nhs_number_enc", "upn_tok", "la_child_id_tok")


def _lookup_index(name: str, columns: tuple[str, ...]) -> Index:
    if len(columns) == 1 and columns[0] in SPARSE_LOOKUPS:
        held = text(f"{columns[0]} IS NOT NULL")
        return Index(name, *columns, sqlite_where=held, postgresql_where=held)
    return Index(name, *columns)


#: Every version of every record, with the encodings (columns generated from the contract:
#: int64 -> BIGINT, int64 sets -> space-separated decimal text, NULL when empty).
record_versions = Table(
    "record_versions",
    Base.metadata,
    Column("record_pk", BigInteger, ForeignKey("records.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key_id", String(32), nullable=False),
    Column("encoding_version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("sex", String(1)),
    Column("restricted", Boolean, nullable=False),
    *(Column(c.name, _SQL_TYPES[c.type]) for c in ENCODING_COLUMNS),
    Column("ingested_at", UtcDateTime(), nullable=False, default=utcnow),
    *(_lookup_index(name, columns) for name, columns in LOOKUP_INDEXES),
)


class Identifier(Base):
    """A CCI. Never deleted or reused: superseded ones point at their successor."""

    __tablename__ = "identifiers"
    __table_args__ = (
        CheckConstraint(_in("status", ("active", "superseded", "retired")), name="status"),
    )

    cci: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    successor_cci: Mapped[str | None] = mapped_column(ForeignKey("identifiers.cci"))
    nhs_anchored: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _timestamp()
    changed_at: Mapped[datetime] = _timestamp()


class Assignment(Base):
    """Which CCI a record carries, since when and how. Current: `ended_at` IS NULL."""

    __tablename__ = "assignments"
    __table_args__ = (
        CheckConstraint(_in("method", ("auto", "manual", "realtime")), name="method"),
        Index(
            "ux_assignments_current_record",
            "record_pk",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_assignments_cci", "cci"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    record_pk: Mapped[int] = mapped_column(ForeignKey("records.id"))
    cci: Mapped[str] = mapped_column(ForeignKey("identifiers.cci"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("linkage_runs.id"))
    method: Mapped[str] = mapped_column(String(16))
    match_probability: Mapped[float | None] = mapped_column(Float)
    assigned_at: Mapped[datetime] = _timestamp()
    ended_at: Mapped[datetime | None] = _timestamp(nullable=True)


class LinkageRun(Base):
    """One linkage run over the registry (one at a time), with the model that scored it."""

    __tablename__ = "linkage_runs"
    __table_args__ = (
        CheckConstraint(_in("status", ("running", "succeeded", "failed")), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    model_version: Mapped[int | None] = mapped_column(ForeignKey("models.version"))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_at: Mapped[datetime] = _timestamp()
    finished_at: Mapped[datetime | None] = _timestamp(nullable=True)


class Model(Base):
    """A trained Splink model (settings JSON with m/u) and its training summary."""

    __tablename__ = "models"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    settings_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = _timestamp()


class Decision(Base):
    """A data officer's judgement on a pair: a must-link or cannot-link for every later run."""

    __tablename__ = "decisions"
    __table_args__ = (
        CheckConstraint(_in("verdict", ("same", "different", "unsure")), name="verdict"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    record_pk_l: Mapped[int] = mapped_column(ForeignKey("records.id"))
    record_pk_r: Mapped[int] = mapped_column(ForeignKey("records.id"))
    verdict: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = _timestamp()


class ReviewItem(Base):
    """A grey-zone pair waiting for a data officer, with the scores that put it there."""

    __tablename__ = "review_items"
    __table_args__ = (
        CheckConstraint(_in("status", ("open", "decided", "obsolete")), name="status"),
        Index("ix_review_items_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    record_pk_l: Mapped[int] = mapped_column(ForeignKey("records.id"))
    record_pk_r: Mapped[int] = mapped_column(ForeignKey("records.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("linkage_runs.id"))
    match_weight: Mapped[float] = mapped_column(Float)
    match_probability: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(32))
    explanation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = _timestamp()
    decided_at: Mapped[datetime | None] = _timestamp(nullable=True)


class Event(Base):
    """Append-only feed of identifier changes; `cursor` increases monotonically (on SQLite
    AUTOINCREMENT, so a cursor is never handed out twice even after the newest row goes)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_cci", "cci"),
        # Only merges, splits and moves name a related CCI: most events (a record's first
        # CCI, a new CCI) leave it NULL, and the index leaves them out (1.6M events of a
        # first run: 0.05 s to build against 0.42 s). `related_cci = ?` and `IN (...)`
        # imply the index's condition, so both databases use it for them.
        Index(
            "ix_events_related_cci",
            "related_cci",
            sqlite_where=text("related_cci IS NOT NULL"),
            postgresql_where=text("related_cci IS NOT NULL"),
        ),
        {"sqlite_autoincrement": True},
    )

    cursor: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(32))
    cci: Mapped[str] = mapped_column(String(16))
    related_cci: Mapped[str | None] = mapped_column(String(16))
    record_pk: Mapped[int | None] = mapped_column(BigInteger)
    run_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = _timestamp()


class ApiClient(Base):
    """An agency system's API key (only its SHA-256 is kept) and the scopes it was granted."""

    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = _timestamp()
    revoked_at: Mapped[datetime | None] = _timestamp(nullable=True)


#: The source systems an API client may submit and read for.
api_client_sources = Table(
    "api_client_sources",
    Base.metadata,
    Column("client_id", Integer, ForeignKey("api_clients.id"), primary_key=True),
    Column("source_system_id", Integer, ForeignKey("source_systems.id"), primary_key=True),
)


class AuditEntry(Base):
    """Who read or decided what, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(256))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = _timestamp()


class FrozenTermFrequencies(Base):
    """Term-frequency tables frozen with a model version, so the real-time scorer and later
    runs weigh a common name the same way the model was built to (DESIGN.md, Concurrency).
    One zstd Parquet block per version (`linkage.store.term_frequencies`): a million-record
    registry freezes some 360,000 values, which as rows took 1.3 s to write and 0.7 s to read
    back, at every run and every service worker's start, and were never queried one by one."""

    __tablename__ = "frozen_term_frequencies"

    model_version: Mapped[int] = mapped_column(ForeignKey("models.version"), primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    parquet: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _timestamp()


class BatchJob(Base):
    """An uploaded pseudonymised file to ingest and link; persisted so that it survives a
    restart (a job found `running` by a new process is run again, which is idempotent)."""

    __tablename__ = "batch_jobs"
    __table_args__ = (
        CheckConstraint(_in("status", ("queued", "running", "succeeded", "failed")), name="status"),
        Index("ix_batch_jobs_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    phase: Mapped[str | None] = mapped_column(String(16))
    file_name: Mapped[str] = mapped_column(String(256))
    file_format: Mapped[str] = mapped_column(String(16))
    upload_path: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_ingested: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    rejects: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("linkage_runs.id"))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _timestamp()
    updated_at: Mapped[datetime] = _timestamp()
    finished_at: Mapped[datetime | None] = _timestamp(nullable=True)


class KeptPairBlock(Base):
    """What a linkage run scored, kept so that the next run with the same model scores only
    pairs that involve new or changed records: the pairs at or above the review weight
    (`part` "pairs", PAIR_SCHEMA) and the record version each record was scored at ("versions"),
    as zstd Parquet blocks. Each run replaces them whole. As rows, a million records' pairs
    and versions took 2.4 s to write and about 2 s to read back; no query ever asked for one."""

    __tablename__ = "kept_pair_blocks"
    __table_args__ = (CheckConstraint(_in("part", ("pairs", "versions")), name="part"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version: Mapped[int] = mapped_column(Integer)
    part: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(Integer)
    parquet: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _timestamp()


class RecordVersionBlock(Base):
    """Record versions again, as Parquet blocks of the columns a linkage run reads: a run
    takes a million records' current versions from these in under 3 s, where turning
    `record_versions` rows into Python values took 10-11 s. Versions never change, so a copy
    cannot go stale. Ingest writes the blocks with its versions, in the same transaction;
    the next run adds any version stored another way (the real-time path). The blocks hold
    the same encodings as `record_versions`, in the same database: nothing new to protect."""

    __tablename__ = "record_version_blocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    parquet: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _timestamp()
