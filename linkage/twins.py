"""The twin rule of constrained clustering: twins look alike on everything but the given name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from linkage.model.comparisons import COMPARISONS

#: A record's given-name columns read from its family-name columns, for a record whose names
#: were recorded the wrong way round (and the family name read from the given name).
SWAPPED = {
    "given_name_tok": "family_name_tok",
    "given_name_dm": "family_name_dm",
    "given_name_dm_alt": "family_name_dm_alt",
    **{f"given_name_bf{k}": f"family_name_bf{k}" for k in range(1, 5)},
    "family_name_tok": "given_name_tok",
}


class TwinRule:
    """Twins look alike on everything but the given name: two records with the same date of
    birth (the clustering's bucket) and family name, whose given names disagree at every level
    and which share no identifier, are kept apart unless a decision joins them. A record with
    its names swapped is read the right way round first: otherwise a twin's swapped record,
    whose "given name" is the family name, looks like a name swap of the other twin's.

    Cheap tests first, and each record's given-name row is built once: clustering asks about
    the same records many times."""

    GIVEN = next(c for c in COMPARISONS if c.name == "given_name")
    IDENTIFIERS = ("nhs_number_enc", "upn_tok", "la_child_id_tok")

    def __init__(self, records: pa.Table) -> None:
        self.position = {uid: i for i, uid in enumerate(records["unique_id"].to_pylist())}
        self.family_tok = records["family_name_tok"].to_pylist()
        self.family_dm = records["family_name_dm"].to_pylist()
        self.identifiers = [records[c].to_pylist() for c in self.IDENTIFIERS]
        self.given_columns = self.GIVEN.columns  # a property that parses the level SQL
        columns = set(self.given_columns) | set(SWAPPED.values())
        self.values = {c: records[c].to_pylist() for c in sorted(columns)}
        self.given_tok = self.values["given_name_tok"]
        self.rows: dict[tuple[int, bool], dict[str, Any]] = {}

    @classmethod
    def of_rows(cls, rows: Mapping[int, Mapping[str, Any]]) -> TwinRule:
        """The rule over a few records given as rows (a decision's re-clustering)."""
        columns = {"family_name_tok", "family_name_dm", *cls.IDENTIFIERS, *SWAPPED.values()}
        columns |= set(cls.GIVEN.columns)
        table = [{"unique_id": pk} | {c: row.get(c) for c in columns} for pk, row in rows.items()]
        return cls(pa.Table.from_pylist(table))

    def _row(self, i: int, swapped: bool = False) -> dict[str, Any]:
        row = self.rows.get((i, swapped))
        if row is None:
            row = {c: self.values[c][i] for c in self.given_columns}
            canon = row.get("given_name_canon")
            if isinstance(canon, str):
                row["given_name_canon"] = [int(t) for t in canon.split()]
            if swapped:  # no canonical forms exist for a family name
                row.update({c: self.values[f][i] for c, f in SWAPPED.items()})
                row["given_name_canon"] = None
            self.rows[(i, swapped)] = row
        return row

    def _same_family(self, i: int, j: int) -> bool:
        family_dm = self.family_dm[i]
        return self.family_tok[i] == self.family_tok[j] or (
            family_dm is not None and family_dm == self.family_dm[j]
        )

    def __call__(self, a: int, b: int) -> bool:
        i, j = self.position[a], self.position[b]
        swapped_i = swapped_j = False
        if not self._same_family(i, j):
            # One record's given name is the other's family name: a swap, read it back.
            family_i, family_j = self.family_tok[i], self.family_tok[j]
            if family_j is not None and self.given_tok[i] == family_j:
                swapped_i = True
            elif family_i is not None and self.given_tok[j] == family_i:
                swapped_j = True
            else:
                return False
        if any(v[i] is not None and v[i] == v[j] for v in self.identifiers):
            return False
        read = {
            False: ("given_name_tok", "given_name_dm"),
            True: ("family_name_tok", "family_name_dm"),
        }
        given_i, sound_i = (self.values[c][i] for c in read[swapped_i])
        given_j, sound_j = (self.values[c][j] for c in read[swapped_j])
        if given_i is None or given_j is None or given_i == given_j:
            return False  # the null or the exact level: never the ELSE level (0)
        if sound_i is not None and sound_i == sound_j:
            return False  # the same Double Metaphone: a level above ELSE
        return self.GIVEN.level_of(self._row(i, swapped_i), self._row(j, swapped_j)) == 0
