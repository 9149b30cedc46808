"""Build the space graph, the dependency groups and their slots.

1. Every node's rule is evaluated once (rules only describe; nothing is mutated). Splits and
   merges that reach attention heads are linked factor by factor (:mod:`.factoring`), the
   others keep their plain form.
2. Starting from the axes of initializers that rules link (the parameters), a breadth-first
   flood follows links (and the ties between an axis and its parts) to every coupled space.
   When it stalls, pending :class:`Choice` objects (split/merged axes) are resolved one at a
   time and the flood continues.
3. Every reached space is checked against every node that touches its tensor: each must
   explain it (link, explained set or chosen option); otherwise the space gets a barrier with
   a reason. Graph inputs/outputs, non-static sizes and overridable initializers are barriers
   (:mod:`.barriers`).
4. networkx connected components of the space graph are the groups; within a group, a
   union-find over positions (numpy, :mod:`.components`) gives slots. A component whose axes
   are split into factors gives one group per family of factors (:mod:`.partitions`): heads,
   head dims. ``attention`` says which of those families may be pruned.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from operator import itemgetter

import onnx

from ..errors import UsageError
from ..graph.gc_pause import gc_paused
from ..graph.index import GraphIndex
from ..graph.nodes import has_subgraph
from ..rules import DEFAULT_RULES
from ..rules.base import Choice, Link, RuleContext, RuleResult, Space, space_size
from ..rules.shapevalue import ShapeValues
from ..vocabulary import ATTENTION_MODES
from .attention import attention_blocks
from .barriers import size_use_barriers
from .factoring import decide_factorings, derived_part_links, effective_result
from .groups import GroupMaker
from .partitions import KINDS, partition_component
from .types import Analysis, Group

log = logging.getLogger(__name__)

_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}


_UNKNOWN = object()


@dataclass
class _NodeInfo:
    name: str
    op: str
    result: RuleResult | None
    reason: str = ""
    mentioned: set = field(default_factory=set)
    chosen: dict = field(default_factory=dict)  # choice index -> option index


def _evaluate_rules(index: GraphIndex, values: ShapeValues, rules) -> dict[str, _NodeInfo]:
    infos: dict[str, _NodeInfo] = {}
    found: dict[tuple[str, str], tuple] = {}  # (domain, op type) -> (rule, label), looked up once
    for name in index.node_order:
        node = index.nodes[name]
        domain, op_type = node.domain or "", node.op_type
        hit = found.get((domain, op_type))
        if hit is None:
            hit = found[domain, op_type] = (rules.lookup(domain, op_type, index.opset(domain)),
                                            op_type if domain in ("", "ai.onnx") else f"{domain}.{op_type}")
        fn, label = hit
        if fn is None:
            known = "opset" if rules.lookup(domain, node.op_type, 10**6) or rules.lookup(domain, node.op_type, 1) else "op"
            why = (f"{label} node {name}: no rule for this {known}"
                   + (f" at opset {index.opset(domain)}" if known == "opset" else ""))
            if has_subgraph(node):
                why = f"{label} node {name}: subgraph ops are barriers"
            infos[name] = _NodeInfo(name, label, None, why)
            continue
        try:
            result = fn(RuleContext(index, node, values))
        except Exception as exc:  # noqa: BLE001 - a failing rule is a barrier, never a crash
            log.debug("rule for %s failed", name, exc_info=True)
            infos[name] = _NodeInfo(name, label, None, f"{label} node {name}: rule failed ({exc})")
            continue
        infos[name] = _NodeInfo(name, label, result)
    return infos


def _resolved(raw: dict[str, _NodeInfo], accepted: set, derived: dict) -> dict[str, _NodeInfo]:
    """Fresh node infos whose results have their factorings resolved (what the flood reads)."""
    infos: dict[str, _NodeInfo] = {}
    for name, info in raw.items():
        if info.result is None:
            infos[name] = info
            continue
        result = effective_result(name, info.result, accepted, derived)
        out = _NodeInfo(name, info.op, result)
        for link in result.links:
            out.mentioned.add(link.a)
            out.mentioned.add(link.b)
        out.mentioned |= result.explained
        # a node that links the parts of an axis (its factors, which tile it) explains the axis
        out.mentioned |= {s.whole for s in out.mentioned if s.is_part}
        infos[name] = out
    return infos


class _Flood:
    """Breadth-first discovery of spaces reachable from parameter axes."""

    def __init__(self, index: GraphIndex, infos: dict[str, _NodeInfo]):
        self.index = index
        self.infos = infos
        self.adj: dict[Space, list[Link]] = {}
        self.links: list[Link] = []
        self.discovered: set[Space] = set()
        self.queue: deque[Space] = deque()
        self.pending: list[tuple[_NodeInfo, int, Choice]] = []
        self.choice_spaces: dict[Space, list[tuple[_NodeInfo, int]]] = {}
        #: parts of every axis of static size that some link names (tied to their axis)
        self.parts_of: dict[Space, set[Space]] = {}
        #: size of every space asked for (from the shapes; those shape inference left unknown are
        #: filled from identity links by complete_sizes)
        self._sizes: dict[Space, object] = {}
        for info in infos.values():
            result = info.result
            if result is None:
                continue
            for link in result.links:
                self._add_link(link)
            if result.explained:
                self._add_parts(result.explained)
            if result.heads:
                self._add_parts(result.heads)
            for ci, choice in enumerate(result.choices):
                self.pending.append((info, ci, choice))
                for opt in choice.options:
                    for link in opt:
                        for s in (link.a, link.b):
                            self.choice_spaces.setdefault(s, []).append((info, ci))

    def size(self, space: Space):
        size = self._sizes.get(space, _UNKNOWN)
        if size is _UNKNOWN:
            size = self._sizes[space] = space_size(self.index.shape(space.tensor), space)
        return size

    def _add_link(self, link: Link) -> None:
        a, b = link.a, link.b
        sizes = self._sizes  # read here, not through size(): two calls for every link of the graph
        sa, sb = sizes.get(a, _UNKNOWN), sizes.get(b, _UNKNOWN)
        if sa is _UNKNOWN:
            sa = self.size(a)
        if sb is _UNKNOWN:
            sb = self.size(b)
        if isinstance(sa, int) and isinstance(sb, int) and sa <= 1 and sb <= 1:
            return  # nothing to prune on axes of size 1
        self.links.append(link)
        adj = self.adj
        adj.setdefault(a, []).append(link)
        if b != a:
            adj.setdefault(b, []).append(link)
        if a.part or b.part:
            self._add_parts((a, b))

    def _add_parts(self, spaces) -> None:
        for s in spaces:
            if s.part and isinstance(self.size(s.whole), int):
                self.parts_of.setdefault(s.whole, set()).add(s)

    def ties(self) -> list[tuple[Space, Space]]:
        """(axis, part) of every reached part of an axis of static size."""
        return [(w, p) for w, parts in self.parts_of.items() if w in self.discovered
                for p in sorted(parts) if p in self.discovered]

    def seeds(self) -> list[Space]:
        """Axes of floating-point initializers (weights) that some rule links."""
        out = []
        initializers = self.index.initializers
        for space in self.adj:
            if space.tensor not in initializers:
                continue  # most linked spaces: tested on the tensor's name, no space hashed
            size = self.size(space)
            if (isinstance(size, int) and size >= 2
                    and self.index.elem_type_of_initializer(space.tensor) in _FLOAT_TYPES):
                out.append(space)
        return sorted(out)

    def visit(self, space: Space) -> None:
        if space not in self.discovered:
            self.discovered.add(space)
            self.queue.append(space)
            if space.is_part and space.whole in self.parts_of:
                self.visit(space.whole)
            for part in self.parts_of.get(space, ()):
                self.visit(part)

    def run(self) -> None:
        discovered = self.discovered
        for s in self.seeds():
            self.visit(s)
        while True:
            while self.queue:
                space = self.queue.popleft()
                for link in self.adj.get(space, ()):
                    other = link.b if link.a == space else link.a
                    if other not in discovered:  # most ends are reached already: no call then
                        self.visit(other)
            if not self._resolve_one_choice():
                break

    def complete_sizes(self) -> None:
        """An identity link joins spaces of equal size: fill sizes that shape inference left unknown.

        (ONNX shape inference gives ``Reshape(x, Concat(Shape(x)[0], -1))`` a ``None`` axis even
        when the consumer's weight fixes its size.)
        """
        if None not in self._sizes.values():
            return  # every linked space has a size (the ends of every link are sized when it is added)
        queue = deque(s for s in self.adj if self.size(s) is not None)
        while queue:
            space = queue.popleft()
            for link in self.adj[space]:
                other = link.b if link.a == space else link.a
                if link.identity and self.size(other) is None:
                    self._sizes[other] = self.size(space)
                    queue.append(other)

    def _resolve_one_choice(self) -> bool:
        for k, (info, ci, choice) in enumerate(self.pending):
            touched = [i for i in range(len(choice.options)) if choice.own_spaces(i) & self.discovered]
            common_hit = bool(set(choice.common) & self.discovered)
            if not touched and not common_hit:
                continue
            best = max(touched, key=lambda i: (len(choice.own_spaces(i) & self.discovered), -i)) if touched else 0
            info.chosen[ci] = best
            for link in choice.options[best]:
                self._add_link(link)
                info.mentioned.add(link.a)
                info.mentioned.add(link.b)
                for s in (link.a, link.b):
                    if s in self.discovered:
                        self.queue.append(s)
            del self.pending[k]
            return True
        return False




def analyze(index: GraphIndex, rules=DEFAULT_RULES, attention: str = "both") -> Analysis:
    """Analyze a (normalized) model with ``rules``: groups, slots, barriers, fix-ups.

    ``attention``: which families of split attention axes may be pruned: ``both`` (whole heads
    and head dims, each its own group), ``heads`` or ``dims`` (the other family is kept).
    """
    if attention not in ATTENTION_MODES:
        raise UsageError(f"--attention must be one of {', '.join(ATTENTION_MODES)}, got {attention!r}")
    with gc_paused():  # many small objects, no cycles: see graph.gc_pause
        return _analyze(index, rules, attention)


def _analyze(index: GraphIndex, rules, attention: str) -> Analysis:
    values = ShapeValues(index)
    raw = _evaluate_rules(index, values, rules)
    derived = derived_part_links(index, raw)
    accepted = decide_factorings(raw, derived)
    while True:
        infos = _resolved(raw, accepted, derived)
        flood = _Flood(index, infos)
        flood.run()
        flood.complete_sizes()
        maker = GroupMaker(index, infos, flood.size, size_use_barriers(index, infos, values, flood.discovered),
                           attention)
        groups, failed = _groups(flood, maker, infos)
        rejected = {key for key in accepted if _factoring_spaces(raw, key) & failed} if failed else set()
        if not rejected:
            break
        log.debug("%d splits kept whole: their factors cannot be pruned apart consistently", len(rejected))
        accepted -= rejected
    space_groups: dict[Space, tuple] = {}
    for group in groups:
        for s in group.spaces:
            space_groups[s] = space_groups.get(s, ()) + (group.id,)
    fixups = [fx for info in infos.values() if info.result is not None for fx in info.result.fixups]
    unknown = {n: i.reason for n, i in infos.items() if i.result is None}
    return Analysis(index, groups, fixups, unknown, {s: ids[0] for s, ids in space_groups.items()}, space_groups,
                    attention_blocks(groups))


def _factoring_spaces(raw: dict, key: tuple) -> set[Space]:
    name, k = key
    factoring = raw[name].result.factorings[k]
    return {s for link in factoring.factored.links for s in (link.a, link.b)}


def _groups(flood: _Flood, maker: GroupMaker, infos: dict) -> tuple[list[Group], set[Space]]:
    """Groups of every component (one per family of factors where axes are split), and the
    spaces of components whose factors could not be kept apart."""
    import networkx as nx  # imported here, not above: `prune` imports it beside loading the model (lazy.import_beside)

    discovered = flood.discovered
    links_by_space: dict[Space, list[Link]] = {}  # the links of a reached space (both ends are reached)
    for link in flood.links:
        if link.a in discovered:
            links_by_space.setdefault(link.a, []).append(link)
    graph = nx.Graph()
    graph.add_nodes_from(discovered)
    graph.add_edges_from((link.a, link.b) for links in links_by_space.values() for link in links)
    graph.add_edges_from(flood.ties())
    markers = {s: role for info in infos.values() if info.result is not None for s, role in info.result.heads.items()}
    groups: list[Group] = []
    failed: set[Space] = set()
    for comp in sorted((sorted(c) for c in nx.connected_components(graph)), key=itemgetter(0)):
        links = [lk for s in comp for lk in links_by_space.get(s, ())]
        parts = None
        if any(s.part for s in comp):  # else no axis of it is split into factors (most components)
            sizes = {s: flood.size(s) for s in comp}
            if all(isinstance(v, int) for v in sizes.values()):
                parts = partition_component(comp, links, sizes, markers)
        if parts is False:
            failed.update(comp)
            continue
        if parts is None:
            group = maker.whole(len(groups), comp, links)
            if group is not None:
                groups.append(group)
            continue
        for part in sorted(parts, key=lambda p: (KINDS.index(p.kind), p.spaces[0])):
            group = maker.partition(len(groups), part)  # ids count the groups made so far
            if group is not None:
                groups.append(group)
    return groups, failed
