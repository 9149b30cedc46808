"""Which splits and merges are linked factor by factor, and the links that carry parts along.

A rule may describe a split or merge of an axis as a :class:`~graphprune.rules.base.Factoring`:
its factors linked one by one through parts of the axis, or (``plain``) one factor chosen to
carry the channels. Factors are worth keeping apart where they are attention heads: a factoring
is used when one of the axes it links (or the axis it splits) is connected, by the rules' links,
to a space a rule marks as holding heads (``RuleResult.heads``). Everywhere else the plain form
stays, so models without attention analyse exactly as before.

A part of an axis of symbolic size (``4*batch``: heads folded into the batch) has no whole axis
with positions to tie it to; it travels along the identity links of its axis instead (a
Transpose of that axis carries the part to the output axis).
"""
from __future__ import annotations

from collections import deque

import numpy as np

from ..graph.index import GraphIndex
from ..rules.base import Link, RuleResult, Space
from .components import component_labels


class _Regions:
    """The components of the spaces that links join: a numpy union-find over the spaces numbered as
    met (:mod:`.components`). 20k-node chain: decide_factorings 60 -> 37 ms against a union-find
    of dicts (a Python call per link end)."""

    def __init__(self, links: list[Link]):
        self.ids: dict[Space, int] = {}
        ids, number = self.ids, self.ids.setdefault  # one hash per end: hashing spaces is most of the cost
        ends = np.array([number(s, len(ids)) for lk in links for s in (lk.a, lk.b)], dtype=np.int64).reshape(-1, 2)
        self.roots: list[int] = component_labels(len(ids), ends[:, 0], ends[:, 1]).tolist()

    def find(self, space: Space):
        """The region of ``space``: its component's representative, or the space itself when no link names it."""
        i = self.ids.get(space)
        return space if i is None else self.roots[i]


def decide_factorings(infos: dict, derived: dict) -> set[tuple[str, int]]:
    """(node, index) of every factoring to use.

    A factoring is used when the axes it links, or the axis it splits, are connected to a space
    marked as holding heads, or when it links a factor that a used factoring links too (the key
    projection's split shares its key/value heads with repeat_kv's merge of them).
    """
    links: list[Link] = []
    marked = []
    factored = {}  # (node, index) -> the factored form of that factoring
    for name, info in infos.items():
        result = info.result
        if result is None:
            continue
        links += result.links
        for k, factoring in enumerate(result.factorings):
            links += factoring.factored.links
            factored[(name, k)] = factoring.factored
        links += derived.get(name, ())
        marked.extend(result.heads)
    regions = _Regions(links)
    marked_roots = {regions.find(s) for s in marked}
    pending = {}
    for key, form in factored.items():
        factors = {regions.find(link.a) for link in form.links}
        factors |= {regions.find(s) for s in form.explained | set(form.heads)}
        wholes = {regions.find(s.whole) for link in form.links for s in (link.a, link.b) if s.is_part}
        pending[key] = (factors, wholes)
    accepted, factor_roots = set(), set()
    changed = True
    while changed:
        changed = False
        for key, (factors, wholes) in list(pending.items()):
            if (factors | wholes) & marked_roots or factors & factor_roots:
                accepted.add(key)
                factor_roots |= factors
                del pending[key]
                changed = True
    return accepted


def effective_result(name: str, result: RuleResult, accepted: set, derived: dict) -> RuleResult:
    """The node's result with each factoring resolved (factored or plain) and derived part links."""
    if not result.factorings and name not in derived:
        return result
    out = RuleResult(list(result.links), set(result.explained), dict(result.reasons), list(result.fixups),
                     list(result.choices), set(result.size_uses), result.view, dict(result.heads))
    for k, factoring in enumerate(result.factorings):
        out.merge(factoring.factored if (name, k) in accepted else factoring.plain)
    out.links.extend(derived.get(name, ()))
    return out


def _symbolic(index: GraphIndex, space: Space) -> bool:
    shape = index.shape(space.tensor)
    return shape is None or space.axis >= len(shape) or not isinstance(shape[space.axis], int)


def derived_part_links(index: GraphIndex, infos: dict) -> dict[str, list[Link]]:
    """node -> links carrying parts of symbolic axes along that node's identity links of whole axes."""
    starts = set()
    for info in infos.values():
        if info.result is None:
            continue
        for r in [info.result] + [f.factored for f in info.result.factorings]:
            for link in r.links:
                if link.a.part and _symbolic(index, link.a):
                    starts.add(link.a)
                if link.b.part and _symbolic(index, link.b):
                    starts.add(link.b)
    if not starts:
        return {}
    whole_links: dict[Space, list[tuple[str, Space]]] = {}
    for name, info in infos.items():
        if info.result is None:
            continue
        for link in info.result.links:
            if link.identity and not link.a.is_part and not link.b.is_part and link.a != link.b \
                    and _symbolic(index, link.a) and _symbolic(index, link.b):
                whole_links.setdefault(link.a, []).append((name, link.b))
                whole_links.setdefault(link.b, []).append((name, link.a))
    out: dict[str, list[Link]] = {}
    seen = set(starts)
    queue = deque(starts)
    while queue:
        part = queue.popleft()
        for name, other in whole_links.get(part.whole, ()):
            carried = Space(other.tensor, other.axis, part.part)
            out.setdefault(name, []).append(Link(part, carried))
            if carried not in seen:
                seen.add(carried)
                queue.append(carried)
    return out
