"""The twin rule of constrained clustering: twins look alike on everything but the given name."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.identity.clustering import KeyPositions
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
        self.records = records
        self.uids = KeyPositions(records["unique_id"].to_numpy())
        self.given_columns = self.GIVEN.columns  # a property that parses the level SQL
        self.columns = sorted(
            set(self.given_columns) | set(SWAPPED.values()) | {"family_name_dm", *self.IDENTIFIERS}
        )
        #: The full test's columns of the records it was asked about, by position: converting
        #: every column of a million records to Python cost seconds, and clustering asks the
        #: full test about a few percent of them.
        self.values: dict[int, dict[str, Any]] = {}
        self.rows: dict[tuple[int, bool], dict[str, Any]] = {}
        #: Positions of the records prefetched (a look-up in the sorted ids costs more).
        self.position: dict[int, int] = {}

    @classmethod
    def of_rows(cls, rows: Mapping[int, Mapping[str, Any]]) -> TwinRule:
        """The rule over a few records given as rows (a decision's re-clustering)."""
        columns = {"family_name_tok", "family_name_dm", *cls.IDENTIFIERS, *SWAPPED.values()}
        columns |= set(cls.GIVEN.columns)
        table = [{"unique_id": pk} | {c: row.get(c) for c in columns} for pk, row in rows.items()]
        return cls(pa.Table.from_pylist(table))

    def which(self, pairs: Sequence[tuple[int, int]] | np.ndarray) -> list[bool]:
        """The rule for many pairs at once (an (n, 2) array of unique ids will do): the usual
        answer, the same given and family name, is found in Arrow for all pairs together,
        and the records the full test needs are read together, not one by one."""
        ends = self.uids.positions(np.asarray(pairs, np.int64).reshape(-1, 2))
        if not len(ends):
            return []
        names = self._columns
        same = pc.and_(
            _equal(names["given_name_tok"], ends[:, 0], ends[:, 1]),
            _equal(names["family_name_tok"], ends[:, 0], ends[:, 1]),
        ).to_numpy(zero_copy_only=False)
        asked = np.flatnonzero(~same)
        self._read(np.unique(ends[asked]).tolist())
        verdicts = [False] * len(ends)
        for index, i, j in zip(
            asked.tolist(), ends[asked, 0].tolist(), ends[asked, 1].tolist(), strict=True
        ):
            verdicts[index] = self._twins(i, j)
        return verdicts

    def prefetch(self, uids: np.ndarray) -> None:
        """Read these records' columns in one go: the greedy union asks about them one pair
        at a time, and a row read alone costs as much as a hundred read together."""
        uids = np.asarray(uids, np.int64)
        positions = self.uids.positions(uids).tolist()
        self.position.update(zip(uids.tolist(), positions, strict=True))
        self._read(positions)

    def _read(self, positions: Collection[int]) -> None:
        missing = sorted(i for i in positions if i not in self.values)
        if missing:
            rows = self._columns.take(pa.array(missing, pa.int64()))
            self.values.update(zip(missing, rows.to_pylist(), strict=True))

    @cached_property
    def _columns(self) -> pa.Table:
        """The full test's columns in one chunk each: taking from a many-chunked column
        concatenates its chunks first, on every call."""
        return self.records.select(self.columns).combine_chunks()

    def _values(self, i: int) -> dict[str, Any]:
        found = self.values.get(i)
        if found is None:
            self._read([i])
            found = self.values[i]
        return found

    def _row(self, i: int, swapped: bool = False) -> dict[str, Any]:
        row = self.rows.get((i, swapped))
        if row is None:
            values = self._values(i)
            row = {c: values[c] for c in self.given_columns}
            canon = row.get("given_name_canon")
            if isinstance(canon, str):
                row["given_name_canon"] = [int(t) for t in canon.split()]
            if swapped:  # no canonical forms exist for a family name
                row.update({c: values[f] for c, f in SWAPPED.items()})
                row["given_name_canon"] = None
            self.rows[(i, swapped)] = row
        return row

    def __call__(self, a: int, b: int) -> bool:
        i, j = self.position.get(a), self.position.get(b)
        if i is None or j is None:
            i, j = self.uids.positions(np.array([a, b], np.int64)).tolist()
        return self._twins(i, j)

    def _twins(self, i: int, j: int) -> bool:
        """The rule for the records at positions i and j."""
        values_i, values_j = self._values(i), self._values(j)
        if (values_i["given_name_tok"], values_i["family_name_tok"]) == (
            values_j["given_name_tok"],
            values_j["family_name_tok"],
        ):
            return False  # the same names: never twins (the exact given-name level)
        swapped_i = swapped_j = False
        family_dm = values_i["family_name_dm"]
        family_i, family_j = values_i["family_name_tok"], values_j["family_name_tok"]
        same_family = family_i == family_j or (
            family_dm is not None and family_dm == values_j["family_name_dm"]
        )
        if not same_family:
            # One record's given name is the other's family name: a swap, read it back.
            if family_j is not None and values_i["given_name_tok"] == family_j:
                swapped_i = True
            elif family_i is not None and values_j["given_name_tok"] == family_i:
                swapped_j = True
            else:
                return False
        for name in self.IDENTIFIERS:
            if values_i[name] is not None and values_i[name] == values_j[name]:
                return False
        read = {
            False: ("given_name_tok", "given_name_dm"),
            True: ("family_name_tok", "family_name_dm"),
        }
        given_i, sound_i = (values_i[c] for c in read[swapped_i])
        given_j, sound_j = (values_j[c] for c in read[swapped_j])
        if given_i is None or given_j is None or given_i == given_j:
            return False  # the null or the exact level: never the ELSE level (0)
        if sound_i is not None and sound_i == sound_j:
            return False  # the same Double Metaphone: a level above ELSE
        return self.GIVEN.level_of(self._row(i, swapped_i), self._row(j, swapped_j)) == 0


def _equal(column: pa.Array, left: np.ndarray, right: np.ndarray) -> pa.Array:
    """Whether the column holds the same value at each left and right position, two nulls
    counting as the same (as Python's == does for None)."""
    a, b = column.take(pa.array(left)), column.take(pa.array(right))
    return pc.fill_null(pc.equal(a, b), pc.and_(pc.is_null(a), pc.is_null(b)))
