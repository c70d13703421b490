"""One agency's record of one child: which sources hold a child, which identifiers each
source carries, and the errors (corruptions.py) made while recording it."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date
from typing import NamedTuple

from linkage.contract import RAW_COLUMNS
from linkage.demo import corruptions as c
from linkage.demo.corruptions import ErrorRates
from linkage.demo.identifiers import RecordIds, bad_check_digit, nhs_number
from linkage.demo.names import tables
from linkage.demo.population import Child

SOURCES: tuple[str, ...] = ("health", "education", "social_care")
_PREFIX = {"health": "H", "education": "E", "social_care": "S"}
#: Column order of RawRecord.values; checked against the contract so a change there fails
#: loudly here instead of shifting values into the wrong columns.
_ORDER = (
    *("source_system", "record_id", "given_name", "family_name", "date_of_birth"),
    *("nhs_number", "upn", "la_child_id", "middle_names", "sex", "postcode", "restricted"),
)
if tuple(RAW_COLUMNS) != _ORDER:  # pragma: no cover - guards a contract change
    raise ImportError("linkage.demo.records must be updated for the new RAW_COLUMNS")

#: Share of children registered with a GP / child health system.
HEALTH_COVERAGE = 0.985
#: Share of school-age children with a state-school census record (the rest: independent
#: schools, home education).
EDUCATION_COVERAGE = 0.94
SCHOOL_AGE_DAYS = 4 * 365 + 1
#: Chance that a source holding a child's middle names records them.
_MIDDLE_KEPT = {"health": 0.9, "education": 0.7, "social_care": 0.6}


class RawRecord(NamedTuple):
    """A raw record in contract column order, with its true child, the errors made while
    recording it and (second delivery) what changed since the first."""

    child_id: str
    values: tuple[str, ...]
    errors: tuple[str, ...]
    changes: tuple[str, ...] = ()

    @property
    def source_system(self) -> str:
        return self.values[0]

    @property
    def record_id(self) -> str:
        return self.values[1]

    def as_dict(self) -> dict[str, str]:
        return dict(zip(RAW_COLUMNS, self.values, strict=True))


class Recorder:
    """Turns true children into agency records, drawing every error from one stream."""

    def __init__(self, rng: random.Random, rates: ErrorRates, digits: int) -> None:
        self.rng, self.rates = rng, rates
        self.tables = tables()
        ids_rng = random.Random(rng.random())
        self.ids = {s: RecordIds(_PREFIX[s], digits, ids_rng) for s in SOURCES}

    def sources_of(self, child: Child, on: date) -> list[str]:
        rng = self.rng
        held = []
        if rng.random() < HEALTH_COVERAGE:
            held.append("health")
        if child.age_days(on) >= SCHOOL_AGE_DAYS and rng.random() < EDUCATION_COVERAGE:
            held.append("education")
        if child.in_social_care:
            held.append("social_care")
        return held

    def child_records(self, child: Child, on: date) -> Iterator[RawRecord]:
        """Every record the sources hold about `child` on `on`, duplicates included."""
        rng, rates = self.rng, self.rates
        sources = self.sources_of(child, on)
        if len(sources) > 1:
            roll = rng.random()
            if roll < rates.surname_changed:
                other = child.household.tradition.family.pick(rng)
                if other != child.family_name:
                    child.other_family_names[rng.choice(sources)] = other
            elif roll < rates.surname_changed + rates.surname_hyphenated:
                other = self.tables.all_family.pick(rng)
                if other != child.family_name and "-" not in other:
                    pair = (
                        (child.family_name, other)
                        if rng.random() < 0.5
                        else (other, child.family_name)
                    )
                    child.other_family_names[rng.choice(sources)] = "-".join(pair)
        for source in sources:
            yield self.record(child, source, on)
            if rng.random() < rates.duplicate_in_source:
                yield self.record(child, source, on, duplicate=True)

    def record(
        self,
        child: Child,
        source: str,
        on: date,
        *,
        duplicate: bool = False,
    ) -> RawRecord:
        """`source`'s record of `child` as extracted on `on`."""
        rng, r = self.rng, self.rates
        rand = rng.random
        errors: list[str] = [c.DUPLICATE] if duplicate else []
        given, middle = child.given_name, child.middle_names
        family = child.other_family_names.get(source, child.family_name)
        if family != child.family_name:
            errors.append(
                c.SURNAME_HYPHENATED if child.family_name in family else c.SURNAME_CHANGED
            )
        variants = self.tables.variants.get(given)
        if variants and rand() < r.nickname_or_variant:
            given = rng.choice(variants)
            errors.append(c.NICKNAME)
        if rand() < r.given_name_typo:
            given = c.typo(rng, given)
            errors.append(c.GIVEN_TYPO)
        if rand() < r.family_name_typo:
            family = c.typo(rng, family)
            errors.append(c.FAMILY_TYPO)
        if middle and rand() >= _MIDDLE_KEPT[source]:
            middle = ""
            errors.append(c.MIDDLE_MISSING)
        if not (given + family + middle).isascii() and rand() < r.accents_dropped:
            given, family, middle = (c.drop_accents(n) for n in (given, family, middle))
            errors.append(c.ACCENTS_DROPPED)
        if rand() < r.names_swapped:
            given, family = family, given
            errors.append(c.NAMES_SWAPPED)
        if rand() < r.case_noise:
            given, middle, family = c.case_noise(rng, [given, middle, family])
            errors.append(c.CASE_NOISE)
        if rand() < r.spacing_punctuation_noise:
            if rand() < 0.5:
                family = c.punctuation_noise(rng, family)
            else:
                given = c.punctuation_noise(rng, given)
            errors.append(c.PUNCTUATION_NOISE)

        born = child.date_of_birth
        if rand() < r.dob_day_month_swapped:
            swapped = c.swap_day_month(born)
            if swapped is not None and swapped < on:
                born = swapped
                errors.append(c.DOB_SWAPPED)
        elif rand() < r.dob_component_wrong:
            wrong = c.wrong_component(rng, born)
            if wrong < on:
                born = wrong
                errors.append(c.DOB_COMPONENT)

        home = child.household.postcode
        previous = child.household.previous_postcode
        if previous and rand() < r.stale_postcode:
            home = previous
            errors.append(c.STALE_POSTCODE)
        if rand() < r.postcode_missing:
            home = ""
            errors.append(c.POSTCODE_MISSING)
        elif rand() < r.postcode_format_noise:
            home = c.postcode_format(rng, home)
            errors.append(c.POSTCODE_FORMAT)
        sex = child.sex
        if rand() < r.sex_missing:
            sex = ""
            errors.append(c.SEX_MISSING)

        nhs, upn, la_id = self._identifiers(child, source, on, errors)
        restricted = ""
        if rand() < r.restricted:
            restricted = "true"
            errors.append(c.RESTRICTED)
        dob = born.isoformat()
        if rand() < r.invalid_row:
            row = {"given_name": given, "family_name": family, "date_of_birth": dob}
            c.invalid(rng, row)
            given, family, dob = row["given_name"], row["family_name"], row["date_of_birth"]
            errors.append(c.INVALID_ROW)
        ymd = born.isoformat().replace("-", "")
        record_id = self.ids[source].next(
            avoid=(nhs, upn[1:], la_id.rpartition("-")[2], ymd, ymd[6:] + ymd[4:6] + ymd[:4])
        )
        values = (
            source,
            record_id,
            given,
            family,
            dob,
            nhs,
            upn,
            la_id,
            middle,
            sex,
            home,
            restricted,
        )
        return RawRecord(child.child_id, values, tuple(errors))

    def _identifiers(
        self, child: Child, source: str, on: date, errors: list[str]
    ) -> tuple[str, str, str]:
        """(NHS number, UPN, LA child id) as this source holds them."""
        rng, r = self.rng, self.rates
        if source == "health":
            nhs, upn, la_id = child.nhs_number, "", ""
            if rng.random() < r.nhs_number_missing:
                nhs = ""
                errors.append(c.NHS_MISSING)
        elif source == "education":
            nhs = child.nhs_number if rng.random() < 0.2 else ""
            upn = child.upn
            la_id = child.la_child_id if rng.random() < 0.4 else ""
        else:
            nhs = child.nhs_number if rng.random() < 0.65 else ""
            school_age = child.age_days(on) >= SCHOOL_AGE_DAYS
            upn = child.upn if school_age and rng.random() < 0.4 else ""
            la_id = child.la_child_id
        if nhs:
            roll = rng.random()
            if roll < r.nhs_number_wrong_valid:
                nhs = nhs_number(rng)
                errors.append(c.NHS_WRONG_VALID)
            elif roll < r.nhs_number_wrong_valid + r.nhs_number_bad_check_digit:
                nhs = bad_check_digit(nhs)
                errors.append(c.NHS_BAD_CHECK)
        return nhs, upn, la_id
