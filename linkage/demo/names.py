"""Name, postcode-district and naming-tradition tables shipped in `linkage/demo/data/`.

The tables are rough relative frequencies written from general knowledge of children in
England (not official statistics). Names are drawn per household *tradition* so that a
child's given and family names go together the way they do in real data (a Khan household is
far likelier to have a Muhammad than a Smith household), which matters for term frequencies
and for hard negatives between unrelated children with common names.
"""

from __future__ import annotations

import csv
import random
from bisect import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import accumulate

#: The fallback tradition: families of every background also choose these names.
ENGLISH = "english"


@dataclass(frozen=True)
class Weighted:
    """Values with precomputed cumulative weights, so a draw is one bisect, not a sum."""

    values: tuple[str, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, float]]) -> Weighted:
        merged: dict[str, float] = {}
        for value, weight in pairs:
            merged[value] = merged.get(value, 0.0) + weight
        return cls(tuple(merged), tuple(accumulate(merged.values())))

    def pick(self, rng: random.Random) -> str:
        return self.values[bisect(self.cumulative, rng.random() * self.cumulative[-1])]


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files(__package__).joinpath("data", name).read_text("utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(lines))


@dataclass(frozen=True)
class Tradition:
    """One naming tradition: its share of households and its own name lists."""

    name: str
    households: float
    own_given_share: float
    girls: Weighted
    boys: Weighted
    family: Weighted


@dataclass(frozen=True)
class District:
    district: str
    la_number: int


@dataclass(frozen=True)
class Tables:
    traditions: tuple[Tradition, ...]
    tradition_weights: tuple[float, ...]
    districts: tuple[District, ...]
    district_weights: tuple[float, ...]
    #: Every family name with its overall weight (for surname changes to an unrelated name).
    all_family: Weighted
    #: Recorded alternatives of a given name (short forms, transliterations, no accents).
    variants: dict[str, tuple[str, ...]]

    def tradition(self, rng: random.Random) -> Tradition:
        weights = self.tradition_weights
        return self.traditions[bisect(weights, rng.random() * weights[-1])]

    def district(self, rng: random.Random) -> District:
        weights = self.district_weights
        return self.districts[bisect(weights, rng.random() * weights[-1])]

    def given_name(self, rng: random.Random, tradition: Tradition, sex: str) -> str:
        """A given name for a child of this tradition and sex (U draws from either list)."""
        if sex == "U":
            sex = "F" if rng.random() < 0.5 else "M"
        if tradition.name != ENGLISH and rng.random() >= tradition.own_given_share:
            tradition = self.traditions[0]
        return (tradition.girls if sex == "F" else tradition.boys).pick(rng)


def _weighted(rows: Sequence[dict[str, str]], **match: str) -> Weighted:
    return Weighted.of(
        (r["name"], float(r["weight"]))
        for r in rows
        if all(r[key] == value for key, value in match.items())
    )


@cache
def tables() -> Tables:
    """Load the shipped tables once per process."""
    given, family = _rows("given_names.csv"), _rows("family_names.csv")
    traditions = [
        Tradition(
            name=o["origin"],
            households=float(o["households"]),
            own_given_share=float(o["own_given_share"]),
            girls=_weighted(given, origin=o["origin"], sex="F"),
            boys=_weighted(given, origin=o["origin"], sex="M"),
            family=_weighted(family, origin=o["origin"]),
        )
        for o in _rows("origins.csv")
    ]
    if traditions[0].name != ENGLISH:
        raise ValueError("origins.csv must list the english tradition first")
    districts = _rows("postcode_districts.csv")
    variants = {
        r["name"]: tuple(v for v in r["variants"].split("|") if v)
        for r in _rows("name_variants.csv")
    }
    return Tables(
        traditions=tuple(traditions),
        tradition_weights=tuple(accumulate(t.households for t in traditions)),
        districts=tuple(District(d["district"], int(d["la_number"])) for d in districts),
        district_weights=tuple(accumulate(float(d["weight"]) for d in districts)),
        all_family=_weighted(family),
        variants=variants,
    )
