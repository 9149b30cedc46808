"""The edits rule fix-ups ask for, by node name, on the editable graph.

Constants are edited copy-on-write: a constant read by several nodes is only modified in
place when every one of its uses asks for the same modification; otherwise each use that needs
a different value gets its own copy under a new name.
"""
from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ..errors import PruningError
from ..graph import edit
from ..graph.index import GraphIndex, subgraph_reads
from ..graph.nodes import get_attr


class ModelEditor:
    def __init__(self, model: ir.Model, index: GraphIndex | None = None):
        """``index``: the graph's index when one is fresh (its nodes and readers are not listed again)."""
        self.model = model
        self.graph = model.graph
        self._index = index
        self.nodes = index.nodes if index is not None else {n.name: n for n in self.graph}
        self._patches: dict[str, dict[tuple, dict[int, int]]] = {}
        self._uses: dict[str, list[tuple[str, int]]] | None = None
        self._names: edit.Names | None = None  # taken names, gathered when a first fresh one is needed
        #: names of the nodes an edit changed (attributes, inputs): only these serialize differently now
        self.touched_nodes: set[str] = set()
        #: the values an edit stopped some node from reading: the only initializers an edit can leave unread
        self._released: list[ir.Value] = []

    # ------------------------------------------------------------------ names
    def unique_name(self, base: str) -> str:
        # gathered late: the edits before a first fresh name (slices, attributes, pending constant
        # patches) neither free nor take a name, so the names given are the same
        if self._names is None:
            self._names = edit.Names(self.graph)
        return self._names.fresh(base)

    def _node(self, name: str) -> ir.Node:
        try:
            return self.nodes[name]
        except KeyError as exc:
            raise PruningError(f"fix-up names node {name!r}, which is not in the model") from exc

    # ------------------------------------------------------------------ attributes
    def set_attr(self, node: str, name: str, value) -> None:
        edit.set_attribute(self._node(node), name, value)
        self.touched_nodes.add(node)

    def set_attr_element(self, node: str, name: str, index: int, value: int) -> None:
        values = get_attr(self._node(node), name)
        if values is None:
            raise PruningError(f"node {node} has no attribute {name}")
        values = list(values)
        values[index] = value
        self.set_attr(node, name, values)

    def del_attr(self, node: str, name: str) -> None:
        if edit.delete_attribute(self._node(node), name):
            self.touched_nodes.add(node)

    # ------------------------------------------------------------------ constants
    def set_input_constant(self, node: str, index: int, array: np.ndarray) -> str:
        """Point input ``index`` of ``node`` at a new initializer holding ``array``."""
        n = self._node(node)
        name = self.unique_name(f"{node}_input{index}")
        value = edit.add_initializer(self.model, name, np.asarray(array))
        self._set_input(n, index, value)
        self.touched_nodes.add(node)
        return name

    def patch_constant(self, source: tuple, value: int) -> None:
        """Set one element of a constant, as read by one use ``(node, input_index)``."""
        _, init, flat, node, idx = source
        self._patches.setdefault(init, {}).setdefault((node, idx), {})[flat] = int(value)

    def _uses_of(self, init: str) -> list[tuple[str, int]]:
        """(node, input index) of every read of ``init``, in graph order (the index's readers that
        still read it, or one pass over the graph for all patched constants)."""
        if self._index is not None:  # an edit points a node at a new constant, never at a patched one
            value = self.graph.initializers[init]
            return [(u.node, u.index) for u in self._index.uses(init)
                    if u.index >= 0 and self.nodes[u.node].inputs[u.index] is value]
        if self._uses is None:
            self._uses = {}
            wanted = set(self._patches)
            for n in self.graph:
                for i, v in enumerate(n.inputs):
                    if v is not None and v.name in wanted:
                        self._uses.setdefault(v.name, []).append((n.name, i))
        return self._uses.get(init, [])

    def finalize(self) -> None:
        """Apply pending constant patches, copying constants whose uses disagree."""
        self._uses = None
        for init, by_use in self._patches.items():
            value = self.graph.initializers[init]
            uses = self._uses_of(init)
            shared_outside = value.is_graph_output() or value in self.graph.inputs
            wanted = [by_use.get(u, {}) for u in uses]
            original = np.asarray(value.const_value.numpy())
            if not shared_outside and all(w == wanted[0] for w in wanted):
                edit.write_initializer(value, _patched(original, wanted[0]))
                continue
            copies: dict[tuple, ir.Value] = {}
            for use, patch in zip(uses, wanted):
                if not patch:
                    continue
                key = tuple(sorted(patch.items()))
                if key not in copies:
                    name = self.unique_name(f"{init}_{use[0]}")
                    copies[key] = edit.add_initializer(self.model, name, _patched(original, patch))
                self._set_input(self.nodes[use[0]], use[1], copies[key])
        self._patches.clear()
        self.remove_unused_initializers()

    def _set_input(self, node: ir.Node, index: int, value: ir.Value) -> None:
        if index < len(node.inputs) and node.inputs[index] is not None:
            self._released.append(node.inputs[index])
        edit.set_input(node, index, value)
        self.touched_nodes.add(node.name)

    def remove_unused_initializers(self) -> int:
        """Drop initializers that our edits left without a reader (others are left alone): of the
        values the edits stopped reading, the initializers read by no node, subgraph or graph
        output (a declared graph input of an IR >= 4 model is part of the interface: kept)."""
        graph, released = self.graph, self._released
        self._released = []
        unread = {v.name for v in released if graph.initializers.get(v.name) is v and not v.uses()
                  and not v.is_graph_output()}
        if not unread:
            return 0
        if self.model.ir_version >= 4:
            unread -= {v.name for v in graph.inputs}
        return edit.remove_initializers(self.model, unread - subgraph_reads(graph))


def _patched(original: np.ndarray, patch: dict[int, int]) -> np.ndarray:
    arr = original.copy().reshape(-1)
    for flat, value in patch.items():
        arr[flat] = value
    return arr.reshape(original.shape)
