"""Which records an incremental run must cluster again; every other cluster stands as it is.

Constrained clustering joins records only along auto-link pairs and must-links, and checks
its constraints only between the records it is joining, so each connected component of that
graph is clustered independently of the rest. A component none of whose records changed, none
of whose pairs changed, and none of whose records was decided on comes out as the previous run
left it: its clusters are its records' current CCIs, and stable assignment keeps those CCIs.

So the run clusters again only the closure of the touched records (new or changed, decided on,
without a CCI, or sharing a CCI with a withdrawn record) under two relations: joined by a link,
and sharing a current CCI (a cluster is re-planned whole, so that its CCI is carried, split or
superseded exactly as a full run would). Computed with Arrow filters over the link and CCI
columns, a handful of passes for components of a few records.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.identity.clustering import KeyPositions

#: Each record's current CCI: `unique_id`, `cci`.
PRIOR_SCHEMA = pa.schema([("unique_id", pa.int64()), ("cci", pa.string())])


def affected_records(
    records: pa.Array | pa.ChunkedArray,
    held: pa.Table,
    links: pa.Table,
    touched: Iterable[int],
) -> set[int]:
    """Records (of `records`) connected to `touched` by links (`unique_id_l`, `unique_id_r`)
    or by sharing a current CCI, `touched` included. `held` (PRIOR_SCHEMA) is the CCI of each
    record of `records` that holds one."""
    present = records.combine_chunks() if isinstance(records, pa.ChunkedArray) else records
    uid_of = held["unique_id"].combine_chunks()
    cci_of = held["cci"].combine_chunks()
    left, right = links["unique_id_l"], links["unique_id_r"]
    # Membership by binary search: Arrow's is_in would hash the million keys on every step.
    keys = KeyPositions(present.to_numpy())
    found = _among(keys, set(touched))
    frontier = found
    while frontier:
        step = pa.array(sorted(frontier), pa.int64())
        ccis = pc.unique(cci_of.filter(pc.is_in(uid_of, value_set=step)))
        reached = [
            uid_of.filter(pc.is_in(cci_of, value_set=ccis)),
            right.filter(pc.is_in(left, value_set=step)),
            left.filter(pc.is_in(right, value_set=step)),
        ]
        frontier = {uid for part in reached for uid in part.to_pylist()} - found
        frontier = _among(keys, frontier)
        found |= frontier
    return found


def _among(keys: KeyPositions, uids: set[int]) -> set[int]:
    """Those of `uids` among `keys`."""
    wanted = np.fromiter(uids, np.int64, len(uids))
    return set(wanted[keys.positions(wanted) >= 0].tolist())
