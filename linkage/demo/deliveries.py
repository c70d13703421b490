"""Deliveries: what the agencies send at the first extract and at the second one.

The first delivery is extracted DELIVERY_GAP_DAYS before `today`, the second on `today`, so
every date of birth is in the past on the day the data is generated. The second delivery
re-sends every first-delivery record (most unchanged; some updated: house moves, corrected
names, NHS numbers traced onto records), adds records of existing children (starting school,
entering social care) and records of children born in between. Child ids are stable.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from linkage.demo import corruptions as c
from linkage.demo.corruptions import ErrorRates
from linkage.demo.identifiers import la_child_id, postcode
from linkage.demo.names import tables
from linkage.demo.population import Child, Household, newborns, population
from linkage.demo.records import (
    EDUCATION_COVERAGE,
    HEALTH_COVERAGE,
    SCHOOL_AGE_DAYS,
    RawRecord,
    Recorder,
)

DEFAULT_TODAY = date(2026, 11, 22)
DELIVERY_GAP_DAYS = 91
_AGE_SPAN_DAYS = 18 * 365.25

#: Change kinds, as reported in RawRecord.changes of second-delivery records.
MOVED = "postcode_updated_after_move"
NAME_CORRECTED = "name_corrected"
NHS_TRACED = "nhs_number_traced"
STARTED_SCHOOL = "started_school"
ENTERED_SOCIAL_CARE = "entered_social_care"
BORN = "born"


@dataclass(frozen=True)
class ChangeRates:
    """How much changes between the two deliveries (school starters and births follow from
    the dates: children who turn four, and a year's births scaled to the gap)."""

    household_moved: float = 0.03  # of households
    move_recorded: float = 0.6  # of a moved child's records, re-sent with the new postcode
    name_corrected: float = 0.5  # of records with a name typo, re-sent corrected
    nhs_number_traced: float = 0.1  # of education / social care records without one
    entered_social_care: float = 0.006  # of children not known to social care


def first_extract_date(today: date) -> date:
    return today - timedelta(days=DELIVERY_GAP_DAYS)


def _id_digits(children: int) -> int:
    """Digits of record ids: room for every record, and never shorter than agencies' 7."""
    return max(7, len(str(children * 4)))


def iter_records(
    children: int,
    *,
    seed: int = 7,
    delivery: int = 1,
    rates: ErrorRates | None = None,
    changes: ChangeRates | None = None,
    today: date = DEFAULT_TODAY,
) -> Iterator[RawRecord]:
    """Every raw record of the delivery with its true child id, in generation order
    (households together: shuffle before writing). Same arguments, same records."""
    if delivery not in (1, 2):
        raise ValueError("delivery must be 1 or 2")
    if children < 1:
        raise ValueError("children must be at least 1")
    first = first_extract_date(today)
    people = population(children, seed, first)
    recorder = Recorder(
        random.Random(f"cci-demo/records/{seed}"), rates or ErrorRates(), _id_digits(children)
    )
    if delivery == 1:
        for child in people:
            yield from recorder.child_records(child, first)
        return
    yield from _second_delivery(people, recorder, seed, changes or ChangeRates(), today)


def _second_delivery(
    people: list[Child], recorder: Recorder, seed: int, changes: ChangeRates, today: date
) -> Iterator[RawRecord]:
    rng = random.Random(f"cci-demo/delivery2/{seed}")
    first = first_extract_date(today)
    moves = _moves(people, rng, changes)
    # 1. Every first-delivery record, re-sent (a few with changes).
    for child in people:
        new_home = moves.get(child.household.number)
        for record in recorder.child_records(child, first):
            yield _update(record, child, new_home, rng, changes)
    # 2. The moves have happened: new records carry the new address (or the stale one).
    homes = {c.household.number: c.household for c in people}
    for number, new_home in moves.items():
        home: Household = homes[number]
        home.previous_postcode, home.postcode = home.postcode, new_home
    # 3. New records of existing children.
    for child in people:
        if not child.in_social_care and rng.random() < changes.entered_social_care:
            child.in_social_care = True
            if not child.la_child_id:
                child.la_child_id = la_child_id(rng, child.household.district.la_number)
            yield _tagged(recorder.record(child, "social_care", today), ENTERED_SOCIAL_CARE)
        starts_school = child.age_days(first) < SCHOOL_AGE_DAYS <= child.age_days(today)
        if starts_school and rng.random() < EDUCATION_COVERAGE:
            yield _tagged(recorder.record(child, "education", today), STARTED_SCHOOL)
    # 4. Children born since the first extract.
    births = max(1, round(len(people) * DELIVERY_GAP_DAYS / _AGE_SPAN_DAYS))
    for baby in newborns(people, births, seed, first, today - timedelta(days=1)):
        if rng.random() < HEALTH_COVERAGE:
            yield _tagged(recorder.record(baby, "health", today), BORN)


def _moves(people: list[Child], rng: random.Random, changes: ChangeRates) -> dict[int, str]:
    """Households that move between the deliveries, with their new postcode (mostly nearby)."""
    moves: dict[int, str] = {}
    seen: set[int] = set()
    for child in people:
        home = child.household
        if home.number in seen:
            continue
        seen.add(home.number)
        if rng.random() < changes.household_moved:
            district = home.district if rng.random() < 0.6 else tables().district(rng)
            moves[home.number] = postcode(rng, district)
    return moves


def _tagged(record: RawRecord, change: str) -> RawRecord:
    return record._replace(changes=(change,))


def _update(
    record: RawRecord,
    child: Child,
    new_home: str | None,
    rng: random.Random,
    changes: ChangeRates,
) -> RawRecord:
    """The first-delivery record as re-sent: usually unchanged."""
    if c.INVALID_ROW in record.errors:
        return record
    values = list(record.values)
    errors = list(record.errors)
    if new_home is not None and rng.random() < changes.move_recorded:
        values[10] = new_home
        errors = [e for e in errors if e not in _POSTCODE_ERRORS]
        change = MOVED
    elif (c.GIVEN_TYPO in errors or c.FAMILY_TYPO in errors) and rng.random() < (
        changes.name_corrected
    ):
        values[2], values[3] = child.given_name, child.family_name
        errors = [e for e in errors if e not in _NAME_ERRORS]
        change = NAME_CORRECTED
    elif record.source_system != "health" and not values[5]:
        if rng.random() >= changes.nhs_number_traced:
            return record
        values[5] = child.nhs_number
        change = NHS_TRACED
    else:
        return record
    return RawRecord(record.child_id, tuple(values), tuple(errors), (change,))


_POSTCODE_ERRORS = frozenset((c.STALE_POSTCODE, c.POSTCODE_MISSING, c.POSTCODE_FORMAT))
_NAME_ERRORS = frozenset(
    (c.GIVEN_TYPO, c.FAMILY_TYPO, c.NICKNAME, c.NAMES_SWAPPED, c.SURNAME_CHANGED,
     c.SURNAME_HYPHENATED, c.CASE_NOISE, c.PUNCTUATION_NOISE, c.ACCENTS_DROPPED)
)  # fmt: skip
