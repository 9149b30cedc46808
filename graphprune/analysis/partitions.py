"""Slots of a component whose axes are split into factors: one group per family of factors.

In ``[B, S, H*D] -> [B, S, H, D]`` the projection's output axis is a *whole* whose parts (heads,
head dims) are linked to the split axes. Positions of a whole are tied to their coordinate in
each part, so one union-find over every link would merge heads and dims into one slot. Instead:

* **regions** are the components of the rules' links alone (ties between a whole and its parts
  left out): the projection region, the heads region, the head-dims region...;
* a tie makes the region of the whole a *parent* of the region of the part; regions without
  children are **leaves** (heads, head dims, the query heads of one key/value head...);
* the **partition** of a set of leaves is the union-find over the leaves, all their ancestors,
  the links inside them and the ties that lead toward the leaves. Its components that reach a
  leaf are its slots; positions they do not reach are not in it.

Each partition becomes a group. Removing slots of several partitions removes, from a whole, the
positions whose coordinate is gone in any of them: a product of the kept coordinates, so every
reshape between the whole and its parts stays exact. That holds when every partition touching a
whole is a function of one of its parts and covers that part; partitions that read the same part
through different paths (the fused Q/K/V chunks of one in-projection) are merged until it holds,
and partitions that cover only some positions of a space are joined with the ones covering the
rest (the Q, K and V head dims of one fused projection). A component where this fails is
reported as failed (the caller analyses it without factors).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..rules.base import HEADS, QUERY_GROUP, Link, Space, part_coordinates
from .components import component_labels

#: the families of factors, in the order their groups are listed
KINDS = ("heads", "query", "dims")


@dataclass
class Partition:
    """One family of factors of a component: its spaces, slot ids and kind."""

    spaces: list[Space]
    labels: dict[Space, np.ndarray]
    n_slots: int
    links: list[Link]
    kind: str = "dims"
    leaves: frozenset = field(default_factory=frozenset)


class _Component:
    """Index of one component: spaces, regions, the region tree, position edges."""

    def __init__(self, comp: list[Space], links: list[Link], sizes: dict):
        self.spaces = comp
        self.sizes = [int(sizes[s]) for s in comp]
        self.index = {s: i for i, s in enumerate(comp)}
        self.links = links
        self.ties = [(self.index[s.whole], i) for i, s in enumerate(comp) if s.is_part and s.whole in self.index]
        ends = np.array([(self.index[lk.a], self.index[lk.b]) for lk in links], dtype=np.int64).reshape(-1, 2)
        labels = component_labels(len(comp), ends[:, 0], ends[:, 1])
        _, self.region = np.unique(labels, return_inverse=True)
        self.n_regions = int(self.region.max()) + 1 if len(comp) else 0
        self.members: list[list[int]] = [[] for _ in range(self.n_regions)]
        for i, r in enumerate(self.region):
            self.members[r].append(i)
        self.region_links: list[list[int]] = [[] for _ in range(self.n_regions)]
        for k, (a, _) in enumerate(ends):
            self.region_links[self.region[a]].append(k)
        self.parents: list[set] = [set() for _ in range(self.n_regions)]
        self.children: list[set] = [set() for _ in range(self.n_regions)]
        self.region_ties: list[list[tuple]] = [[] for _ in range(self.n_regions)]
        for w, p in self.ties:
            self.parents[self.region[p]].add(int(self.region[w]))
            self.children[self.region[w]].add(int(self.region[p]))
            self.region_ties[self.region[p]].append((w, p))
        self.leaves = [r for r in range(self.n_regions) if not self.children[r]]
        self._edges: dict[int, list[tuple]] = {}

    def tiled(self) -> bool:
        """The parts of every whole are its digits: strides 1, n1, n1*n2... up to its size (two
        splits of one axis into different factors are not)."""
        parts: dict[int, list[tuple]] = {}
        for w, p in self.ties:
            parts.setdefault(w, []).append(self.spaces[p].part)
        for w, digits in parts.items():
            stride = 1
            for step, size in sorted(digits):
                if step != stride:
                    return False
                stride *= size
            if stride != self.sizes[w]:
                return False
        return True

    def valid_tree(self) -> bool:
        """No whole shares a region with its part, and no region is its own ancestor."""
        if any(self.region[w] == self.region[p] for w, p in self.ties):
            return False
        state = [0] * self.n_regions  # 0 new, 1 on the path, 2 done (iterative depth-first search)
        for start in range(self.n_regions):
            if state[start]:
                continue
            stack = [(start, iter(self.parents[start]))]
            state[start] = 1
            while stack:
                node, parents = stack[-1]
                nxt = next(parents, None)
                if nxt is None:
                    state[node] = 2
                    stack.pop()
                elif state[nxt] == 1:
                    return False
                elif state[nxt] == 0:
                    state[nxt] = 1
                    stack.append((nxt, iter(self.parents[nxt])))
        return True

    def closure(self, leaves) -> set[int]:
        out, stack = set(leaves), list(leaves)
        while stack:
            for parent in self.parents[stack.pop()]:
                if parent not in out:
                    out.add(parent)
                    stack.append(parent)
        return out

    def region_edges(self, region: int) -> list[tuple]:
        """(space a, space b, positions in a, positions in b) of the links and ties of ``region``
        (made once: every partition whose closure holds the region reads them)."""
        edges = self._edges.get(region)
        if edges is None:
            edges = self._edges[region] = []
            for k in self.region_links[region]:
                lk = self.links[k]
                ia, ib = self.index[lk.a], self.index[lk.b]
                if lk.pairs is None:
                    p = np.arange(self.sizes[ia], dtype=np.int64)
                    edges.append((ia, ib, p, p))
                else:
                    edges.append((ia, ib, lk.pairs[:, 0], lk.pairs[:, 1]))
            for w, p in self.region_ties[region]:
                edges.append((w, p, np.arange(self.sizes[w], dtype=np.int64),
                              part_coordinates(self.sizes[w], self.spaces[p].part)))
        return edges

    def markers_of(self, region: int, markers: dict) -> set:
        return {markers.get(self.spaces[i]) for i in self.members[region]}


def _labels(comp: _Component, leaf_sets: list[frozenset]) -> list[tuple[dict[int, np.ndarray], set[int]]]:
    """For each set of leaves: the slot ids (-1: not reached) of every space in its closure, and
    the closure.

    The partitions are labelled in one union-find: each gets its own block of vertices (the
    positions of every space in its closure), and no edge joins two blocks. A component's
    representative is its smallest vertex, which is also where it first occurs in its block, so
    numbering a block's components by representative numbers them in order of appearance."""
    closures, blocks, rows, cols, leaf_rows = [], [], [], [], []
    total = 0
    for leaves in leaf_sets:
        closure = comp.closure(leaves)
        offset, start = {}, total
        for i in sorted(i for r in closure for i in comp.members[r]):
            offset[i] = total
            total += comp.sizes[i]
        for r in closure:
            for ia, ib, pa, pb in comp.region_edges(r):
                rows.append(pa + offset[ia])
                cols.append(pb + offset[ib])
        leaf_rows.extend(np.arange(offset[i], offset[i] + comp.sizes[i]) for r in leaves for i in comp.members[r])
        closures.append(closure)
        blocks.append((offset, start))
    roots = component_labels(total, np.concatenate(rows) if rows else np.zeros(0, np.int64),
                             np.concatenate(cols) if cols else np.zeros(0, np.int64))
    reaches_leaf = np.zeros(total, dtype=bool)  # roots are vertex ids: mark those the leaves reach
    reaches_leaf[roots[np.concatenate(leaf_rows)]] = True
    covered = reaches_leaf[roots]
    dense = np.full(total, -1, dtype=np.int64)
    reached_roots, inverse = np.unique(roots[covered], return_inverse=True)
    dense[covered] = inverse
    out = []
    for k, ((offset, start), closure) in enumerate(zip(blocks, closures)):
        block = dense[start:blocks[k + 1][1] if k + 1 < len(blocks) else total]
        block[block >= 0] -= np.searchsorted(reached_roots, start)  # the components of the blocks before
        out.append(({i: dense[at:at + comp.sizes[i]] for i, at in offset.items()}, closure))
    return out


def _is_function_of(labels: np.ndarray, coords: np.ndarray) -> bool:
    """Are the reached ``labels`` a non-constant function of ``coords``?"""
    mask = labels >= 0
    lab, co = labels[mask], coords[mask]
    if lab.size == 0 or np.unique(lab).size < 2:
        return False
    keys = np.unique(co * (int(lab.max()) + 1) + lab)
    return keys.size == np.unique(co).size


def _reached(lab) -> bool:
    return lab is not None and bool((lab >= 0).any())


def _merges(comp: _Component, labels: dict) -> list[tuple] | None:
    """Pairs of partitions to merge so that every whole and every space is covered consistently;
    None when that cannot be reached."""
    holders: dict[int, list[int]] = {}
    for pid, lab in labels.items():
        for i in lab:
            holders.setdefault(i, []).append(pid)
    merges = []
    by_whole: dict[int, list[int]] = {}
    for w, p in comp.ties:
        by_whole.setdefault(w, []).append(p)
    for w, plist in by_whole.items():
        covering = {j: {pid for pid in holders.get(j, ()) if _reached(labels[pid][j])} for j in plist}
        for pid in holders.get(w, ()):
            lab = labels[pid][w]
            own = [j for j in plist if pid in covering[j]]
            if not _reached(lab) or len(own) == 1:
                continue
            if own:
                return None  # one slot holds several factors of this whole
            target = next((j for j in plist if _is_function_of(
                lab, part_coordinates(comp.sizes[w], comp.spaces[j].part))), None)
            if target is None:
                return None
            merges.extend((pid, other) for other in covering[target])
    if merges:
        return merges
    for i, pids in holders.items():
        for pid in pids:
            reached = labels[pid][i] >= 0
            if reached.all() or not reached.any():
                continue
            rest = [q for q in pids if q != pid and _reached(labels[q][i])
                    and not (reached & (labels[q][i] >= 0)).any()]
            if not rest:
                return None
            merges.extend((pid, q) for q in rest)
    return merges


def _kind(comp: _Component, leaves, markers: dict) -> str:
    roles = set().union(*(comp.markers_of(r, markers) for r in leaves))
    if HEADS in roles:
        return "heads"
    if QUERY_GROUP in roles:
        return "query"
    if any(HEADS in comp.markers_of(parent, markers) for leaf in leaves for parent in comp.parents[leaf]):
        return "heads"
    return "dims"


def partition_component(comp_spaces: list[Space], links: list[Link], sizes: dict, markers: dict):
    """The partitions of one component, ``None`` when it has no ties (one group as usual), or
    ``False`` when its factors cannot be kept apart consistently."""
    if not any(s.is_part for s in comp_spaces):
        return None  # no axis of it is split into factors (most components): no index to build
    comp = _Component(comp_spaces, links, sizes)
    if not comp.ties:
        return None
    if not comp.tiled() or not comp.valid_tree():
        return False
    root = {leaf: leaf for leaf in comp.leaves}

    def find(x):
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    known: dict[frozenset, tuple] = {}  # leaves -> _labels: a partition no merge touched keeps its labels
    for _ in range(len(comp.leaves) + 1):
        sets: dict[int, list[int]] = {}
        for leaf in comp.leaves:
            sets.setdefault(find(leaf), []).append(leaf)
        parts = {pid: frozenset(ls) for pid, ls in enumerate(sorted(sets.values(), key=min))}
        missing = [leaves for leaves in parts.values() if leaves not in known]
        known.update(zip(missing, _labels(comp, missing)))
        computed = {pid: known[leaves] for pid, leaves in parts.items()}
        labels = {pid: lab for pid, (lab, _) in computed.items()}
        merges = _merges(comp, labels)
        if merges is None:
            return False
        if not merges:
            return [_partition(comp, parts[pid], labels[pid], computed[pid][1], markers) for pid in parts]
        for a, b in merges:
            root[find(min(parts[a]))] = find(min(parts[b]))
    return False


def _partition(comp: _Component, leaves, labels: dict, closure: set, markers: dict) -> Partition:
    full = [i for i in sorted(labels) if (labels[i] >= 0).all()]
    n_slots = max((int(labels[i].max()) + 1 for i in full), default=0)
    inside = {comp.spaces[i] for i in full}
    links = [comp.links[k] for r in closure for k in comp.region_links[r]
             if comp.links[k].a in inside and comp.links[k].b in inside]
    return Partition([comp.spaces[i] for i in full], {comp.spaces[i]: labels[i] for i in full}, n_slots, links,
                     _kind(comp, leaves, markers), frozenset(leaves))
