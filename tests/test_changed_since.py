"""Which records an incremental run scores again: those new or at another version since the
kept pairs were scored, and those gone. Binary searches when both sides are in key order (as
snapshots are), else hash look-ups; the same answer either way."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.model.incremental import VERSION_SCHEMA
from linkage.run import _changed_since

versions = st.dictionaries(st.integers(1, 60), st.integers(1, 3), max_size=40)


def _table(found: dict[int, int], *, in_key_order: bool) -> pa.Table:
    ids = sorted(found, reverse=not in_key_order)
    return pa.table([ids, [found[i] for i in ids]], schema=VERSION_SCHEMA)


@settings(deadline=None, max_examples=300)
@given(before=versions, now=versions)
def test_changed_and_gone_records(before: dict[int, int], now: dict[int, int]) -> None:
    changed = sorted(i for i, v in now.items() if before.get(i) != v)
    gone = sorted(set(before) - set(now))
    for in_key_order in (True, False):
        found = _changed_since(
            _table(before, in_key_order=in_key_order), _table(now, in_key_order=in_key_order)
        )
        assert (sorted(found[0]), sorted(found[1])) == (changed, gone)
