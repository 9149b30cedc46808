"""Small, safe edits of a ModelProto used by surgery and rule fix-ups.

Constants are edited copy-on-write: a constant read by several nodes is only modified in
place when every one of its uses asks for the same modification; otherwise each use that needs
a different value gets its own copy under a new name.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import PruningError
from ..graph import add_initializer, fresh_name, remove_initializers, subgraph_reads


class ModelEditor:
    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.graph = model.graph
        self.nodes = {n.name: n for n in self.graph.node}
        self.inits = {t.name: t for t in self.graph.initializer}
        self._patches: dict[str, dict[tuple, dict[int, int]]] = {}
        self._names = set(self.inits) | {o for n in self.graph.node for o in n.output} | {
            i.name for i in self.graph.input}
        self.touched_nodes: set[str] = set()
        self._unused_before = self._unused()

    # ------------------------------------------------------------------ names
    def unique_name(self, base: str) -> str:
        return fresh_name(self._names, base)

    def _node(self, name: str) -> onnx.NodeProto:
        try:
            return self.nodes[name]
        except KeyError as exc:
            raise PruningError(f"fix-up names node {name!r}, which is not in the model") from exc

    # ------------------------------------------------------------------ attributes
    def set_attr(self, node: str, name: str, value) -> None:
        n = self._node(node)
        for i, attr in enumerate(n.attribute):
            if attr.name == name:
                del n.attribute[i]
                break
        n.attribute.append(onnx.helper.make_attribute(name, value))
        self.touched_nodes.add(node)

    def set_attr_element(self, node: str, name: str, index: int, value: int) -> None:
        n = self._node(node)
        for attr in n.attribute:
            if attr.name == name:
                values = list(onnx.helper.get_attribute_value(attr))
                values[index] = value
                self.set_attr(node, name, values)
                return
        raise PruningError(f"node {node} has no attribute {name}")

    def del_attr(self, node: str, name: str) -> None:
        n = self._node(node)
        for i, attr in enumerate(n.attribute):
            if attr.name == name:
                del n.attribute[i]
                self.touched_nodes.add(node)
                return

    # ------------------------------------------------------------------ constants
    def set_input_constant(self, node: str, index: int, array: np.ndarray) -> str:
        """Point ``node.input[index]`` at a new initializer holding ``array``."""
        n = self._node(node)
        name = self.unique_name(f"{node}_input{index}")
        self._new_initializer(name, np.asarray(array))
        while len(n.input) <= index:
            n.input.append("")
        n.input[index] = name
        self.touched_nodes.add(node)
        return name

    def patch_constant(self, source: tuple, value: int) -> None:
        """Set one element of a constant, as read by one use ``(node, input_index)``."""
        _, init, flat, node, idx = source
        self._patches.setdefault(init, {}).setdefault((node, idx), {})[flat] = int(value)

    def _uses_of(self, init: str) -> list[tuple]:
        uses = [(n.name, i) for n in self.graph.node for i, x in enumerate(n.input) if x == init]
        return uses

    def finalize(self) -> None:
        """Apply pending constant patches, copying constants whose uses disagree."""
        for init, by_use in self._patches.items():
            uses = self._uses_of(init)
            shared_outside = any(o.name == init for o in self.graph.output) or any(
                i.name == init for i in self.graph.input)
            wanted = [by_use.get(u, {}) for u in uses]
            original = numpy_helper.to_array(self.inits[init])
            if not shared_outside and all(w == wanted[0] for w in wanted):
                self._write(self.inits[init], original, wanted[0])
                continue
            copies: dict[tuple, str] = {}
            for use, patch in zip(uses, wanted):
                if not patch:
                    continue
                key = tuple(sorted(patch.items()))
                if key not in copies:
                    name = self.unique_name(f"{init}_{use[0]}")
                    tensor = self._new_initializer(name, original)
                    self._write(tensor, original, patch)
                    copies[key] = name
                self.nodes[use[0]].input[use[1]] = copies[key]
        self._patches.clear()
        self.remove_unused_initializers()

    def _new_initializer(self, name: str, array: np.ndarray) -> onnx.TensorProto:
        tensor = add_initializer(self.graph, name, array)
        self.inits[name] = tensor
        if self.model.ir_version < 4:  # old IR: initializers must be declared as graph inputs
            self.graph.input.append(onnx.helper.make_tensor_value_info(name, tensor.data_type, list(tensor.dims)))
        return tensor

    @staticmethod
    def _write(tensor: onnx.TensorProto, original: np.ndarray, patch: dict[int, int]) -> None:
        from ..graph import write_tensor

        arr = original.copy().reshape(-1)
        for flat, value in patch.items():
            arr[flat] = value
        write_tensor(tensor, arr.reshape(original.shape))

    def _unused(self) -> set[str]:
        used = {i for n in self.graph.node for i in n.input} | {o.name for o in self.graph.output}
        used |= subgraph_reads(self.graph)
        declared_inputs = set() if self.model.ir_version < 4 else {i.name for i in self.graph.input}
        return {t.name for t in self.graph.initializer if t.name not in used and t.name not in declared_inputs}

    def remove_unused_initializers(self) -> int:
        """Drop initializers that our edits left without a reader (others are left alone)."""
        gone = self._unused() - self._unused_before
        if gone and self.model.ir_version < 4:
            keep = [i for i in self.graph.input if i.name not in gone]
            del self.graph.input[:]
            self.graph.input.extend(keep)
        return remove_initializers(self.graph, gone)
