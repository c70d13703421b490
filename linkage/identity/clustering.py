"""Constrained clustering: greedy union of scored pairs in descending match weight.

Data officers' decisions are constraints: "same child" (must-link) joins two records whatever
the scores; "different children" (cannot-link) keeps them apart whatever the scores. Two
records holding different health-verified NHS numbers never share a cluster unless a decision
joins them: any link that would chain them together is refused, however strong.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field

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
    come first, and only a component holding a pair that may not share a cluster is
    clustered greedily. Every other component is one cluster, as the greedy union would make
    it (it refuses nothing there). In a registry most components are one child's records.
    """
    links = list(links)
    must_link, cannot_link = list(must_link), list(cannot_link)
    health_nhs = health_nhs or {}
    keys = conflict_key or {}
    nodes = _NodeOrder(records)
    for a, b in cannot_link + must_link:
        nodes.add(a)
        nodes.add(b)
    if any(a not in nodes.seen or b not in nodes.seen for a, b, _ in links):
        for a, b, _ in _by_weight(links):  # the greedy meets new records in weight order
            nodes.add(a)
            nodes.add(b)

    components = _Components(nodes.order)
    must_unions: dict[RecordKey, int] = {}
    for a, b in must_link:
        if components.union(a, b):
            must_unions[a] = must_unions.get(a, 0) + 1
    for a, b, _ in links:
        components.union(a, b)
    members: dict[RecordKey, list[RecordKey]] = {}
    for node in nodes.order:
        members.setdefault(components.find(node), []).append(node)
    dirty = {components.find(a) for a, b in cannot_link if components.same(a, b)}
    dirty.update(_conflicted(members, health_nhs, keys, conflicts))

    result = ClusteringResult(clusters=[])
    label: dict[RecordKey, RecordKey] = {}
    if dirty:
        inside = {node for root in dirty for node in members[root]}
        greedy = greedy_clusters(
            [node for node in nodes.order if node in inside],
            [link for link in links if link[0] in inside],
            health_nhs={r: n for r, n in health_nhs.items() if r in inside},
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
        for cluster in greedy.clusters:
            first = next(iter(cluster))
            label.update((node, first) for node in cluster)
    for a, count in must_unions.items():  # must-links used no scored link
        if components.find(a) not in dirty:
            result.links_used -= count
    for root, group in members.items():
        if root not in dirty:
            result.links_used += len(group) - 1
            label.update((node, root) for node in group)
    clusters: dict[RecordKey, set[RecordKey]] = {}
    for node in nodes.order:  # in the order the greedy union lists them
        clusters.setdefault(label[node], set()).add(node)
    result.clusters = list(clusters.values())
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


class _Components:
    """Plain union-find: the links' connected components, with no constraint checked."""

    def __init__(self, nodes: Iterable[RecordKey]) -> None:
        self.parent = {node: node for node in nodes}

    def find(self, node: RecordKey) -> RecordKey:
        parent = self.parent
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    def same(self, a: RecordKey, b: RecordKey) -> bool:
        return self.find(a) == self.find(b)

    def union(self, a: RecordKey, b: RecordKey) -> bool:
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return False
        self.parent[root_b] = root_a
        return True


def _conflicted(
    components: Mapping[RecordKey, list[RecordKey]],
    health_nhs: Mapping[RecordKey, str],
    conflict_key: Mapping[RecordKey, Hashable],
    conflicts: Callable[[RecordKey, RecordKey], bool] | None,
) -> set[RecordKey]:
    """The components (by root) holding two records that may not share a cluster: different
    health NHS numbers, or a conflicting pair in one bucket (cannot-links are the caller's).
    A rule with a `which` method is asked about all bucket pairs at once."""
    found: set[RecordKey] = set()
    pairs: list[tuple[RecordKey, RecordKey]] = []
    owners: list[RecordKey] = []
    for root, group in components.items():
        if len(group) == 1:
            continue
        numbers = {health_nhs[node] for node in group if node in health_nhs}
        numbers.discard("")
        if len(numbers) > 1:
            found.add(root)
            continue
        if conflicts is None:
            continue
        if len(group) > PRECHECK_MAX:
            found.add(root)  # the greedy union checks it, and stops at a first conflict
            continue
        buckets: dict[Hashable, list[RecordKey]] = {}
        for node in group:
            key = conflict_key.get(node)
            if key is not None:
                buckets.setdefault(key, []).append(node)
        for bucket in buckets.values():
            for i, first in enumerate(bucket):
                for second in bucket[i + 1 :]:
                    pairs.append((first, second))
                    owners.append(root)
    if pairs and conflicts is not None:
        which = getattr(conflicts, "which", None)
        verdicts = which(pairs) if which else [conflicts(a, b) for a, b in pairs]
        found.update(root for root, clash in zip(owners, verdicts, strict=True) if clash)
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
