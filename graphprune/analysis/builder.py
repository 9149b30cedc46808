"""Build the space graph, the dependency groups and their slots.

1. Every node's rule is evaluated once (rules only describe; nothing is mutated).
2. Starting from the axes of initializers that rules link (the parameters), a breadth-first
   flood follows links to every coupled space. When it stalls, pending :class:`Choice`
   objects (split/merged axes) are resolved one at a time and the flood continues.
3. Every reached space is checked against every node that touches its tensor: each must
   explain it (link, explained set or chosen option); otherwise the space gets a barrier with
   a reason. Graph inputs/outputs, non-static sizes and overridable initializers are barriers.
4. networkx connected components of the space graph are the groups; within a group, a
   union-find over positions (numpy, :mod:`.components`) gives slots.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import onnx

from ..graph.index import GraphIndex
from .components import component_labels
from ..graph.nodes import has_subgraph, inputs, outputs
from ..rules import DEFAULT_RULES
from ..rules.base import CONSUMER, PRODUCER, Choice, Link, RuleContext, RuleResult, Space
from ..rules.shapevalue import ShapeValues, copies_values
from .types import Analysis, Barrier, Group, ParamSlice

log = logging.getLogger(__name__)

_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}


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
    for name in index.node_order:
        node = index.nodes[name]
        domain = node.domain or ""
        fn = rules.lookup(domain, node.op_type, index.opset(domain))
        label = f"{node.op_type}" if domain in ("", "ai.onnx") else f"{domain}.{node.op_type}"
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
        info = _NodeInfo(name, label, result)
        for link in result.links:
            info.mentioned.add(link.a)
            info.mentioned.add(link.b)
        info.mentioned |= result.explained
        infos[name] = info
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
        #: sizes shape inference left unknown, filled from identity links (see complete_sizes)
        self.inferred_sizes: dict[Space, int | str] = {}
        for info in infos.values():
            if info.result is None:
                continue
            for link in info.result.links:
                self._add_link(link)
            for ci, choice in enumerate(info.result.choices):
                self.pending.append((info, ci, choice))
                for opt in choice.options:
                    for link in opt:
                        for s in (link.a, link.b):
                            self.choice_spaces.setdefault(s, []).append((info, ci))

    def size(self, space: Space):
        if space in self.inferred_sizes:
            return self.inferred_sizes[space]
        shape = self.index.shape(space.tensor)
        if shape is None or space.axis >= len(shape):
            return None
        return shape[space.axis]

    def _add_link(self, link: Link) -> None:
        sa, sb = self.size(link.a), self.size(link.b)
        if isinstance(sa, int) and isinstance(sb, int) and sa <= 1 and sb <= 1:
            return  # nothing to prune on axes of size 1
        self.links.append(link)
        self.adj.setdefault(link.a, []).append(link)
        if link.b != link.a:
            self.adj.setdefault(link.b, []).append(link)

    def seeds(self) -> list[Space]:
        """Axes of floating-point initializers (weights) that some rule links."""
        out = []
        for space in self.adj:
            size = self.size(space)
            if (self.index.is_constant(space.tensor) and isinstance(size, int) and size >= 2
                    and self.index.elem_type_of_initializer(space.tensor) in _FLOAT_TYPES):
                out.append(space)
        return sorted(out)

    def visit(self, space: Space) -> None:
        if space not in self.discovered:
            self.discovered.add(space)
            self.queue.append(space)

    def run(self) -> None:
        for s in self.seeds():
            self.visit(s)
        while True:
            while self.queue:
                space = self.queue.popleft()
                for link in self.adj.get(space, ()):
                    self.visit(link.b if link.a == space else link.a)
            if not self._resolve_one_choice():
                break

    def complete_sizes(self) -> None:
        """An identity link joins spaces of equal size: fill sizes that shape inference left unknown.

        (ONNX shape inference gives ``Reshape(x, Concat(Shape(x)[0], -1))`` a ``None`` axis even
        when the consumer's weight fixes its size.)
        """
        queue = deque(s for s in self.adj if self.size(s) is not None)
        while queue:
            space = queue.popleft()
            for link in self.adj[space]:
                other = link.b if link.a == space else link.a
                if link.identity and self.size(other) is None:
                    self.inferred_sizes[other] = self.size(space)
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


def _touching_nodes(index: GraphIndex, tensor: str) -> list[str]:
    names = [u.node for u in index.uses(tensor)]
    prod = index.producer.get(tensor)
    if prod is not None:
        names.append(prod)
    return list(dict.fromkeys(names))


def _space_barriers(index: GraphIndex, infos: dict[str, _NodeInfo], flood: _Flood, space: Space) -> list[Barrier]:
    out: list[Barrier] = []
    t = space.tensor
    size = flood.size(space)
    if not isinstance(size, int):
        out.append(Barrier(space, f"axis {space.axis} of {t} has no static size", None))
    if t in index.graph_inputs:
        out.append(Barrier(space, f"{t} is a graph input", None))
    if t in index.graph_outputs:
        out.append(Barrier(space, f"{t} is a graph output", None))
    if t in index.initializer_inputs and index.strict_initializer_inputs:
        out.append(Barrier(space, f"initializer {t} is also a graph input (it can be overridden at run time; "
                                  "drop --strict-initializer-inputs to treat it as a weight)", None))
    if t not in index.producer and t not in index.initializers and t not in index.graph_inputs:
        out.append(Barrier(space, f"{t} has no producer", None))
    for name in _touching_nodes(index, t):
        info = infos[name]
        if info.result is None:
            out.append(Barrier(space, info.reason, name))
        elif space in info.result.reasons:
            out.append(Barrier(space, info.result.reasons[space], name))
        elif any(u.index == -1 for u in index.uses(t) if u.node == name):
            out.append(Barrier(space, f"{info.op} node {name} reads {t} inside a subgraph", name))
        elif space not in info.mentioned:
            out.append(Barrier(space, f"{info.op} node {name} does not explain axis {space.axis} of {t}", name))
    return out


def _size_use_barriers(index: GraphIndex, infos, values: ShapeValues, discovered: set) -> dict:
    """Barriers for channel spaces whose *size* is read as data (Shape/Size feeding arithmetic...).

    A size may flow through copies (Gather, Concat, Unsqueeze...) into a shape input whose rule
    links it to the channels it describes; any other use would silently change after pruning.
    """
    by_tensor: dict[str, list[Space]] = {}
    for s in discovered:
        by_tensor.setdefault(s.tensor, []).append(s)
    out: dict[Space, list[Barrier]] = {}
    for name in index.node_order:
        node = index.nodes[name]
        if node.op_type not in ("Shape", "Size") or node.domain not in ("", "ai.onnx"):
            continue
        spaces = by_tensor.get(inputs(node)[0] if node.inputs else "")
        if not spaces:
            continue
        stack, seen = [outputs(node)[0]], set()
        while stack:
            t = stack.pop()
            if t in seen:
                continue
            seen.add(t)
            if t in index.graph_outputs:
                for sp in spaces:
                    out.setdefault(sp, []).append(Barrier(sp, f"the size of {sp} is a graph output ({t})", name))
            for use in index.uses(t):
                consumer = index.nodes[use.node]
                if use.index >= 0 and copies_values(consumer, use.index):
                    stack.extend(o for o in outputs(consumer) if o)
                    continue
                entries = values.value(t)
                for sp in spaces:
                    dep = (sp.tensor, sp.axis)
                    if entries is None:
                        bad = True
                    else:
                        result = infos[consumer.name].result
                        follows = result is not None and sp in result.size_uses
                        bad = any(dep in e.deps and not (e.is_dim and e.source[1:] == dep and follows)
                                  for e in entries)
                    if bad:
                        out.setdefault(sp, []).append(Barrier(
                            sp, f"{consumer.op_type} node {consumer.name} uses the size of {sp} as data", consumer.name))
    return out


def _slots(spaces: list[Space], sizes: dict, links: list[Link]) -> tuple[int, dict, list[str]]:
    """Union-find over positions: returns (slot count, slot ids per space, consistency errors)."""
    offset = {}
    total = 0
    for s in spaces:
        offset[s] = total
        total += sizes[s]
    rows, cols, errors = [], [], []
    for link in links:
        na, nb = sizes[link.a], sizes[link.b]
        if link.pairs is None:
            if na != nb:
                errors.append(f"{link.a} and {link.b} are the same channels but have sizes {na} and {nb}")
                continue
            p = np.arange(na, dtype=np.int64)
            rows.append(p + offset[link.a])
            cols.append(p + offset[link.b])
        else:
            pa, pb = link.pairs[:, 0], link.pairs[:, 1]
            if pa.size and (pa.max() >= na or pb.max() >= nb or pa.min() < 0 or pb.min() < 0):
                errors.append(f"position map between {link.a} and {link.b} is out of range")
                continue
            rows.append(pa + offset[link.a])
            cols.append(pb + offset[link.b])
    if errors:
        return 0, {}, errors
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    labels = component_labels(total, r, c)
    # relabel in order of first appearance so slot ids are deterministic and dense
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    dense = order[inverse]
    n_slots = int(dense.max()) + 1 if dense.size else 0
    slot_of = {s: dense[offset[s]:offset[s] + sizes[s]] for s in spaces}
    return n_slots, slot_of, []


def analyze(index: GraphIndex, rules=DEFAULT_RULES) -> Analysis:
    """Analyze a (normalized) model with ``rules``: groups, slots, barriers, fix-ups."""
    values = ShapeValues(index)
    infos = _evaluate_rules(index, values, rules)
    flood = _Flood(index, infos)
    flood.run()
    flood.complete_sizes()
    size_barriers = _size_use_barriers(index, infos, values, flood.discovered)
    graph = nx.Graph()
    graph.add_nodes_from(flood.discovered)
    for link in flood.links:
        if link.a in flood.discovered:
            graph.add_edge(link.a, link.b)
    components = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: c[0])
    groups: list[Group] = []
    space_group: dict[Space, int] = {}
    links_by_space: dict[Space, list[Link]] = {}
    for link in flood.links:
        links_by_space.setdefault(link.a, []).append(link)
    for comp in components:
        group = _build_group(index, infos, flood, comp, links_by_space, len(groups), size_barriers)
        if group is None:
            continue
        for s in group.spaces:
            space_group[s] = group.id
        groups.append(group)
    fixups = []
    for info in infos.values():
        if info.result is not None:
            fixups.extend(info.result.fixups)
    unknown = {n: i.reason for n, i in infos.items() if i.result is None}
    return Analysis(index, groups, fixups, unknown, space_group)


def _build_group(index, infos, flood, comp, links_by_space, gid, size_barriers) -> Group | None:
    params = {}
    for s in comp:
        if index.is_constant(s.tensor):
            params[s] = ParamSlice(s, frozenset(), frozenset())
    if not params:
        return None  # batch/spatial couplings without parameters: nothing to prune
    comp_set = set(comp)
    links = [lk for s in comp for lk in links_by_space.get(s, ()) if lk.b in comp_set]
    for link in links:
        for s in (link.a, link.b):
            if s in params:
                p = params[s]
                params[s] = ParamSlice(s, p.roles | {link.role}, p.tags | {link.tag},
                                       link.neutral if link.neutral else p.neutral)
    if not any(p.roles & {PRODUCER, CONSUMER} for p in params.values()):
        # only elementwise constants (e.g. a detection grid added along spatial axes): no weight
        # writes or reads these positions, so they are not channels of the network
        return None
    barriers = []
    for s in comp:
        barriers.extend(_space_barriers(index, infos, flood, s))
        barriers.extend(size_barriers.get(s, ()))
    sizes = {s: flood.size(s) for s in comp}
    nodes = sorted({n for s in comp for n in _touching_nodes(index, s.tensor)}, key=index.node_pos.__getitem__)
    contractions = sorted({lk.a for lk in links if lk.role == CONSUMER and not index.is_constant(lk.a.tensor)
                           and not index.is_constant(lk.b.tensor)})
    group = Group(gid, tuple(comp), sizes, (), tuple(params[s] for s in comp if s in params), tuple(nodes),
                  contractions=tuple(contractions))
    if all(isinstance(v, int) for v in sizes.values()):
        n_slots, slot_of, errors = _slots(comp, sizes, links)
        barriers.extend(Barrier(comp[0], e) for e in errors)
        group.n_slots, group.slot_of = n_slots, slot_of
    group.barriers = tuple(dict.fromkeys(barriers))
    group.layer = _layer(index, group.representative.tensor)
    return group


def _layer(index: GraphIndex, tensor: str) -> str:
    """``node (op_type)`` of the first node reading ``tensor`` (else of its producer), or ""."""
    uses = [u for u in index.uses(tensor) if u.index >= 0]
    name = uses[0].node if uses else index.producer.get(tensor)
    return f"{name} ({index.nodes[name].op_type})" if name is not None else ""
