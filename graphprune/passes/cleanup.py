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

import onnx

from ..graph import remove_initializers, subgraph_reads
from .base import Pass, PassResult

log = logging.getLogger(__name__)


def _delete_nodes(graph: onnx.GraphProto, doomed: set[int]) -> None:
    """Delete nodes by position, from the end, without copying the survivors."""
    for i in sorted(doomed, reverse=True):
        del graph.node[i]


def _uses(graph: onnx.GraphProto) -> dict[str, list[tuple[int, int]]]:
    uses: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for pos, node in enumerate(graph.node):
        for slot, name in enumerate(node.input):
            if name:
                uses[name].append((pos, slot))
    return uses


def _remove_identities(graph: onnx.GraphProto, pinned: set[str]) -> int:
    """Bypass Identity nodes (see module docstring); returns how many were removed."""
    outputs = {o.name for o in graph.output}
    inputs = {i.name for i in graph.input}
    producer = {name: pos for pos, node in enumerate(graph.node) for name in node.output if name}
    uses = _uses(graph)
    doomed: set[int] = set()
    for pos, node in enumerate(graph.node):
        if node.op_type != "Identity" or node.domain not in ("", "ai.onnx") or len(node.input) != 1:
            continue
        x, y = node.input[0], node.output[0]
        if y in pinned or x in pinned or producer.get(x) in doomed:
            continue
        if y in outputs:
            if x in inputs or x in outputs or x not in producer:
                continue
            graph.node[producer[x]].output[list(graph.node[producer[x]].output).index(x)] = y
            producer[y] = producer.pop(x)
            _rewire(graph, uses, x, y, skip=pos)
        else:
            _rewire(graph, uses, y, x, skip=pos)
        doomed.add(pos)
    _delete_nodes(graph, doomed)
    return len(doomed)


def _rewire(graph, uses, old: str, new: str, skip: int) -> None:
    """Make every reader of ``old`` (except node ``skip``) read ``new``; keeps ``uses`` current."""
    for pos, slot in uses.pop(old, []):
        if pos == skip:
            continue
        graph.node[pos].input[slot] = new
        uses[new].append((pos, slot))


def _remove_dead_nodes(graph: onnx.GraphProto, pinned: set[str]) -> int:
    """Worklist removal of nodes whose outputs nobody reads; returns how many were removed."""
    outputs = {o.name for o in graph.output}
    readers: dict[str, int] = defaultdict(int)
    for node in graph.node:
        for name in node.input:
            if name:
                readers[name] += 1
    producer = {name: pos for pos, node in enumerate(graph.node) for name in node.output if name}

    def dead(pos: int) -> bool:
        outs = [o for o in graph.node[pos].output if o]
        return bool(outs) and not any(readers[o] or o in outputs or o in pinned for o in outs)

    work = [pos for pos in range(len(graph.node)) if dead(pos)]
    doomed: set[int] = set()
    while work:
        pos = work.pop()
        if pos in doomed or not dead(pos):
            continue
        doomed.add(pos)
        for name in graph.node[pos].input:
            if not name:
                continue
            readers[name] -= 1
            if readers[name] == 0 and name in producer:
                work.append(producer[name])
    _delete_nodes(graph, doomed)
    return len(doomed)


def _remove_unused_initializers(graph: onnx.GraphProto, pinned: set[str]) -> int:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output} | pinned
    unused = {t.name for t in graph.initializer if t.name not in used}
    if not unused:
        return 0
    remove_initializers(graph, unused)
    for i in range(len(graph.input) - 1, -1, -1):
        if graph.input[i].name in unused:
            del graph.input[i]
    return len(unused)


def _remove_stale_value_info(graph: onnx.GraphProto) -> int:
    alive = {name for node in graph.node for name in node.output}
    alive |= {i.name for i in graph.input} | {t.name for t in graph.initializer}
    stale = [i for i, vi in enumerate(graph.value_info) if vi.name not in alive]
    for i in reversed(stale):
        del graph.value_info[i]
    return len(stale)


class CleanupPass(Pass):
    """Remove Identity nodes, dead nodes, unused initializers and stale value_info (exact)."""

    name = "cleanup"

    def __init__(self, identities: bool = True):
        self.identities = identities

    def run(self, model: onnx.ModelProto) -> PassResult:
        graph = model.graph
        pinned = subgraph_reads(graph)
        counts = {
            "Identity nodes": _remove_identities(graph, pinned) if self.identities else 0,
            "dead nodes": _remove_dead_nodes(graph, pinned),
            "unused initializers": _remove_unused_initializers(graph, pinned),
            "stale value_info entries": _remove_stale_value_info(graph),
        }
        notes = [f"removed {n} {what}" for what, n in counts.items() if n]
        for line in notes:
            log.info("cleanup: %s", line)
        return PassResult(model, any(counts.values()), notes)


def cleanup(model: onnx.ModelProto) -> PassResult:
    """Run :class:`CleanupPass` on ``model`` (mutated in place)."""
    return CleanupPass()(model)
