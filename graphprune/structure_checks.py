"""Structure checks of every graph and subgraph (see :func:`check_structure`).

In every graph: each node output is produced once, every input is defined (graph input,
initializer, earlier node or outer scope), graph outputs exist, names of inputs, outputs and
initializers are unique and are text, and the nodes form no cycle. An acyclic graph listed out of
order is sorted (stable), as the ONNX checker requires. Part of :mod:`graphprune.input_checks`.
"""
from __future__ import annotations

import heapq
import logging

import onnx

from .errors import InvalidModelError

log = logging.getLogger(__name__)


def node_label(node: onnx.NodeProto, i: int) -> str:
    return f"{node.op_type} node {node.name!r}" if node.name else f"{node.op_type} node #{i}"


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    out = []
    for attr in node.attribute:
        if attr.HasField("g"):
            out.append(attr.g)
        out.extend(attr.graphs)
    return out


def outer_reads(node: onnx.NodeProto) -> set[str]:
    """Names a node's subgraphs (any depth) read from scopes outside themselves."""
    reads: set[str] = set()
    stack = [(g, frozenset()) for g in subgraphs(node)]
    while stack:
        g, visible = stack.pop()
        defined = set(visible) | {i.name for i in g.input} | {t.name for t in g.initializer}
        defined |= {o for n in g.node for o in n.output if o}
        for n in g.node:
            reads.update(i for i in n.input if i and i not in defined)
            stack.extend((sub, frozenset(defined)) for sub in subgraphs(n))
        reads.update(o.name for o in g.output if o.name not in defined)
    return reads


def invalid_model(where: str, text: str) -> InvalidModelError:
    return InvalidModelError(f"{where}: not a valid ONNX model: {text}")


def _unique(names, what: str, where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise invalid_model(where, f"{what} {name!r} is listed twice")
        seen.add(name)


def _check_text(graph: onnx.GraphProto, where: str) -> None:
    """Names must be text: a corrupted file can hold bytes that are not UTF-8 (protobuf hands them over raw)."""
    named = [("graph input", vi.name) for vi in graph.input] + [("graph output", vi.name) for vi in graph.output]
    named += [("initializer", t.name) for t in graph.initializer]
    for i, node in enumerate(graph.node):
        named += [(f"node #{i}", v) for v in (node.name, node.op_type, node.domain, *node.input, *node.output)]
    for what, value in named:
        if not isinstance(value, str):
            raise invalid_model(where, f"{what} has a name that is not UTF-8 text ({value[:20]!r}; corrupted file?)")


def _check_one_graph(graph: onnx.GraphProto, outer: frozenset, where: str) -> list[int] | None:
    """Checks one graph; returns a topological order of its nodes when they are listed out of order."""
    _check_text(graph, where)
    _unique([i.name for i in graph.input], "graph input", where)
    _unique([o.name for o in graph.output], "graph output", where)
    _unique([t.name for t in graph.initializer], "initializer", where)
    defined = set(outer) | {i.name for i in graph.input} | {t.name for t in graph.initializer}
    defined |= {s.values.name for s in graph.sparse_initializer}
    producer: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for name in node.output:
            if not name:
                continue
            if name in producer:
                first = graph.node[producer[name]]
                raise invalid_model(
                    where, f"tensor {name!r} is produced twice (by {node_label(first, producer[name])} and "
                    f"{node_label(node, i)}); an ONNX graph assigns every tensor once")
            if name in defined and name not in outer:
                raise invalid_model(
                    where, f"{node_label(node, i)} writes {name!r}, which is already a graph input or initializer")
            producer[name] = i
    deps: list[set[int]] = []
    for i, node in enumerate(graph.node):
        reads = [n for n in node.input if n] + sorted(outer_reads(node))
        mine = set()
        for name in reads:
            if name in producer:
                mine.add(producer[name])
            elif name not in defined:
                raise invalid_model(
                    where, f"{node_label(node, i)} reads {name!r}, which no node produces and which is neither "
                    "a graph input nor an initializer (dangling input)")
        deps.append(mine)
    for out in graph.output:
        if out.name not in producer and out.name not in defined:
            raise invalid_model(where, f"graph output {out.name!r} is not produced by any node")
    return _topological_order(graph, deps, where)


def _topological_order(graph: onnx.GraphProto, deps: list[set[int]], where: str) -> list[int] | None:
    """Stable Kahn order; None when the listed order is already topological. Raises on a cycle."""
    if all(all(d < i for d in ds) for i, ds in enumerate(deps)):
        return None
    users: list[list[int]] = [[] for _ in deps]
    missing = [0] * len(deps)
    for i, ds in enumerate(deps):
        for d in ds:
            users[d].append(i)
            missing[i] += 1  # a node reading its own output waits for itself: never ready
    ready = [i for i, m in enumerate(missing) if m == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            missing[u] -= 1
            if missing[u] == 0:
                heapq.heappush(ready, u)
    if len(order) < len(deps):
        cycle = _find_cycle(deps, set(order))
        names = " -> ".join(repr(graph.node[i].name or graph.node[i].op_type) for i in cycle)
        raise invalid_model(where, f"the nodes form a cycle ({names}); an ONNX graph must be acyclic")
    return order


def _find_cycle(deps: list[set[int]], done: set[int]) -> list[int]:
    """One cycle among the nodes not in ``done`` (every such node lies on or behind a cycle)."""
    start = next(i for i in range(len(deps)) if i not in done)
    seen: dict[int, int] = {}
    path: list[int] = []
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(d for d in sorted(deps[node]) if d not in done)
    cycle = list(reversed(path[seen[node]:]))  # in data-flow order
    first = cycle.index(min(cycle))  # start at the node listed first
    cycle = cycle[first:] + cycle[:first]
    return cycle + [cycle[0]]


def check_structure(model: onnx.ModelProto, where: str) -> int:
    """Check every graph (see module docstring); sorts graphs listed out of order. Returns graphs sorted."""
    sorted_graphs = 0
    stack = [(model.graph, frozenset(), where)]
    while stack:
        graph, outer, label = stack.pop()
        order = _check_one_graph(graph, outer, label)
        if order is not None:
            nodes = [graph.node[i] for i in order]
            copies = [onnx.NodeProto() for _ in nodes]
            for c, n in zip(copies, nodes):
                c.CopyFrom(n)
            del graph.node[:]
            graph.node.extend(copies)
            sorted_graphs += 1
            log.info("%s: nodes were listed out of topological order; sorted", label)
        visible = set(outer) | {i.name for i in graph.input} | {t.name for t in graph.initializer}
        visible |= {o for n in graph.node for o in n.output if o}
        for node in graph.node:
            for sub in subgraphs(node):
                stack.append((sub, frozenset(visible), f"{label}: subgraph of {node.op_type} node {node.name!r}"))
    return sorted_graphs
