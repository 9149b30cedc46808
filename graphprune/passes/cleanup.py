"""Cleanup: remove Identity nodes, dead nodes, unused initializers and stale value_info.

Everything here is exact: the graph computes the same outputs, under the same output names,
before and after. What "safe" means for each step:

* **Identity** ``y = Identity(x)`` is removed by making the consumers of ``y`` read ``x``. When
  ``y`` is a graph output, the producer of ``x`` is renamed to write ``y`` instead (and the
  other consumers of ``x`` read ``y``), which is only possible when ``x`` is produced by a node
  and is neither a graph input nor a graph output; otherwise the Identity stays. Names read by
  subgraphs (If/Loop/Scan bodies) are never rewired.
* **Dead nodes**: a node none of whose outputs is read by a node, a subgraph or the graph
  outputs. Found with a worklist, so chains of dead nodes go in one pass.
* **Unused initializers**: read by nothing. When an initializer is also declared as a graph
  input (the legacy exporter habit that IR < 4 required), its declaration goes with it; real
  graph inputs (without an initializer) are part of the model's interface and are never removed.
* **value_info** entries of tensors that no longer exist are dropped (a stale entry can
  contradict a renamed tensor).
"""
from __future__ import annotations

import logging
from collections import defaultdict

import onnx_ir as ir

from ..graph import edit
from ..graph.index import subgraph_reads
from ..graph.model import value_info
from .base import Pass, PassResult

log = logging.getLogger(__name__)


def _remove_identities(graph: ir.Graph, pinned: set[str]) -> int:
    """Bypass Identity nodes (see module docstring); returns how many were removed."""
    doomed: list[ir.Node] = []
    gone: set[int] = set()
    for node in list(graph):
        if node.op_type != "Identity" or node.domain not in ("", "ai.onnx") or len(node.inputs) != 1:
            continue
        x, y = node.inputs[0], node.outputs[0]
        if x is None or y.name in pinned or x.name in pinned or id(x.producer()) in gone:
            continue
        if y.is_graph_output():
            if x.is_graph_input() or x.is_graph_output() or x.producer() is None or x.is_initializer():
                continue
            edit.replace_value(y, x)
        else:
            y.replace_all_uses_with(x)
        doomed.append(node)
        gone.add(id(node))
    edit.remove_nodes(graph, doomed)
    return len(doomed)


def _remove_dead_nodes(graph: ir.Graph, pinned: set[str]) -> int:
    """Worklist removal of nodes whose outputs nobody reads; returns how many were removed."""
    outputs = {v.name for v in graph.outputs}
    readers: dict[str, int] = defaultdict(int)
    for node in graph:
        for value in node.inputs:
            if value is not None and value.name:
                readers[value.name] += 1
    nodes = list(graph)

    def dead(node: ir.Node) -> bool:
        outs = [v.name for v in node.outputs if v.name]
        return bool(outs) and not any(readers[o] or o in outputs or o in pinned for o in outs)

    work = [n for n in nodes if dead(n)]
    doomed: dict[int, ir.Node] = {}
    while work:
        node = work.pop()
        if id(node) in doomed or not dead(node):
            continue
        doomed[id(node)] = node
        for value in node.inputs:
            if value is None or not value.name:
                continue
            readers[value.name] -= 1
            producer = value.producer()
            if readers[value.name] == 0 and producer is not None and producer.graph is graph:
                work.append(producer)
    edit.remove_nodes(graph, doomed.values())
    return len(doomed)


def _remove_unused_initializers(model: ir.Model, pinned: set[str]) -> int:
    graph = model.graph
    used = {v.name for node in graph for v in node.inputs if v is not None}
    used |= {v.name for v in graph.outputs} | pinned
    return edit.remove_initializers(model, {name for name in graph.initializers if name not in used})


def _remove_stale_value_info(graph: ir.Graph) -> int:
    alive = {v.name for node in graph for v in node.outputs}
    alive |= {v.name for v in graph.inputs} | set(graph.initializers)
    entries = value_info(graph)
    fresh = [vi for vi in entries if vi.name in alive]
    stale = len(entries) - len(fresh)
    entries[:] = fresh
    return stale


class CleanupPass(Pass):
    """Remove Identity nodes, dead nodes, unused initializers and stale value_info (exact)."""

    name = "cleanup"

    def __init__(self, identities: bool = True):
        self.identities = identities

    def run(self, model: ir.Model) -> PassResult:
        graph = model.graph
        pinned = subgraph_reads(graph)
        counts = {
            "Identity nodes": _remove_identities(graph, pinned) if self.identities else 0,
            "dead nodes": _remove_dead_nodes(graph, pinned),
            "unused initializers": _remove_unused_initializers(model, pinned),
            "stale value_info entries": _remove_stale_value_info(graph),
        }
        notes = [f"removed {n} {what}" for what, n in counts.items() if n]
        for line in notes:
            log.info("cleanup: %s", line)
        return PassResult(model, any(counts.values()), notes)


def cleanup(model: ir.Model) -> PassResult:
    """Run :class:`CleanupPass` on ``model`` (mutated in place)."""
    return CleanupPass()(model)
