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
from .components import component_labels, ranges

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
        self.ends = np.array([(self.index[lk.a], self.index[lk.b]) for lk in links], dtype=np.int64).reshape(-1, 2)
        labels = component_labels(len(comp), self.ends[:, 0], self.ends[:, 1])
        _, self.region = np.unique(labels, return_inverse=True)
        self.n_regions = int(self.region.max()) + 1 if len(comp) else 0
        region = self.region.tolist()
        self.members: list[list[int]] = [[] for _ in range(self.n_regions)]
        for i, r in enumerate(region):
            self.members[r].append(i)
        self.region_links: list[list[int]] = [[] for _ in range(self.n_regions)]
        for k, a in enumerate(self.ends[:, 0].tolist()):
            self.region_links[region[a]].append(k)
        self.parents: list[set] = [set() for _ in range(self.n_regions)]
        self.children: list[set] = [set() for _ in range(self.n_regions)]
        for w, p in self.ties:
            self.parents[region[p]].add(region[w])
            self.children[region[w]].add(region[p])
        self.leaves = [r for r in range(self.n_regions) if not self.children[r]]
        self.size_array = np.array(self.sizes, dtype=np.int64)
        self._edges: tuple | None = None

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

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """The position edges of every link and tie as columns (space a, position in a, space b,
        position in b) of a 4 x edges array, sorted by region (a tie is in the region of its
        part), and where the edges of each region start in it (``n_regions + 1`` bounds)."""
        if self._edges is None:
            identity = np.array([lk.pairs is None for lk in self.links], dtype=bool)
            same, paired = self.ends[identity], [lk.pairs for lk in self.links if lk.pairs is not None]
            n_same, n_paired = self.size_array[same[:, 0]], np.array([len(pp) for pp in paired], dtype=np.int64)
            same_pos = ranges(np.zeros(len(same), np.int64), n_same)
            pairs = np.concatenate(paired).astype(np.int64) if paired else np.zeros((0, 2), np.int64)
            ties = np.array(self.ties, dtype=np.int64).reshape(-1, 2)
            steps = np.array([self.spaces[p].part for _, p in self.ties], dtype=np.int64).reshape(-1, 2)
            n_ties = self.size_array[ties[:, 0]]
            tie_pos = ranges(np.zeros(len(ties), np.int64), n_ties)  # positions of the whole, and their digits
            table = np.concatenate([
                _edge_columns(same, n_same, same_pos, same_pos),
                _edge_columns(self.ends[~identity], n_paired, pairs[:, 0], pairs[:, 1]),
                _edge_columns(ties, n_ties, tie_pos,
                              tie_pos // np.repeat(steps[:, 0], n_ties) % np.repeat(steps[:, 1], n_ties))], axis=1)
            region = self.region[table[2]]  # a link's ends share its region; a tie's part decides
            order = np.argsort(region, kind="stable")
            self._edges = table[:, order], np.searchsorted(region[order], np.arange(self.n_regions + 1))
        return self._edges

    def markers_of(self, region: int, markers: dict) -> set:
        return {markers.get(self.spaces[i]) for i in self.members[region]}


@dataclass
class _Labelled:
    """Slot ids (-1: not reached) of every space in the closure of one set of leaves, the spaces
    with some position reached and with every position reached, the closure, and the slot count
    (one more than the largest slot id of a space with every position reached)."""

    labels: dict[int, np.ndarray]
    reached: set[int]
    full: set[int]
    closure: set[int]
    n_slots: int


def _labels(comp: _Component, leaf_sets: list[frozenset]) -> list[_Labelled]:
    """The slot ids of every space in the closure of each set of leaves.

    The partitions are labelled in one union-find: each gets its own block of vertices (the
    positions of every space in its closure), and no edge joins two blocks. A component's
    representative is its smallest vertex, which is also where it first occurs in its block, so
    numbering a block's components by representative numbers them in order of appearance."""
    if not leaf_sets:
        return []
    closures, inside, edge_block, edge_regions, leaf_keys = [], [], [], [], []
    n = len(comp.spaces)
    for b, leaves in enumerate(leaf_sets):  # an instance is a space in a block, keyed b * n + space
        closure = comp.closure(leaves)
        closures.append(closure)
        inside.append(sorted(i for r in closure for i in comp.members[r]))
        edge_regions.extend(closure)
        edge_block.extend([b] * len(closure))
        leaf_keys.extend(b * n + i for r in leaves for i in comp.members[r])
    counts = np.array([len(spaces) for spaces in inside], dtype=np.int64)
    instances = np.concatenate([np.array(spaces, dtype=np.int64) for spaces in inside])
    keys = np.repeat(np.arange(len(inside), dtype=np.int64) * n, counts) + instances  # ascending
    sizes = comp.size_array[instances]
    starts = np.cumsum(sizes) - sizes  # first vertex of each instance
    total = int(sizes.sum())
    table, bounds = comp.edges()
    regions = np.array(edge_regions, dtype=np.int64)
    n_edges = bounds[regions + 1] - bounds[regions]
    edges = table[:, ranges(bounds[regions], n_edges)]
    block = np.repeat(np.array(edge_block, dtype=np.int64) * n, n_edges)
    roots = component_labels(total, starts[np.searchsorted(keys, block + edges[0])] + edges[1],
                             starts[np.searchsorted(keys, block + edges[2])] + edges[3])
    leaf = np.searchsorted(keys, np.array(leaf_keys, dtype=np.int64))
    reaches_leaf = np.zeros(total, dtype=bool)  # roots are vertex ids: mark those the leaves reach
    reaches_leaf[roots[ranges(starts[leaf], sizes[leaf])]] = True
    covered = reaches_leaf[roots]
    reached_roots, inverse = np.unique(roots[covered], return_inverse=True)
    firsts = np.cumsum(counts) - counts  # first instance of each block
    block_of = np.repeat(np.arange(len(inside)), np.add.reduceat(sizes, firsts))  # each vertex's block
    dense = np.full(total, -1, dtype=np.int64)
    dense[covered] = inverse - np.searchsorted(reached_roots, starts[firsts])[block_of[covered]]  # per block
    counted = np.concatenate(([0], np.cumsum(covered)))  # reached vertices before each vertex
    n_reached = (counted[starts + sizes] - counted[starts]).tolist()
    tops = _segment_max(dense, starts, sizes)  # one numpy call, not one per space
    out = []
    for b, (spaces, closure) in enumerate(zip(inside, closures)):
        lo = int(firsts[b])
        at, sz = starts[lo:lo + len(spaces)].tolist(), sizes[lo:lo + len(spaces)].tolist()
        hit, top = n_reached[lo:lo + len(spaces)], tops[lo:lo + len(spaces)]
        full = [k for k, (h, z) in enumerate(zip(hit, sz)) if h == z]
        out.append(_Labelled({i: dense[a:a + z] for i, a, z in zip(spaces, at, sz)},
                             {i for i, h in zip(spaces, hit) if h}, {spaces[k] for k in full}, closure,
                             max((top[k] + 1 for k in full), default=0)))
    return out


def _segment_max(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> list[int]:
    """The largest of ``values[start:start + size]`` for each (start, size) of segments that follow one
    another (-1 for an empty one)."""
    out = np.full(len(starts), -1, dtype=np.int64)
    filled = sizes > 0
    if filled.any():
        out[filled] = np.maximum.reduceat(values, starts[filled])
    return out.tolist()


def _edge_columns(ends: np.ndarray, counts: np.ndarray, pos_a: np.ndarray, pos_b: np.ndarray) -> np.ndarray:
    """Columns (space a, position in a, space b, position in b): ``counts[k]`` edges for the k-th
    pair of ``ends``, their positions one pair after another in ``pos_a`` and ``pos_b``."""
    return np.stack([np.repeat(ends[:, 0], counts), pos_a, np.repeat(ends[:, 1], counts), pos_b])


def _is_function_of(labels: np.ndarray, coords: np.ndarray) -> bool:
    """Are the reached ``labels`` a non-constant function of ``coords``?"""
    mask = labels >= 0
    lab, co = labels[mask], coords[mask]
    if lab.size == 0 or np.unique(lab).size < 2:
        return False
    keys = np.unique(co * (int(lab.max()) + 1) + lab)
    return keys.size == np.unique(co).size


def _merges(comp: _Component, labelled: dict[int, _Labelled]) -> list[tuple] | None:
    """Pairs of partitions to merge so that every whole and every space is covered consistently;
    None when that cannot be reached."""
    holders: dict[int, list[int]] = {}
    for pid, lab in labelled.items():
        for i in lab.labels:
            holders.setdefault(i, []).append(pid)
    merges = []
    by_whole: dict[int, list[int]] = {}
    for w, p in comp.ties:
        by_whole.setdefault(w, []).append(p)
    for w, plist in by_whole.items():
        covering = {j: {pid for pid in holders.get(j, ()) if j in labelled[pid].reached} for j in plist}
        for pid in holders.get(w, ()):
            own = [j for j in plist if pid in covering[j]]
            if w not in labelled[pid].reached or len(own) == 1:
                continue
            if own:
                return None  # one slot holds several factors of this whole
            target = next((j for j in plist if _is_function_of(
                labelled[pid].labels[w], part_coordinates(comp.sizes[w], comp.spaces[j].part))), None)
            if target is None:
                return None
            merges.extend((pid, other) for other in covering[target])
    if merges:
        return merges
    for i, pids in holders.items():
        for pid in pids:
            if i in labelled[pid].full or i not in labelled[pid].reached:
                continue
            reached = labelled[pid].labels[i] >= 0
            rest = [q for q in pids if q != pid and i in labelled[q].reached
                    and not (reached & (labelled[q].labels[i] >= 0)).any()]
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

    known: dict[frozenset, _Labelled] = {}  # leaves -> their labels: a partition no merge touched keeps its labels
    for _ in range(len(comp.leaves) + 1):
        sets: dict[int, list[int]] = {}
        for leaf in comp.leaves:
            sets.setdefault(find(leaf), []).append(leaf)
        parts = {pid: frozenset(ls) for pid, ls in enumerate(sorted(sets.values(), key=min))}
        missing = [leaves for leaves in parts.values() if leaves not in known]
        known.update(zip(missing, _labels(comp, missing)))
        labelled = {pid: known[leaves] for pid, leaves in parts.items()}
        merges = _merges(comp, labelled)
        if merges is None:
            return False
        if not merges:
            return [_partition(comp, parts[pid], labelled[pid], markers) for pid in parts]
        for a, b in merges:
            root[find(min(parts[a]))] = find(min(parts[b]))
    return False


def _partition(comp: _Component, leaves, labelled: _Labelled, markers: dict) -> Partition:
    full = sorted(labelled.full)
    labels = labelled.labels
    n_slots = labelled.n_slots
    inside = {comp.spaces[i] for i in full}
    links = [comp.links[k] for r in labelled.closure for k in comp.region_links[r]
             if comp.links[k].a in inside and comp.links[k].b in inside]
    return Partition([comp.spaces[i] for i in full], {comp.spaces[i]: labels[i] for i in full}, n_slots, links,
                     _kind(comp, leaves, markers), frozenset(leaves))
