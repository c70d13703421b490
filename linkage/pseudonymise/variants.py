"""Canonical forms of given names: short names, nicknames and transliteration variants.

A name maps to a *set* of canonical forms (Will -> {WILL, WILLIAM, WILBUR, ...}); two names
agree on this level when their sets intersect. The `nicknames` package supplies the English
list; `name_variants.csv` extends it with names common in England that it lacks.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

from nicknames import NickNamer


@cache
def _extension() -> dict[str, frozenset[str]]:
    groups: dict[str, set[str]] = {}
    text = resources.files(__package__).joinpath("name_variants.csv").read_text("utf-8")
    rows = (line for line in text.splitlines() if line and not line.startswith("#"))
    for row in csv.DictReader(rows):
        canonical = row["canonical"].strip().upper()
        groups.setdefault(canonical, set()).add(canonical)
        for variant in row["variants"].split("|"):
            if variant.strip():
                groups.setdefault(variant.strip().upper(), set()).add(canonical)
    return {name: frozenset(canonicals) for name, canonicals in groups.items()}


@cache
def _nicknamer() -> NickNamer:
    return NickNamer()


def canonical_forms(name: str) -> frozenset[str]:
    """The canonical forms of one normalised name word (always including the word itself)."""
    forms = {name}
    forms.update(_extension().get(name, ()))
    forms.update(c.upper() for c in _nicknamer().canonicals_of(name.lower()))
    return frozenset(forms)
