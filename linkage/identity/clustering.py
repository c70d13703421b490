"""Constrained clustering: greedy union of scored pairs in descending match weight.

Data officers' decisions are constraints: "same child" (must-link) joins two records whatever
the scores; "different children" (cannot-link) keeps them apart whatever the scores. Two
records holding different health-verified NHS numbers never share a cluster unless a decision
joins them: any link that would chain them together is refused, however strong.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

RecordKey = int  # a record's primary key in the registry
#: Larger components skip the pairwise pre-check (its pairs grow with the square of their
#: size) and are clustered greedily.
PRECHECK_MAX = 200


@dataclass
class ClusteringResult:
    clusters: list[set[RecordKey]]
    links_used: int = 0
    refused_nhs_conflict: int = 0
    refused_cannot_link: int = 0
    refused_conflict: int = 0
    refused: list[tuple[RecordKey, RecordKey]] = field(default_factory=list)


_NONE: frozenset[str] = frozenset()


class _Clusters:
    """Union-find whose roots carry the cluster's health NHS numbers, cannot-link partners and
    members by conflict key. Most records never get any of those, so each is kept only for
    the roots that have one: a run over a million records then allocates a handful of
    containers, not millions."""

    def __init__(
        self,
        nodes: Iterable[RecordKey],
        nhs: Mapping[RecordKey, str],
        conflict_key: Mapping[RecordKey, Hashable] | None = None,
        conflicts: Callable[[RecordKey, RecordKey], bool] | None = None,
    ) -> None:
        self.parent: dict[RecordKey, RecordKey] = {node: node for node in nodes}
        self.size: dict[RecordKey, int] = {}
        self.nhs: dict[RecordKey, frozenset[str]] = {
            node: frozenset([number]) for node, number in nhs.items() if number
        }
        self.cannot: dict[RecordKey, set[RecordKey]] = {}
        self.keyed: dict[RecordKey, dict[Hashable, list[RecordKey]]] = {}
        self.conflict_key = conflict_key or {}
        self.conflicts = conflicts

    def add(self, node: RecordKey) -> None:
        if node not in self.parent:
            self.parent[node] = node

    def find(self, node: RecordKey) -> RecordKey:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:  # path compression
            self.parent[node], node = root, self.parent[node]
        return root

    def _keyed(self, root: RecordKey) -> dict[Hashable, list[RecordKey]]:
        found = self.keyed.get(root)
        if found is not None:
            return found
        key = self.conflict_key.get(root)  # a root never merged is its only member
        return {key: [root]} if key is not None else {}

    def conflict(self, a: RecordKey, b: RecordKey) -> str | None:
        """Why roots a and b may not merge, or None."""
        nhs_a, nhs_b = self.nhs.get(a, _NONE), self.nhs.get(b, _NONE)
        if nhs_a and nhs_b and nhs_a != nhs_b:
            return "nhs"
        cannot_a, cannot_b = self.cannot.get(a), self.cannot.get(b)
        if cannot_a and cannot_b:  # symmetric: each side of a cannot-link names the other
            small, large = (cannot_a, b) if len(cannot_a) <= len(cannot_b) else (cannot_b, a)
            if any(self.find(partner) == large for partner in small):
                return "cannot_link"
        if self.conflicts is not None:
            keyed_a, keyed_b = self._keyed(a), self._keyed(b)
            for key in keyed_a.keys() & keyed_b.keys():
                if any(self.conflicts(x, y) for x in keyed_a[key] for y in keyed_b[key]):
                    return "conflict"
        return None

    def union(self, a: RecordKey, b: RecordKey) -> RecordKey:
        if self.size.get(a, 1) < self.size.get(b, 1):
            a, b = b, a
        self.parent[b] = a
        self.size[a] = self.size.get(a, 1) + self.size.pop(b, 1)
        nhs_b = self.nhs.pop(b, _NONE)
        if nhs_b:
            self.nhs[a] = self.nhs.get(a, _NONE) | nhs_b
        cannot_b = self.cannot.pop(b, None)
        if cannot_b:
            self.cannot.setdefault(a, set()).update(cannot_b)
        if self.conflicts is not None:
            keyed = self._keyed(a)
            for key, members in self._keyed(b).items():
                keyed.setdefault(key, []).extend(members)
            self.keyed[a] = keyed
            self.keyed.pop(b, None)
        return a

    def groups(self) -> list[set[RecordKey]]:
        out: dict[RecordKey, set[RecordKey]] = {}
        for node in self.parent:
            out.setdefault(self.find(node), set()).add(node)
        return list(out.values())


def cluster_records(
    records: Iterable[RecordKey],
    links: Iterable[tuple[RecordKey, RecordKey, float]],
    *,
    health_nhs: Mapping[RecordKey, str] | None = None,
    must_link: Iterable[tuple[RecordKey, RecordKey]] = (),
    cannot_link: Iterable[tuple[RecordKey, RecordKey]] = (),
    conflict_key: Mapping[RecordKey, Hashable] | None = None,
    conflicts: Callable[[RecordKey, RecordKey], bool] | None = None,
) -> ClusteringResult:
    """Cluster records given scored links at or above the auto-link threshold.

    `health_nhs` maps records from health sources to their NHS number encoding. Must-links are
    applied first (a decision outranks the NHS rule); then links in descending weight, each
    refused if it would join two clusters with different health NHS numbers or a cannot-link
    pair, or put together two records in one `conflict_key` bucket for which `conflicts` holds.
    Ties in weight are broken by the record keys, so the result is deterministic.

    The result is `greedy_clusters`'s, found more cheaply: the links' connected components
    come first (in arrays: a million records take a fraction of a second), and only a
    component holding a pair that may not share a cluster is clustered greedily. Every other
    component is one cluster, as the greedy union would make it (it refuses nothing there). In
    a registry most components are one child's records.
    """
    links = list(links)
    must_link, cannot_link = list(must_link), list(cannot_link)
    nodes = _NodeOrder(records)
    for a, b in cannot_link + must_link:
        nodes.add(a)
        nodes.add(b)
    result = ClusteringResult(clusters=[])
    if not nodes.order and not links:
        return result
    graph = _Graph(nodes.order)
    link_ends = graph.ends(links)
    if (link_ends < 0).any():
        for a, b, _ in _by_weight(links):  # the greedy meets new records in weight order
            nodes.add(a)
            nodes.add(b)
        graph = _Graph(nodes.order)
        link_ends = graph.ends(links)
    must_ends = graph.ends(must_link)
    component = graph.components(np.concatenate([link_ends, must_ends]))
    size = np.bincount(component)
    dirty = _nhs_conflicts(graph, component, health_nhs or {})
    if cannot_link:
        ends = graph.ends(cannot_link)
        inside = component[ends[:, 0]] == component[ends[:, 1]]
        dirty[component[ends[inside, 0]]] = True
    if conflicts is not None:
        dirty |= size > PRECHECK_MAX
        dirty |= _rule_conflicts(graph, component, size, dirty, conflict_key or {}, conflicts)

    label = component.copy()
    if dirty.any():
        in_dirty = dirty[component]
        inside = set(graph.keys[in_dirty].tolist())
        prefetch = getattr(conflicts, "prefetch", None)
        if prefetch is not None:  # a rule that reads its records in bulk (TwinRule)
            prefetch(graph.keys[in_dirty])
        greedy = greedy_clusters(
            [node for node in nodes.order if node in inside],
            [link for link in links if link[0] in inside],
            health_nhs={r: n for r, n in (health_nhs or {}).items() if r in inside},
            must_link=[pair for pair in must_link if pair[0] in inside],
            cannot_link=[pair for pair in cannot_link if pair[0] in inside],
            conflict_key=conflict_key,
            conflicts=conflicts,
        )
        result.links_used = greedy.links_used
        result.refused_nhs_conflict = greedy.refused_nhs_conflict
        result.refused_cannot_link = greedy.refused_cannot_link
        result.refused_conflict = greedy.refused_conflict
        result.refused = greedy.refused
        cluster_of = {node: i for i, cluster in enumerate(greedy.clusters) for node in cluster}
        # A cannot-link partner outside the dirty components is a singleton to the greedy
        # union, not a cluster of this result: its own component labels it.
        positions = np.flatnonzero(in_dirty)
        label[positions] = len(size) + np.array(
            [cluster_of[node] for node in graph.keys[positions].tolist()], np.int64
        )
    # A clean component takes one scored link per member but its first, less the members
    # must-links joined (the greedy union takes those before any scored link).
    clean = ~dirty
    result.links_used += int(np.sum(_must_parts(graph, component, must_ends)[clean] - 1))
    result.clusters = graph.groups(label)
    return result


class _NodeOrder:
    """Records in the order they were first met."""

    def __init__(self, records: Iterable[RecordKey]) -> None:
        self.order = list(dict.fromkeys(records))
        self.seen = set(self.order)

    def add(self, node: RecordKey) -> None:
        if node not in self.seen:
            self.seen.add(node)
            self.order.append(node)


class KeyPositions:
    """Where each record key sits in an array of distinct keys: a binary search over a sorted
    copy, for work in arrays over a million records (a dict of them takes a second to build)."""

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = keys
        self.sorter = np.argsort(keys, kind="stable")
        self.sorted = keys[self.sorter]

    def positions(self, keys: np.ndarray) -> np.ndarray:
        """Positions of keys, -1 for a key not among them."""
        if not len(self.sorted):
            return np.full(keys.shape, -1, np.int64)
        found = np.searchsorted(self.sorted, keys).clip(max=len(self.sorted) - 1)
        return np.where(self.sorted[found] == keys, self.sorter[found], -1)


class _Graph(KeyPositions):
    """The records as positions 0..n-1 in the order first met, for work in arrays."""

    def __init__(self, order: list[RecordKey]) -> None:
        super().__init__(np.array(order, dtype=np.int64))

    def ends(self, pairs: Iterable[tuple[Any, ...]]) -> np.ndarray:
        """The positions of each pair's first two records, as an (n, 2) array."""
        flat = np.fromiter((key for pair in pairs for key in pair[:2]), dtype=np.int64).reshape(
            -1, 2
        )
        return self.positions(flat)

    def components(self, edges: np.ndarray) -> np.ndarray:
        """Each position's connected component over the edges (positions, (n, 2))."""
        n = len(self.keys)
        matrix = coo_array((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
        labels: np.ndarray = connected_components(matrix, directed=False)[1]
        return labels.astype(np.int64)

    def groups(self, label: np.ndarray) -> list[set[RecordKey]]:
        """The records by label, groups in the order their first member was met."""
        _, first = np.unique(label, return_index=True)
        rank = np.empty(label.max() + 1, np.int64)
        rank[label[np.sort(first)]] = np.arange(len(first))
        ranks = rank[label]
        order = np.argsort(ranks, kind="stable")
        keys = self.keys[order].tolist()
        bounds = [0, *(np.flatnonzero(np.diff(ranks[order])) + 1).tolist(), len(keys)]
        return [set(keys[start:end]) for start, end in pairwise(bounds)]


def _must_parts(graph: _Graph, component: np.ndarray, must_ends: np.ndarray) -> np.ndarray:
    """For each component, how many parts the must-links alone make of its records."""
    size = np.bincount(component)
    if not len(must_ends):
        return size
    parts = graph.components(must_ends)
    pairs = np.unique(component * len(component) + parts)
    return np.bincount(pairs // len(component), minlength=len(size))


def _nhs_conflicts(
    graph: _Graph, component: np.ndarray, health_nhs: Mapping[RecordKey, str]
) -> np.ndarray:
    """Components holding two different health NHS numbers (empty numbers are none)."""
    dirty = np.zeros(component.max() + 1, bool)
    positions, numbers = _coded(graph, health_nhs, empty_is_none=True)
    if not len(positions):
        return dirty
    owners, span = component[positions], int(numbers.max()) + 1
    distinct = np.unique(owners * span + numbers) // span
    dirty[distinct[np.flatnonzero(np.diff(distinct) == 0)]] = True
    return dirty


def _coded(
    graph: _Graph, mapping: Mapping[RecordKey, Any], *, empty_is_none: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the mapping's records that have a value, and a code for each distinct
    value (None, and with `empty_is_none` the empty string, is no value). Arrow encodes a
    million values in milliseconds; values it cannot type are coded in Python."""
    if not mapping:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    keys = np.fromiter(mapping.keys(), np.int64, len(mapping))
    values = list(mapping.values())
    try:
        encoded = pc.dictionary_encode(pa.array(values))
        codes = np.array(encoded.indices.fill_null(-1), np.int64)
        if empty_is_none and pa.types.is_string(encoded.dictionary.type):
            blank = pc.index(encoded.dictionary, "").as_py()
            if blank >= 0:
                codes[codes == blank] = -1
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        coding: dict[Any, int] = {}
        skipped = (None, "") if empty_is_none else (None,)
        codes = np.array(
            [-1 if v in skipped else coding.setdefault(v, len(coding)) for v in values], np.int64
        )
    positions = graph.positions(keys)
    kept = (positions >= 0) & (codes >= 0)
    return positions[kept], codes[kept].astype(np.int64)


def _rule_conflicts(
    graph: _Graph,
    component: np.ndarray,
    size: np.ndarray,
    dirty: np.ndarray,
    conflict_key: Mapping[RecordKey, Hashable],
    conflicts: Callable[[RecordKey, RecordKey], bool],
) -> np.ndarray:
    """Components (not yet dirty, of two to PRECHECK_MAX records) holding a pair in one
    `conflict_key` bucket for which `conflicts` holds. A rule with a `which` method is asked
    about all those pairs at once, as an (n, 2) array of record keys."""
    found = np.zeros(len(size), bool)
    positions, bucket = _coded(graph, conflict_key)
    owner = component[positions]
    wanted = ~dirty[owner] & (size[owner] > 1)
    positions, bucket, owner = positions[wanted], bucket[wanted], owner[wanted]
    # Runs of one component and bucket, members in the order met; every pair in a run.
    order = np.lexsort((positions, bucket, owner))
    positions, bucket, owner = positions[order], bucket[order], owner[order]
    run = np.cumsum(np.r_[True, (owner[1:] != owner[:-1]) | (bucket[1:] != bucket[:-1])])
    first, second = [], []
    live = np.flatnonzero(np.bincount(run)[run] > 1)
    distance = 1
    while len(live):
        partner = live + distance
        live = live[partner < len(run)]
        partner = partner[partner < len(run)]
        same = run[live] == run[partner]
        live, partner = live[same], partner[same]
        first.append(live)
        second.append(partner)
        distance += 1
    if not first:
        return found
    left, right = np.concatenate(first), np.concatenate(second)
    pairs = np.column_stack((graph.keys[positions[left]], graph.keys[positions[right]]))
    which = getattr(conflicts, "which", None)
    if which is not None:
        verdicts = np.asarray(which(pairs), bool)
    else:
        verdicts = np.array([conflicts(a, b) for a, b in pairs.tolist()], bool)
    found[owner[left[verdicts]]] = True
    return found


def _by_weight(
    links: Iterable[tuple[RecordKey, RecordKey, float]],
) -> list[tuple[RecordKey, RecordKey, float]]:
    return sorted(links, key=lambda link: (-link[2], link[0], link[1]))


def greedy_clusters(
    records: Iterable[RecordKey],
    links: Iterable[tuple[RecordKey, RecordKey, float]],
    *,
    health_nhs: Mapping[RecordKey, str] | None = None,
    must_link: Iterable[tuple[RecordKey, RecordKey]] = (),
    cannot_link: Iterable[tuple[RecordKey, RecordKey]] = (),
    conflict_key: Mapping[RecordKey, Hashable] | None = None,
    conflicts: Callable[[RecordKey, RecordKey], bool] | None = None,
) -> ClusteringResult:
    """`cluster_records` by definition: must-links, then every link in descending weight,
    each checked against the constraints of the two clusters it would join."""
    state = _Clusters(records, health_nhs or {}, conflict_key, conflicts)
    for a, b in cannot_link:
        state.add(a)
        state.add(b)
        state.cannot.setdefault(state.find(a), set()).add(b)
        state.cannot.setdefault(state.find(b), set()).add(a)
    result = ClusteringResult(clusters=[])
    for a, b in must_link:
        state.add(a)
        state.add(b)
        root_a, root_b = state.find(a), state.find(b)
        if root_a != root_b:
            state.union(root_a, root_b)

    for a, b, _weight in _by_weight(links):
        state.add(a)
        state.add(b)
        root_a, root_b = state.find(a), state.find(b)
        if root_a == root_b:
            continue
        reason = state.conflict(root_a, root_b)
        if reason is None:
            state.union(root_a, root_b)
            result.links_used += 1
            continue
        if reason == "nhs":
            result.refused_nhs_conflict += 1
        elif reason == "cannot_link":
            result.refused_cannot_link += 1
        else:
            result.refused_conflict += 1
        result.refused.append((a, b))
    result.clusters = state.groups()
    return result
