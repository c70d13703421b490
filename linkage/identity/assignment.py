"""Stable identifier assignment: carrying old CCIs onto new clusters (DESIGN.md).

- Old CCIs are carried onto new clusters by maximum overlap of records; ties go to the
  NHS-anchored CCI, then the oldest.
- A merge keeps the winning CCI; the others become `superseded`, pointing at it.
- A split keeps the CCI on the part with most of its records; the other parts get new CCIs,
  except that a split which undoes an earlier merge reinstates the superseded CCI.
- An old CCI left with no records is `retired`.

Pure logic: the caller loads the prior state and applies the returned plan in one transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from linkage.identity.cci import new_cci

RecordKey = int  # a record's primary key in the registry


class PriorIdentifier(NamedTuple):
    """An active CCI as a run finds it (a named tuple: a run reads every active one)."""

    cci: str
    created_at: datetime
    nhs_anchored: bool = False


#: The active CCIs as a run reads them, one row each (a table, not PriorIdentifier objects:
#: an incremental run decides on a few of a registry's hundreds of thousands).
IDENTIFIER_SCHEMA = pa.schema(
    [
        ("cci", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("nhs_anchored", pa.bool_()),
    ]
)


def prior_identifiers(
    table: pa.Table, ccis: Collection[str] | None = None
) -> dict[str, PriorIdentifier]:
    """The rows of `table` (IDENTIFIER_SCHEMA) as PriorIdentifiers by CCI: all of them, or
    those of `ccis`. Each distinct creation time becomes a datetime once: Arrow converts a
    zoned timestamp at 2.5 us a value (1.5 s for 580,000 CCIs), and the CCIs a run creates
    share its time."""
    if ccis is not None:
        table = table.filter(pc.is_in(table["cci"], value_set=pa.array(list(ccis), pa.string())))
    created = pc.dictionary_encode(table["created_at"].combine_chunks())
    times = created.dictionary.to_pylist()
    return {
        cci: PriorIdentifier(cci, times[at], anchored)
        for cci, at, anchored in zip(
            table["cci"].to_pylist(),
            created.indices.to_pylist(),
            table["nhs_anchored"].to_pylist(),
            strict=True,
        )
    }


class Event(NamedTuple):
    """A named tuple, not a frozen dataclass: a first run makes one per record, and a frozen
    dataclass's __init__ cost 2.5 us each (a second per 400,000 records)."""

    type: str  # created | superseded | split | reinstated | retired | reassigned
    cci: str
    related_cci: str | None = None
    record: RecordKey | None = None


@dataclass
class AssignmentPlan:
    """What to write: each cluster's CCI, status changes, and the events, in order."""

    cci_of_cluster: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    superseded: dict[str, str] = field(default_factory=dict)  # old -> successor
    reinstated: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    split_from: dict[str, str] = field(default_factory=dict)  # new or reinstated -> old
    #: Records whose CCI changes (before, after), in event order.
    reassigned: dict[RecordKey, tuple[str | None, str]] = field(default_factory=dict)
    #: The events of identifiers (created, superseded, ...), in order: `events` adds the
    #: records' `reassigned` events after them.
    identifier_events: list[Event] = field(default_factory=list)

    @property
    def events(self) -> list[Event]:
        """Every event, in order: the identifiers' events, then a `reassigned` event for each
        record in `reassigned`. Made when asked for: a first run's million records' events
        are copied by the database from their assignments (`linkage.store.registry`)."""
        return self.identifier_events + [
            Event("reassigned", after, related_cci=before, record=record)
            for record, (before, after) in self.reassigned.items()
        ]


def assign_identifiers(
    clusters: list[set[RecordKey]],
    prior_cci: Mapping[RecordKey, str],
    identifiers: Mapping[str, PriorIdentifier],
    *,
    members_when_superseded: Mapping[str, tuple[str, frozenset[RecordKey]]] | None = None,
    make_cci: Callable[[], str] = new_cci,
) -> AssignmentPlan:
    """Give each new cluster a CCI, keeping old ones wherever the records stayed together.

    `prior_cci` maps each record to its current active CCI (records new to the registry are
    absent); `identifiers` describes those active CCIs. `members_when_superseded` maps each
    superseded CCI to (its successor resolved to the CCI active now, the records it held when
    it was superseded): a cluster made of most of those records again, split off that
    successor, gets the old CCI back.
    """
    plan = AssignmentPlan(cci_of_cluster=[""] * len(clusters))
    overlaps: list[tuple[int, str, int]] = []  # (overlap, cci, cluster index)
    held: list[list[str]] = []  # each cluster's records' prior CCIs (counted only if any)
    for index, members in enumerate(clusters):
        known = [prior_cci[r] for r in members if r in prior_cci]
        held.append(known)
        if known:
            counts = Counter(known)
            overlaps.extend((count, cci, index) for cci, count in counts.items())

    def priority(item: tuple[int, str, int]) -> tuple[int, bool, datetime, str, int]:
        count, cci, index = item
        prior = identifiers[cci]
        return (-count, not prior.nhs_anchored, prior.created_at, cci, index)

    carried: dict[str, int] = {}
    for _count, cci, index in sorted(overlaps, key=priority):
        if cci in carried or plan.cci_of_cluster[index]:
            continue
        carried[cci] = index
        plan.cci_of_cluster[index] = cci
        plan.kept.append(cci)

    # Old CCIs not carried: merged into the cluster that holds most of their records, or retired.
    best_cluster: dict[str, int] = {}
    for _count, cci, index in sorted(overlaps, key=priority):
        best_cluster.setdefault(cci, index)
    for cci in sorted(identifiers):
        if cci in carried:
            continue
        if cci in best_cluster:
            successor = plan.cci_of_cluster[best_cluster[cci]]
            plan.superseded[cci] = successor
            plan.identifier_events.append(Event("superseded", cci, related_cci=successor))
        else:
            plan.retired.append(cci)
            plan.identifier_events.append(Event("retired", cci))

    # Clusters without a CCI: reinstate an undone merge, else a new CCI.
    reinstatable = dict(members_when_superseded or {})
    for index, members in enumerate(clusters):
        if plan.cci_of_cluster[index]:
            continue
        known = held[index]
        origin = Counter(known).most_common(1)[0][0] if known else None
        back = _undone_merge(members, origin, reinstatable)
        if back is not None:
            plan.cci_of_cluster[index] = back
            plan.reinstated.append(back)
            plan.split_from[back] = origin or ""
            plan.identifier_events.append(Event("reinstated", back, related_cci=origin))
            del reinstatable[back]
            continue
        cci = make_cci()
        plan.cci_of_cluster[index] = cci
        plan.created.append(cci)
        plan.identifier_events.append(Event("created", cci))
        if origin is not None:
            plan.split_from[cci] = origin
            plan.identifier_events.append(Event("split", cci, related_cci=origin))

    prior_of = prior_cci.get
    for cci, members in zip(plan.cci_of_cluster, clusters, strict=True):
        moved = sorted(record for record in members if prior_of(record) != cci)
        plan.reassigned.update((record, (prior_of(record), cci)) for record in moved)
    return plan


def _undone_merge(
    members: Iterable[RecordKey],
    origin: str | None,
    reinstatable: Mapping[str, tuple[str, frozenset[RecordKey]]],
) -> str | None:
    """The superseded CCI whose records this cluster now holds (more than half of them), if
    it was merged into the CCI the cluster splits from."""
    if origin is None:
        return None
    member_set = set(members)
    best: tuple[int, str] | None = None
    for cci, (successor, old_members) in reinstatable.items():
        if successor != origin or not old_members:
            continue
        overlap = len(member_set & old_members)
        if 2 * overlap > len(old_members) and (best is None or overlap > best[0]):
            best = (overlap, cci)
    return best[1] if best else None
