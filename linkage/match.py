"""Real-time matching: one pseudonymised record in, its CCI out, in milliseconds.

The record is stored, its candidates are found with indexed look-ups that mirror the model's
blocking rules (the same candidates a Splink batch would pair it with), each candidate is
scored natively with the active model and its frozen term-frequency tables (the same weight
Splink gives), and the record joins the best cluster at or above the auto-link threshold, or
gets a new CCI. Review-band pairs become review items. The next batch run reconciles what was
decided here under the stable-identifier rules.

Two submissions of one new child must not make two CCIs: the whole step runs in one write
transaction that first locks the record's blocking keys (PostgreSQL advisory locks on their
sorted hashes; SQLite's BEGIN IMMEDIATE serialises every writer anyway), so the second
submission sees the first one's record as a candidate.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, select

from linkage.contract import ENCODING_COLUMNS, ENCODING_VERSION, PSEUDONYMISED_REQUIRED
from linkage.errors import CCIError, UnknownKeyError, UnusableInputError
from linkage.identity.cci import new_cci
from linkage.model.realtime import CompiledModel, PairScore, explanation, probability
from linkage.model.settings import BLOCKING_RULES
from linkage.run import Thresholds
from linkage.settings import linkage_settings
from linkage.store.database import EVENT_ORDER_LOCK, write_transaction
from linkage.store.ingest import content_hash
from linkage.store.models import LOOKUP_INDEXES, Model, stored_timestamp
from linkage.store.term_frequencies import freeze_frequencies, load_frequencies

#: How often a worker checks which model is active (seconds).
MODEL_CHECK_SECONDS = 2.0
SET_COLUMNS = tuple(c.name for c in ENCODING_COLUMNS if c.type == "int64_set")
_ENCODINGS = tuple(c.name for c in ENCODING_COLUMNS)
_VERSION_COLUMNS = ("sex", "restricted", *_ENCODINGS)
#: The date-of-birth look-up index: its leading column and all it holds (`_lead`).
_DOB_INDEX = dict(LOOKUP_INDEXES)["ix_record_versions_dob"]
_DOB_LEAD, _DOB_HELD = _DOB_INDEX[0], frozenset(_DOB_INDEX)
#: Candidates are read as stored versions: see `_candidate_sql`.
_SELECT_VERSIONS = f"SELECT record_pk, version, {', '.join(_VERSION_COLUMNS)} FROM record_versions"


class NoModelError(CCIError):
    """No active model: run `cci link` (or `cci model train`/`import`) first."""


@dataclass(frozen=True)
class Match:
    """What a submission answers: the record's CCI and how it was reached."""

    source_system: str
    record_id: str
    cci: str
    #: linked (joined an existing CCI) | new | review (new CCI, a close pair awaits an
    #: officer) | existing (the record already had a CCI; it keeps it until the next run)
    decision: str
    match_probability: float | None
    match_weight: float | None
    #: FHIR match-grade of the best candidate: certain | probable | possible | certainly-not
    grade: str | None
    nhs_anchored: bool
    candidates: int
    model_version: int


@dataclass(frozen=True)
class _Candidate:
    """A stored version found by blocking; `cci` is known once it was checked current."""

    record_pk: int
    version: int
    row: dict[str, Any]
    cci: str | None = None


def blocking_key_hashes(record: Mapping[str, Any]) -> list[int]:
    """Advisory-lock keys: one per blocking rule the record can block on, per side.

    Rule (a_i = b_i): a record x pairs with y when x.a = y.b. x locks hash(rule, x.a) and
    hash(rule, x.b); y locks hash(rule, y.b) = hash(rule, x.a), so the two meet on one lock.
    """
    keys: set[int] = set()
    for rule in BLOCKING_RULES:
        for side in (0, 1):
            values = [record.get(pair[side]) for pair in rule.equalities]
            if any(v is None for v in values):
                continue
            digest = hashlib.blake2b(f"{rule.name}|{values}".encode(), digest_size=8).digest()
            keys.add(int.from_bytes(digest, "big", signed=True))
    return sorted(keys)


def _candidate_sql(record: Mapping[str, Any], after: int = 0) -> tuple[str, list[Any]]:
    """One query: stored versions agreeing with the record on any blocking rule (only versions
    stored after the `snapshot_mark`, when given). The submitted record is the left side of
    each rule: candidate.b = record.a.

    Versions only, with no join to records or assignments: most candidates score far below
    the review weight, and which of them are current versions of active, assigned records is
    asked once, for the few that matter (`_current`). Joined here, that cost a record and an
    assignment look-up per candidate, each a walk from the root of a 1M-row B-tree (a commit by
    any other connection empties SQLite's page cache)."""
    # Rules that share their leading equalities make one term, `lead AND (rest OR rest ...)`:
    # one probe of their index and one read of its rows instead of one per rule.
    groups: dict[tuple[tuple[str, Any], ...], list[tuple[tuple[str, Any], ...]]] = {}
    for pairs in _rule_terms(record):
        lead = _lead(pairs)
        groups.setdefault(lead, []).append(pairs[len(lead) :])
    if not groups:
        return "", []
    terms: list[str] = []
    params: list[Any] = []
    for lead, rests in groups.items():
        parts = [f"{column} = ?" for column, _ in lead]
        params += [value for _, value in lead]
        if any(rests):
            parts.append(
                "(" + " OR ".join(" AND ".join(f"{c} = ?" for c, _ in r) for r in rests) + ")"
            )
            params += [value for rest in rests for _, value in rest]
        terms.append("(" + " AND ".join(parts) + ")")
    sql = f"{_SELECT_VERSIONS} WHERE ({' OR '.join(terms)})"
    if after:
        # A version's rowid grows with every insert and sits in every index entry, so this
        # filter needs no table reads (SQLite only: see Matcher.submit).
        sql += " AND rowid > ?"
        params.append(after)
    return sql, params


def _lead(pairs: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    """The equalities of a rule's term that probe its look-up index: the date of birth alone
    for the date rules (its index holds their other columns, which are checked in the index
    entries of that date: a table row is read only for an entry that matches); the first two
    of a longer rule (given and family name, then a date part or district, share the names
    index); else all of them."""
    if pairs[0][0] == _DOB_LEAD and all(column in _DOB_HELD for column, _ in pairs):
        return pairs[:1]
    return pairs[:2] if len(pairs) > 2 else pairs


def _rule_terms(record: Mapping[str, Any]) -> list[tuple[tuple[str, Any], ...]]:
    """For each blocking rule the record can block on (no value of its side missing), the
    (candidate column, value) pairs a candidate must equal."""
    return [
        tuple((b, record[a]) for a, b in rule.equalities)
        for rule in BLOCKING_RULES
        if all(record.get(a) is not None for a, _ in rule.equalities)
    ]


def as_scorable(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored or submitted record as the scorer reads it (sets as lists of tokens)."""
    scorable = dict(row)
    for name in SET_COLUMNS:
        value = scorable.get(name)
        if isinstance(value, str):
            scorable[name] = [int(t) for t in value.split()]
    return scorable


def grade(weight: float | None, thresholds: Thresholds) -> str | None:
    if weight is None:
        return None
    if weight >= thresholds.auto_link:
        return "certain"
    if weight >= thresholds.review:
        return "probable" if probability(weight) >= 0.5 else "possible"
    return "certainly-not"


@dataclass
class _ActiveModel:
    version: int
    compiled: CompiledModel
    frequencies: dict[str, dict[Any, float]]


class Matcher:
    """Matches records one at a time against the registry; one per process.

    Holds the active model compiled, with its frozen term-frequency tables, and notices when
    another model is made active.
    """

    def __init__(self, engine: Engine, thresholds: Thresholds | None = None) -> None:
        settings = linkage_settings()
        self.engine = engine
        self.thresholds = thresholds or Thresholds(
            settings.auto_link_weight, settings.review_weight
        )
        self._model: _ActiveModel | None = None
        self._lock = threading.Lock()
        self._sources: dict[str, tuple[int, str]] = {}
        self._keys: set[str] = set()
        self._checked_at = 0.0

    # -- model ---------------------------------------------------------------------------
    def model(self, connection: Connection) -> _ActiveModel:
        """The active model, (re)loaded when its version changed."""
        version = connection.scalar(select(Model.version).where(Model.active))
        if version is None:
            raise NoModelError("no active model: run `cci link` or `cci model train` first")
        current = self._model
        if current is not None and current.version == version:
            return current
        with self._lock:
            if self._model is None or self._model.version != version:
                settings: dict[str, Any] = connection.execute(
                    select(Model.settings_json).where(Model.version == version)
                ).scalar_one()
                compiled = CompiledModel(settings)
                frequencies = load_frequencies(connection, version)
                if frequencies is None:
                    frequencies = freeze_frequencies(self.engine, version, compiled.tf_columns)
                self._model = _ActiveModel(version, compiled, frequencies)
            return self._model

    def ready(self) -> int:
        """Load the active model now (readiness); returns its version."""
        with self.engine.connect() as connection:
            return self.model(connection).version

    # -- submit --------------------------------------------------------------------------
    def submit(self, record: Mapping[str, Any], *, actor: str) -> Match:
        """Store one pseudonymised record and give it a CCI (see the module docstring).

        `record` carries the pseudonymised columns (sets as space-separated text, as in the
        pseudonymiser's files); its source system must be registered.

        Candidates are read and scored before the write lock is taken, from a snapshot; under
        the lock only records made since that snapshot are looked up and scored, and the CCIs
        of the close candidates are read again. Writers hold the lock for about a millisecond,
        not for the scoring, and the outcome is the same as if all of it ran under the lock.
        """
        _check_record(record)
        active = self._current_model()
        mine = as_scorable(record)
        scored: list[tuple[float, _Candidate]] = []
        seen = 0
        if self.engine.dialect.name == "sqlite":
            # (On PostgreSQL ids are handed out before commit, so a snapshot mark could hide
            # a record committed later with a smaller id: there everything runs under the
            # record's blocking-key locks.)
            with self.engine.connect() as reader:
                sql = _Sql(reader)
                seen = snapshot_mark(sql)
                scored = _score(active, mine, _candidates(sql, record))
                reader.rollback()
        # The reader goes back to the pool first: see write_transaction.
        with write_transaction(self.engine) as connection:
            sql = _Sql(connection)
            if sql.postgresql:
                for key in blocking_key_hashes(record):
                    sql.run("SELECT pg_advisory_xact_lock(?)", (key,))
            match = self._submit(sql, record, mine, active, scored, seen)
            sql.run(
                "INSERT INTO audit_log (actor, action, target, detail, at) VALUES (?, ?, ?, ?, ?)",
                (
                    actor,
                    "submit_record",
                    f"{match.source_system}/{match.record_id}",
                    json.dumps({"cci": match.cci, "decision": match.decision}),
                    sql.now,
                ),
            )
            return match

    def _current_model(self) -> _ActiveModel:
        """The active model, re-checked at most every MODEL_CHECK_SECONDS (a model made active
        elsewhere is picked up that quickly, without a query on every request)."""
        current = self._model
        if current is not None and time.monotonic() - self._checked_at < MODEL_CHECK_SECONDS:
            return current
        with self.engine.connect() as reader:
            current = self.model(reader)
        self._checked_at = time.monotonic()
        return current

    def _source(self, sql: _Sql, code: str) -> tuple[int, str]:
        found = self._sources.get(code)
        if found is None:
            row = sql.run("SELECT id, kind FROM source_systems WHERE code = ?", (code,)).fetchone()
            if row is None:
                raise UnusableInputError(f"source system {code!r} is not registered")
            found = self._sources[code] = (row[0], row[1])
        return found

    def _check_key(self, sql: _Sql, key_id: str) -> None:
        if key_id in self._keys:
            return
        known = dict(sql.run("SELECT key_id, active FROM linkage_keys").fetchall())
        if not known:
            sql.run(
                "INSERT INTO linkage_keys (key_id, active, registered_at) VALUES (?, ?, ?)",
                (key_id, True, sql.now),
            )
        elif not known.get(key_id, False):
            raise UnknownKeyError(f"key id {key_id} is not accepted by this registry")
        self._keys.add(key_id)

    def _submit(
        self,
        sql: _Sql,
        record: Mapping[str, Any],
        mine: dict[str, Any],
        active: _ActiveModel,
        scored: list[tuple[float, _Candidate]],
        seen: int,
    ) -> Match:
        source_id, kind = self._source(sql, record["source_system"])
        self._check_key(sql, record["key_id"])
        record_pk, assigned = _upsert(sql, source_id, record)
        if assigned is not None:
            return Match(
                record["source_system"],
                record["record_id"],
                assigned,
                "existing",
                None,
                None,
                None,
                _anchored(sql, assigned),
                0,
                active.version,
            )

        fresh = _fresh_candidates(sql, record, seen) if seen else _candidates(sql, record)
        scored = [(w, c) for w, c in scored if c.record_pk != record_pk] + _score(
            active, mine, [c for c in fresh if c.record_pk != record_pk]
        )
        if sql.postgresql:
            # Taken before the candidates' CCIs are read again: a linkage run or a decision
            # writing at the same time holds it too, so the CCIs read here are still current
            # (never one superseded by a run that commits in between) when this commits.
            sql.run(f"SELECT pg_advisory_xact_lock({EVENT_ORDER_LOCK})")
        found = len({c.record_pk for _, c in scored})
        best: dict[str, tuple[float, _Candidate]] = {}
        for weight, candidate in _current(sql, scored, self.thresholds.review):
            assert candidate.cci is not None
            held = best.get(candidate.cci)
            if held is None or weight > held[0]:
                best[candidate.cci] = (weight, candidate)
        ranked = sorted(best.items(), key=lambda item: -item[1][0])
        health_nhs = record.get("nhs_number_enc") if kind == "health" else None

        chosen: str | None = None
        reviews: list[tuple[PairScore, _Candidate, str]] = []
        for cci, (weight, candidate) in ranked:
            if weight < self.thresholds.review:
                break
            if weight >= self.thresholds.auto_link and chosen is None:
                if health_nhs is not None and _nhs_conflict(sql, cci, health_nhs):
                    reviews.append(
                        (self._explain(active, mine, candidate), candidate, "nhs_conflict")
                    )
                    continue
                chosen = cci
            elif weight < self.thresholds.auto_link:
                reviews.append((self._explain(active, mine, candidate), candidate, "review_band"))
        top = self._explain(active, mine, ranked[0][1][1]) if ranked else None

        now = sql.now
        if chosen is None:
            chosen = new_cci()
            sql.run(
                "INSERT INTO identifiers (cci, status, nhs_anchored, created_at, changed_at) "
                "VALUES (?, 'active', ?, ?, ?)",
                (chosen, health_nhs is not None, now, now),
            )
            sql.run(
                "INSERT INTO events (type, cci, created_at) VALUES ('created', ?, ?)", (chosen, now)
            )
            decision = "review" if reviews else "new"
            anchored = health_nhs is not None  # by this record alone
        else:
            decision = "linked"
            if health_nhs is not None:
                sql.run(
                    "UPDATE identifiers SET nhs_anchored = ?, changed_at = ? "
                    "WHERE cci = ? AND nhs_anchored = ?",
                    (True, now, chosen, False),
                )
                anchored = True
            else:  # what the CCI had
                anchored = _anchored(sql, chosen)
        linked = probability(best[chosen][0]) if chosen in best else None
        sql.run(
            "INSERT INTO assignments (record_pk, cci, method, match_probability, assigned_at) "
            "VALUES (?, ?, 'realtime', ?, ?)",
            (record_pk, chosen, linked, now),
        )
        sql.run(
            "INSERT INTO events (type, cci, record_pk, created_at) VALUES ('reassigned', ?, ?, ?)",
            (chosen, record_pk, now),
        )
        for score, candidate, reason in reviews:
            left, right = sorted((record_pk, candidate.record_pk))
            sql.run(
                "INSERT INTO review_items (record_pk_l, record_pk_r, match_weight, "
                "match_probability, reason, explanation, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'open', ?)",
                (
                    left,
                    right,
                    score.match_weight,
                    score.match_probability,
                    reason,
                    json.dumps(explanation(score)),
                    now,
                ),
            )
        return Match(
            record["source_system"],
            record["record_id"],
            chosen,
            decision,
            top.match_probability if top else None,
            top.match_weight if top else None,
            grade(top.match_weight if top else None, self.thresholds),
            anchored,
            found,
            active.version,
        )

    @staticmethod
    def _explain(active: _ActiveModel, mine: dict[str, Any], candidate: _Candidate) -> PairScore:
        return active.compiled.score(mine, candidate.row, active.frequencies)


def _score(
    active: _ActiveModel, mine: dict[str, Any], candidates: list[_Candidate]
) -> list[tuple[float, _Candidate]]:
    weight = active.compiled.match_weight
    return [(weight(mine, c.row, active.frequencies), c) for c in candidates]


def _current(
    sql: _Sql, scored: list[tuple[float, _Candidate]], review: float
) -> list[tuple[float, _Candidate]]:
    """The candidates that are current versions of active, assigned records, with the CCI each
    carries now (a batch run or a decision may have moved it since the snapshot was read):
    every one at or above the review weight, and the best one below it (what a submission
    reports as its closest match when nothing is close). Usually one query."""
    ranked = sorted(scored, key=lambda item: -item[0])
    close = sum(1 for weight, _ in ranked if weight >= review)
    kept = _current_of(sql, ranked[: close + 1])
    below = ranked[close + 1 :]
    if below and not (kept and kept[-1][0] < review):
        # The best one below the review weight is withdrawn or out of date: the next best.
        kept += _current_of(sql, below)[:1]
    return kept


def _current_of(
    sql: _Sql, scored: list[tuple[float, _Candidate]]
) -> list[tuple[float, _Candidate]]:
    if not scored:
        return []
    pks = {c.record_pk for _, c in scored}
    marks = ", ".join("?" for _ in pks)
    now = {
        pk: (version, cci)
        for pk, version, cci in sql.run(
            "SELECT r.id, r.current_version, a.cci FROM records r "
            "JOIN assignments a ON a.record_pk = r.id AND a.ended_at IS NULL "
            f"WHERE r.status = 'active' AND r.id IN ({marks})",
            tuple(pks),
        ).fetchall()
    }
    kept = []
    for weight, candidate in scored:
        version, cci = now.get(candidate.record_pk, (None, None))
        if version == candidate.version:
            kept.append((weight, replace(candidate, cci=cci)))
    return kept


class _Sql:
    """The DB-API cursor of a SQLAlchemy connection, for the hot path: building statements
    through SQLAlchemy costs about half a millisecond each, more than SQLite takes to run them.
    Statements are written with `?` and rewritten for psycopg's `%s`."""

    def __init__(self, connection: Connection) -> None:
        self.postgresql = connection.dialect.name == "postgresql"
        driver = connection.connection.driver_connection
        assert driver is not None
        self.cursor = driver.cursor()
        self.now = stored_timestamp(connection.dialect)

    def run(self, statement: str, params: Sequence[Any] = ()) -> Any:
        if self.postgresql:
            statement = statement.replace("?", "%s")
        self.cursor.execute(statement, params)
        return self.cursor


def _check_record(record: Mapping[str, Any]) -> None:
    missing = [c for c in PSEUDONYMISED_REQUIRED if record.get(c) in (None, "")]
    if missing:
        raise UnusableInputError(f"missing required value: {', '.join(missing)}")
    if record["encoding_version"] != ENCODING_VERSION:
        raise UnusableInputError(
            f"encoded under encoding version {record['encoding_version']}; this registry holds "
            f"version {ENCODING_VERSION} only"
        )


_CURRENT_CCI = "SELECT cci FROM assignments WHERE record_pk = ? AND ended_at IS NULL"
_INSERT_VERSION = (
    "INSERT INTO record_versions (record_pk, version, key_id, encoding_version, content_hash, "
    f"ingested_at, {', '.join(_VERSION_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, "
    f"{', '.join('?' for _ in _VERSION_COLUMNS)})"
)


def _upsert(sql: _Sql, source_id: int, record: Mapping[str, Any]) -> tuple[int, str | None]:
    """Store the record (a new version if its content changed); its current CCI if it has one."""
    row = dict(record)
    row["restricted"] = bool(row.get("restricted") or False)
    digest = content_hash(row)
    now = sql.now
    found = sql.run(
        "SELECT id, current_version, content_hash, status FROM records "
        "WHERE source_system_id = ? AND record_id = ?",
        (source_id, row["record_id"]),
    ).fetchone()
    if found is None:
        record_pk = sql.run(
            "INSERT INTO records (source_system_id, record_id, current_version, content_hash, "
            "key_id, restricted, status, created_at, updated_at) "
            "VALUES (?, ?, 1, ?, ?, ?, 'active', ?, ?) RETURNING id",
            (source_id, row["record_id"], digest, row["key_id"], row["restricted"], now, now),
        ).fetchone()[0]
        version = 1
    else:
        record_pk, current_version, stored_digest, status = found
        if stored_digest == digest and status == "active":
            assigned = sql.run(_CURRENT_CCI, (record_pk,)).fetchone()
            return record_pk, assigned[0] if assigned else None
        version = current_version + 1
        sql.run(
            "UPDATE records SET current_version = ?, content_hash = ?, key_id = ?, "
            "restricted = ?, status = 'active', updated_at = ? WHERE id = ?",
            (version, digest, row["key_id"], row["restricted"], now, record_pk),
        )
    sql.run(
        _INSERT_VERSION,
        (
            record_pk,
            version,
            row["key_id"],
            row["encoding_version"],
            digest,
            now,
            *(row.get(c) for c in _VERSION_COLUMNS),
        ),
    )
    if found is None:
        return record_pk, None
    assigned = sql.run(_CURRENT_CCI, (record_pk,)).fetchone()
    return record_pk, assigned[0] if assigned else None


_COLUMNS_READ = ("record_pk", "version", *_VERSION_COLUMNS)


def _candidate(values: Sequence[Any]) -> _Candidate:
    """A candidate from a row of `_SELECT_VERSIONS`."""
    row = dict(zip(_COLUMNS_READ, values, strict=True))
    return _Candidate(row["record_pk"], row["version"], as_scorable(row))


def _candidates(sql: _Sql, record: Mapping[str, Any], after: int = 0) -> list[_Candidate]:
    statement, params = _candidate_sql(record, after)
    if not statement:
        return []
    return [_candidate(values) for values in sql.run(statement, params).fetchall()]


#: Above this many versions stored since the snapshot (an ingest or a batch committed in
#: between), the fresh candidates are looked up by index instead of read in rowid order.
FRESH_SCAN_MAX = 1000


def _fresh_candidates(sql: _Sql, record: Mapping[str, Any], seen: int) -> list[_Candidate]:
    """Candidates stored after the snapshot mark `seen` (SQLite, under the write lock): usually
    the few versions other submissions committed while this one was scored. They are read in
    rowid order, a page or two, and held against the blocking rules here; probing every rule's
    index instead cost about forty page reads, each from a page cache that the other writers'
    commits had emptied."""
    rows = sql.run(
        f"{_SELECT_VERSIONS} WHERE rowid > ? ORDER BY rowid LIMIT {FRESH_SCAN_MAX + 1}",
        (seen,),
    ).fetchall()
    if len(rows) > FRESH_SCAN_MAX:
        return _candidates(sql, record, after=seen)
    rules = _rule_terms(record)
    found = [_candidate(values) for values in rows]
    return [
        c for c in found if any(all(c.row[b] == value for b, value in terms) for terms in rules)
    ]


def current_candidates(sql: _Sql, record: Mapping[str, Any]) -> list[_Candidate]:
    """The record's candidates as a batch run would pair it: current versions of active,
    assigned records agreeing with it on a blocking rule, with their CCIs."""
    everything = [(0.0, c) for c in _candidates(sql, record)]
    return [c for _, c in _current_of(sql, everything)]


def snapshot_mark(sql: _Sql) -> int:
    """What an SQLite reader has seen: versions stored later have a larger rowid (one writer
    at a time, rows never deleted)."""
    return int(sql.run("SELECT coalesce(max(rowid), 0) FROM record_versions").fetchone()[0])


def _anchored(sql: _Sql, cci: str) -> bool:
    row = sql.run("SELECT nhs_anchored FROM identifiers WHERE cci = ?", (cci,)).fetchone()
    return bool(row and row[0])


def _nhs_conflict(sql: _Sql, cci: str, nhs: str) -> bool:
    """Does the CCI's cluster hold a different health-verified NHS number?"""
    rows = sql.run(
        "SELECT DISTINCT rv.nhs_number_enc FROM assignments a "
        "JOIN records r ON r.id = a.record_pk AND r.status = 'active' "
        "JOIN record_versions rv ON rv.record_pk = r.id AND rv.version = r.current_version "
        "JOIN source_systems s ON s.id = r.source_system_id AND s.kind = 'health' "
        "WHERE a.cci = ? AND a.ended_at IS NULL AND rv.nhs_number_enc IS NOT NULL",
        (cci,),
    ).fetchall()
    return bool({value for (value,) in rows} - {nhs})
