"""The true population: children in households, with the identifiers agencies give them.

Households matter for linkage: siblings share a family name and an address and twins also
share a date of birth, so they are the hardest non-matches a linker meets. Everything here
is the *truth*; the errors agencies make are applied later, per record (corruptions.py).
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate

from linkage.demo.identifiers import la_child_id, nhs_number, postcode, upn
from linkage.demo.names import District, Tables, Tradition, tables

#: Share of births that are twins (about 1.5% of maternities in England are multiple births).
TWIN_RATE = 0.015
#: Share of children known to children's social care at the first delivery.
SOCIAL_CARE_RATE = 0.07
#: Share of other children with a local authority id anyway (early help, SEN support).
OTHER_LA_ID_RATE = 0.08
#: Share of households that moved recently (some agencies still hold the old postcode).
RECENT_MOVE_RATE = 0.12
_CHILDREN_PER_HOUSEHOLD = ((1, 2, 3, 4, 5), (44, 38, 12, 4, 2))
_MAX_AGE_DAYS = 18 * 365 + 3


@dataclass(slots=True)
class Household:
    number: int
    tradition: Tradition
    family_name: str
    district: District
    postcode: str
    previous_postcode: str


@dataclass(slots=True)
class Child:
    """One child as they really are; `child_id` is the ground-truth key."""

    child_id: str
    household: Household
    given_name: str
    middle_names: str
    family_name: str
    date_of_birth: date
    sex: str
    nhs_number: str
    upn: str
    la_child_id: str
    in_social_care: bool
    #: Sources that record a different family name (step-parent, other parent's name) or a
    #: double-barrelled one, each with the name they hold.
    other_family_names: dict[str, str] = field(default_factory=dict)

    @property
    def postcode(self) -> str:
        return self.household.postcode

    def age_days(self, on: date) -> int:
        return (on - self.date_of_birth).days


class PopulationBuilder:
    """Makes households and children with one random stream, so the result depends only on
    the seed and the order of calls."""

    def __init__(self, rng: random.Random, extract_date: date, first_number: int = 1) -> None:
        self.rng, self.extract_date = rng, extract_date
        self.tables: Tables = tables()
        self.next_number = first_number
        self.households = 0

    def household(self) -> Household:
        rng, t = self.rng, self.tables
        tradition = t.tradition(rng)
        district = t.district(rng)
        self.households += 1
        moved = rng.random() < RECENT_MOVE_RATE
        return Household(
            number=self.households,
            tradition=tradition,
            family_name=tradition.family.pick(rng),
            district=district,
            postcode=postcode(rng, district),
            previous_postcode=postcode(rng, t.district(rng) if rng.random() < 0.3 else district)
            if moved
            else "",
        )

    def child(self, home: Household, born: date, avoid: set[str]) -> Child:
        """A child of `home` born on `born` whose given name differs from `avoid` (siblings'),
        also as a recorded variant: parents do not call twins Aisha and Ayesha."""
        rng = self.rng
        roll = rng.random()
        sex = "U" if roll < 0.001 else ("F" if roll < 0.489 else "M")
        variants = self.tables.variants
        given = self.tables.given_name(rng, home.tradition, sex)
        while given in avoid or any(
            given in variants.get(name, ()) or name in variants.get(given, ()) for name in avoid
        ):
            given = self.tables.given_name(rng, home.tradition, sex)
        avoid.add(given)
        middle = ""
        if rng.random() < 0.5:
            middle = self.tables.given_name(rng, home.tradition, sex)
            if rng.random() < 0.12:
                middle += " " + self.tables.given_name(rng, home.tradition, sex)
        in_care = rng.random() < SOCIAL_CARE_RATE
        la_number = home.district.la_number
        known_to_la = in_care or rng.random() < OTHER_LA_ID_RATE
        child = Child(
            child_id=f"C{self.next_number:08d}",
            household=home,
            given_name=given,
            middle_names=middle if middle != given else "",
            family_name=home.family_name,
            date_of_birth=born,
            sex=sex,
            nhs_number=nhs_number(rng),
            upn=upn(rng, la_number, born),
            la_child_id=la_child_id(rng, la_number) if known_to_la else "",
            in_social_care=in_care,
        )
        self.next_number += 1
        return child

    def family(self, home: Household, births: list[date]) -> list[Child]:
        """Children for the given birth dates; a birth may be twins (same date, same home)."""
        out: list[Child] = []
        names: set[str] = set()
        for born in births:
            out.append(self.child(home, born, names))
            if self.rng.random() < TWIN_RATE:
                out.append(self.child(home, born, names))
        return out

    def birth_dates(self, count: int) -> list[date]:
        """Sibling birth dates 15 months to 6 years apart, all aged 0-17 at the extract."""
        rand = self.rng.random
        latest = self.extract_date.toordinal() - 1
        earliest = latest - _MAX_AGE_DAYS
        anchor = latest - int(rand() * _MAX_AGE_DAYS)
        position = int(rand() * count)
        days = [anchor]
        born = anchor
        for _ in range(position):  # older siblings
            born -= 450 + int(rand() * 1750)
            days.append(born)
        born = anchor
        for _ in range(count - position - 1):  # younger siblings
            born += 450 + int(rand() * 1750)
            days.append(born)
        return [date.fromordinal(d) for d in sorted(days) if earliest < d <= latest]


def population(children: int, seed: int, extract_date: date) -> list[Child]:
    """`children` children aged 0-17 on `extract_date`, household by household."""
    builder = PopulationBuilder(random.Random(f"cci-demo/population/{seed}"), extract_date)
    sizes, weights = _CHILDREN_PER_HOUSEHOLD
    cumulative = list(accumulate(weights))
    out: list[Child] = []
    while len(out) < children:
        home = builder.household()
        count = sizes[bisect(cumulative, builder.rng.random() * cumulative[-1])]
        out.extend(builder.family(home, builder.birth_dates(count)))
    del out[children:]
    return out


def newborns(existing: list[Child], count: int, seed: int, since: date, until: date) -> list[Child]:
    """Babies born in (since, until]: most into existing households (a younger sibling, the
    hardest case: same surname and address), the rest into new ones. Ids follow `existing`."""
    rng = random.Random(f"cci-demo/births/{seed}")
    builder = PopulationBuilder(rng, until, first_number=len(existing) + 1)
    builder.households = max((c.household.number for c in existing), default=0)
    names: dict[int, set[str]] = {}
    for child in existing:
        names.setdefault(child.household.number, set()).add(child.given_name)
    out: list[Child] = []
    span = max(1, (until - since).days)
    while len(out) < count:
        if existing and rng.random() < 0.6:
            home = rng.choice(existing).household
            siblings = names.setdefault(home.number, set())
        else:
            home, siblings = builder.household(), set()
        born = since + timedelta(days=rng.randrange(1, span + 1))
        twins = rng.random() < TWIN_RATE
        for _ in range(2 if twins else 1):
            out.append(builder.child(home, born, siblings))
    del out[count:]
    return out
