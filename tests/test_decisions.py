"""Data officers' decisions re-cluster at once: merges, splits, undoing a merge, unsure.

A registry of a few hand-made children, linked with the shipped default model:
- Amelia: a health record and a social-care record with the same NHS number (one CCI);
- Oliver and Noah: two unrelated children (two CCIs), each a health record with its own NHS
  number, so merging them overrides the NHS-number rule only because an officer said so;
- Isla: an education record alone.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select

from linkage.decisions import (
    DecisionError,
    PairScorer,
    decide_pair,
    merge_identifiers,
    split_record,
)
from linkage.link import link_registry
from linkage.match import Matcher
from linkage.pseudonymise import LinkageKey, pseudonymise_file
from linkage.store import ingest_files, make_engine, write_transaction
from linkage.store.models import (
    Assignment,
    AuditEntry,
    Decision,
    Event,
    Identifier,
    Record,
    ReviewItem,
    SourceSystem,
)

KEY = LinkageKey(secret=bytes(range(32)))
COLUMNS = [
    "source_system",
    "record_id",
    "nhs_number",
    "upn",
    "la_child_id",
    "given_name",
    "middle_names",
    "family_name",
    "date_of_birth",
    "sex",
    "postcode",
    "restricted",
]
CHILDREN = [
    ("health", "H-AMELIA", "9434765919", "Amelia", "Hughes", "2016-04-09", "F", "LS6 1AB"),
    ("social_care", "S-AMELIA", "9434765919", "Amelia", "Hughes", "2016-04-09", "F", "LS6 1AB"),
    ("health", "H-OLIVER", "9434765870", "Oliver", "Khan", "2015-01-20", "M", "M14 5TP"),
    ("health", "H-NOAH", "4010232137", "Noah", "Smith", "2017-11-02", "M", "B15 2TT"),
    ("education", "E-ISLA", "", "Isla", "Brown", "2014-06-30", "F", "NE1 4XF"),
]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Engine]:
    raw = tmp_path / "raw.csv"
    with raw.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for source, record_id, nhs, given, family, dob, sex, postcode in CHILDREN:
            writer.writerow(
                {
                    "source_system": source,
                    "record_id": record_id,
                    "nhs_number": nhs,
                    "upn": "",
                    "la_child_id": "",
                    "given_name": given,
                    "middle_names": "",
                    "family_name": family,
                    "date_of_birth": dob,
                    "sex": sex,
                    "postcode": postcode,
                    "restricted": "",
                }
            )
    pseudonymise_file(KEY, raw, tmp_path / "pseudo.csv")
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    ingest_files(engine, [tmp_path / "pseudo.csv"])
    link_registry(engine)
    yield engine
    engine.dispose()


def _pk(connection: Connection, record_id: str) -> int:
    return int(connection.execute(select(Record.id).where(Record.record_id == record_id)).scalar())


def _cci(connection: Connection, record_id: str) -> str:
    return str(
        connection.execute(
            select(Assignment.cci).where(
                Assignment.record_pk == _pk(connection, record_id), Assignment.ended_at.is_(None)
            )
        ).scalar()
    )


def _identifier(connection: Connection, cci: str) -> Any:
    return connection.execute(select(Identifier).where(Identifier.cci == cci)).one()


def _scorer(engine: Engine) -> PairScorer:
    with engine.connect() as connection:
        return PairScorer.active(Matcher(engine), connection)


def test_the_hand_made_registry_starts_as_expected(registry: Engine) -> None:
    with registry.connect() as c:
        assert _cci(c, "H-AMELIA") == _cci(c, "S-AMELIA")
        assert len({_cci(c, r) for r in ("H-AMELIA", "H-OLIVER", "H-NOAH", "E-ISLA")}) == 4


def test_same_child_merges_two_ccis_and_different_children_undoes_it(registry: Engine) -> None:
    scorer = _scorer(registry)
    with write_transaction(registry) as c:
        oliver, noah = _pk(c, "H-OLIVER"), _pk(c, "H-NOAH")
        before = {_cci(c, "H-OLIVER"), _cci(c, "H-NOAH")}
        outcome = decide_pair(
            c,
            record_l=oliver,
            record_r=noah,
            verdict="same",
            reason="checked in the GP system",
            actor="officer:1",
            scorer=scorer,
        )
    with registry.connect() as c:
        survivor = _cci(c, "H-OLIVER")
        assert _cci(c, "H-NOAH") == survivor and survivor in before
        (gone,) = before - {survivor}
        merged = _identifier(c, gone)
        assert (merged.status, merged.successor_cci) == ("superseded", survivor)
        assert _identifier(c, survivor).nhs_anchored
        types = {(e.type, e.cci, e.related_cci) for e in c.execute(select(Event))}
        assert ("superseded", gone, survivor) in types
        assert outcome.clusters == {survivor: sorted([oliver, noah])}
        decisions = c.execute(select(Decision)).all()
        assert [(d.verdict, d.decided_by) for d in decisions] == [("same", "officer:1")]
        actions = [a.action for a in c.execute(select(AuditEntry))]
        assert "decide_pair" in actions

    with write_transaction(registry) as c:
        decide_pair(
            c,
            record_l=noah,
            record_r=oliver,
            verdict="different",
            reason="different mothers",
            actor="officer:2",
            scorer=scorer,
        )
    with registry.connect() as c:
        assert {_cci(c, "H-OLIVER"), _cci(c, "H-NOAH")} == before  # the merged CCI is back
        assert _identifier(c, gone).status == "active"
        assert _identifier(c, gone).successor_cci is None
        types = [e.type for e in c.execute(select(Event).order_by(Event.cursor))]
        assert types[-2:] == ["reinstated", "reassigned"]


def test_split_off_a_record_gives_it_a_new_cci_and_keeps_the_old_one(registry: Engine) -> None:
    scorer = _scorer(registry)
    with write_transaction(registry) as c:
        cci = _cci(c, "H-AMELIA")
        social = _pk(c, "S-AMELIA")
        outcome = split_record(
            c, cci=cci, record_pk=social, reason="adopted: not her", actor="o", scorer=scorer
        )
    with registry.connect() as c:
        assert _cci(c, "H-AMELIA") == cci
        split_off = _cci(c, "S-AMELIA")
        assert split_off != cci and set(outcome.clusters) == {cci, split_off}
        events = {(e.type, e.cci, e.related_cci) for e in c.execute(select(Event))}
        assert ("split", split_off, cci) in events
        assert not _identifier(c, split_off).nhs_anchored  # the social-care record is not health
        (decision,) = c.execute(select(Decision)).all()
        assert decision.verdict == "different"
    # The split holds in the next batch run: the decision is a constraint for every run.
    link_registry(registry)
    with registry.connect() as c:
        assert _cci(c, "S-AMELIA") == split_off and _cci(c, "H-AMELIA") == cci


def test_merge_two_ccis_is_a_decision_and_survives_a_batch_run(registry: Engine) -> None:
    scorer = _scorer(registry)
    with write_transaction(registry) as c:
        amelia, isla = _cci(c, "H-AMELIA"), _cci(c, "E-ISLA")
        outcome = merge_identifiers(
            c, cci=amelia, other_cci=isla, reason="same child", actor="o", scorer=scorer
        )
    with registry.connect() as c:
        assert {_cci(c, r) for r in ("H-AMELIA", "S-AMELIA", "E-ISLA")} == {amelia}
        assert _identifier(c, isla).successor_cci == amelia  # NHS-anchored CCI wins the tie
        assert list(outcome.clusters) == [amelia]
        (decision,) = c.execute(select(Decision)).all()
        assert decision.verdict == "same"
    link_registry(registry)
    with registry.connect() as c:
        assert _cci(c, "E-ISLA") == amelia


def test_unsure_records_the_decision_changes_nothing_and_keeps_the_item_open(
    registry: Engine,
) -> None:
    scorer = _scorer(registry)
    with write_transaction(registry) as c:
        oliver, isla = _pk(c, "H-OLIVER"), _pk(c, "E-ISLA")
        health = c.execute(select(SourceSystem.id).where(SourceSystem.code == "health")).scalar()
        assert health is not None
        item = c.execute(
            ReviewItem.__table__.insert()
            .values(
                record_pk_l=oliver,
                record_pk_r=isla,
                match_weight=5.0,
                match_probability=0.97,
                reason="review_band",
                status="open",
            )
            .returning(ReviewItem.id)
        ).scalar_one()
        before = {_cci(c, "H-OLIVER"), _cci(c, "E-ISLA")}
        outcome = decide_pair(
            c,
            record_l=oliver,
            record_r=isla,
            verdict="unsure",
            reason=None,
            actor="o",
            scorer=scorer,
            review_item=item,
        )
        assert outcome.events == []
    with registry.connect() as c:
        assert {_cci(c, "H-OLIVER"), _cci(c, "E-ISLA")} == before
        status = c.execute(select(ReviewItem.status).where(ReviewItem.id == item)).scalar()
        assert status == "open"
    with write_transaction(registry) as c:
        decide_pair(
            c,
            record_l=oliver,
            record_r=isla,
            verdict="different",
            reason=None,
            actor="o",
            scorer=scorer,
            review_item=item,
        )
    with registry.connect() as c:
        status = c.execute(select(ReviewItem.status).where(ReviewItem.id == item)).scalar()
        assert status == "decided"


def test_refused_decisions(registry: Engine) -> None:
    scorer = _scorer(registry)
    with write_transaction(registry) as c:
        oliver = _pk(c, "H-OLIVER")
        cci = _cci(c, "H-OLIVER")
        with pytest.raises(DecisionError):
            decide_pair(
                c,
                record_l=oliver,
                record_r=oliver,
                verdict="same",
                reason=None,
                actor="o",
                scorer=scorer,
            )
        with pytest.raises(DecisionError):
            decide_pair(
                c,
                record_l=oliver,
                record_r=_pk(c, "H-NOAH"),
                verdict="maybe",
                reason=None,
                actor="o",
                scorer=scorer,
            )
        with pytest.raises(DecisionError, match="nothing to split"):
            split_record(c, cci=cci, record_pk=oliver, reason=None, actor="o", scorer=scorer)
        with pytest.raises(DecisionError):
            merge_identifiers(c, cci=cci, other_cci=cci, reason=None, actor="o", scorer=scorer)
