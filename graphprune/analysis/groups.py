"""Groups from the reached spaces: their parameters, barriers, slots and names.

A component of the space graph becomes one group (slots: a union-find over the positions its
links tie), or, when its axes are split into factors, one group per partition
(:mod:`.partitions`): the heads, the query heads of one key/value head, the head dims.
"""
from __future__ import annotations

import numpy as np

from ..graph.index import GraphIndex
from ..rules.base import CONSUMER, PRODUCER, Link, Space
from .barriers import space_barriers, touching_nodes
from .components import component_labels, ranges
from .partitions import Partition
from .types import Barrier, Group, ParamSlice

KV_RATIO = ("grouped-query attention keeps its query/key-value head ratio (the query heads of one key/value "
            "head go with it)")
#: why a family of factors is kept, per ``--attention`` choice (``vocabulary.ATTENTION_MODES``); the
#: query heads of one key/value head always go with it (grouped-query attention keeps its ratio)
KEPT_KINDS = {
    "both": {"query": KV_RATIO},
    "heads": {"query": KV_RATIO, "dims": "head dims are kept (--attention heads)"},
    "dims": {"heads": "whole heads are kept (--attention dims)", "query": "whole heads are kept (--attention dims)"},
}


def slots(spaces: list[Space], sizes: dict, links: list[Link]) -> tuple[int, dict, list[str]]:
    """Union-find over positions: returns (slot count, slot ids per space, consistency errors)."""
    offset = {}
    total = 0
    for s in spaces:
        offset[s] = total
        total += sizes[s]
    rows, cols, errors = [], [], []
    same: list[tuple[int, int, int]] = []  # identity links: (offset of a, offset of b, size), expanded at once
    for link in links:
        na, nb = sizes[link.a], sizes[link.b]
        if link.pairs is None:
            if na != nb:
                errors.append(f"{link.a} and {link.b} are the same channels but have sizes {na} and {nb}")
                continue
            same.append((offset[link.a], offset[link.b], na))
        else:
            pa, pb = link.pairs[:, 0], link.pairs[:, 1]
            if pa.size and (pa.max() >= na or pb.max() >= nb or pa.min() < 0 or pb.min() < 0):
                errors.append(f"position map between {link.a} and {link.b} is out of range")
                continue
            rows.append(pa + offset[link.a])
            cols.append(pb + offset[link.b])
    if errors:
        return 0, {}, errors
    if same:
        at_a, at_b, counts = np.array(same, dtype=np.int64).T
        positions = ranges(np.zeros(len(same), np.int64), counts)
        rows.append(np.repeat(at_a, counts) + positions)
        cols.append(np.repeat(at_b, counts) + positions)
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    labels = component_labels(total, r, c)
    # slot ids dense and in order of first appearance: a component's representative is its smallest
    # position, where it first appears, so numbering the representatives in order does it (no sort)
    is_root = labels == np.arange(total)
    dense = (np.cumsum(is_root) - 1)[labels]
    n_slots = int(is_root.sum())
    slot_of = {s: dense[offset[s]:offset[s] + sizes[s]] for s in spaces}
    return n_slots, slot_of, []


def layer(index: GraphIndex, tensor: str) -> str:
    """``node (op_type)`` of the first node reading ``tensor`` (else of its producer), or ""."""
    uses = [u for u in index.uses(tensor) if u.index >= 0]
    name = uses[0].node if uses else index.producer.get(tensor)
    return f"{name} ({index.nodes[name].op_type})" if name is not None else ""


class GroupMaker:
    """Builds :class:`Group` values; barriers of a space are computed once (spaces can be in
    several groups when their axis is split into factors)."""

    def __init__(self, index: GraphIndex, infos: dict, size_of, size_barriers: dict, attention: str = "both"):
        self.index, self.infos, self.size_of = index, infos, size_of
        self.size_barriers = size_barriers
        self.kept_kinds = KEPT_KINDS[attention]
        self._barriers: dict[Space, list[Barrier]] = {}
        self._touching: dict[str, list[str]] = {}  # tensor -> touching_nodes (its axes and parts share them)

    def touching(self, tensor: str) -> list[str]:
        out = self._touching.get(tensor)
        if out is None:
            out = self._touching[tensor] = touching_nodes(self.index, tensor)
        return out

    def barriers(self, space: Space) -> list[Barrier]:
        out = self._barriers.get(space)
        if out is None:
            whole_static = isinstance(self.size_of(space.whole), int)
            out = space_barriers(self.index, self.infos, space, self.size_of(space), whole_static,
                                 self.touching(space.tensor))
            out += self.size_barriers.get(space, [])
            self._barriers[space] = out
        return out

    def _params(self, spaces, links: list[Link]) -> dict | None:
        initializers = self.index.initializers
        weights = [s for s in spaces if not s.part and s.tensor in initializers]
        if not weights:
            return None  # batch/spatial couplings without parameters: nothing to prune
        # roles, tags and neutral value gathered first, each slice made once (not once per link)
        roles = {s: set() for s in weights}
        tags = {s: set() for s in weights}
        neutral = dict.fromkeys(weights, 0.0)
        for link in links:
            for s in (link.a, link.b):
                if s.tensor not in initializers:
                    continue  # an activation (most link ends): no need to hash the space
                s = s.whole  # a part's role is its axis' role
                if s in roles:
                    roles[s].add(link.role)
                    tags[s].add(link.tag)
                    if link.neutral:
                        neutral[s] = link.neutral
        if not any(PRODUCER in r or CONSUMER in r for r in roles.values()):
            # only elementwise constants (e.g. a detection grid added along spatial axes): no weight
            # writes or reads these positions, so they are not channels of the network
            return None
        return {s: ParamSlice(s, frozenset(roles[s]), frozenset(tags[s]), neutral[s]) for s in weights}

    def _group(self, gid: int, spaces: list[Space], links: list[Link], params: dict, kind: str = "") -> Group:
        index = self.index
        sizes = {s: self.size_of(s) for s in spaces}
        nodes = sorted({n for s in spaces for n in self.touching(s.tensor)}, key=index.node_pos.__getitem__)
        contractions = sorted({lk.a for lk in links if lk.role == CONSUMER and not index.is_constant(lk.a.tensor)
                               and not index.is_constant(lk.b.tensor)})
        barriers = [b for s in spaces for b in self.barriers(s)]
        if kind in self.kept_kinds:
            barriers.append(Barrier(spaces[0], self.kept_kinds[kind], None))
        group = Group(gid, tuple(spaces), sizes, tuple(dict.fromkeys(barriers)),
                      tuple(params[s] for s in spaces if s in params), tuple(nodes),
                      contractions=tuple(contractions), kind=kind)
        group.layer = layer(index, group.representative.tensor)
        return group

    def whole(self, gid: int, comp: list[Space], links: list[Link]) -> Group | None:
        """One group for a component: slots are the union-find of its links."""
        params = self._params(comp, links)
        if params is None:
            return None
        group = self._group(gid, comp, links, params)
        if all(isinstance(v, int) for v in group.sizes.values()):
            n_slots, slot_of, errors = slots(comp, group.sizes, links)
            if errors:
                group.barriers = tuple(dict.fromkeys(group.barriers + tuple(Barrier(comp[0], e) for e in errors)))
            group.n_slots, group.slot_of = n_slots, slot_of
        return group

    def partition(self, gid: int, part: Partition) -> Group | None:
        """One group for a family of factors of a component."""
        params = self._params(part.spaces, part.links)
        if params is None:
            return None
        group = self._group(gid, part.spaces, part.links, params, part.kind)
        group.n_slots, group.slot_of = part.n_slots, dict(part.labels)
        return group
