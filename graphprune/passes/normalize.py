"""Normalization: unique node names and constants lifted to initializers.

Exporters put weights in many places: ``Constant`` nodes (Paddle, spox), ``ConstantOfShape``
fills, ``Cast``/``Identity``/``Transpose``/``Reshape`` of constants. Pruning can only slice
initializers, so every node whose inputs are all constants and whose op is deterministic and
cheap is evaluated once (with ``onnx.reference``) and replaced by an initializer.
"""
from __future__ import annotations

import logging

import numpy as np
import onnx
import onnx_ir as ir
from onnx import numpy_helper

from ..graph import edit
from ..graph.index import subgraph_reads
from ..graph.model import node_into, value_info
from ..graph.nodes import inputs
from .base import Pass, PassResult

log = logging.getLogger(__name__)

#: ops folded when every input is a constant (deterministic, no side effects)
FOLDABLE_OPS = frozenset({
    "Constant", "ConstantOfShape", "Cast", "CastLike", "Identity", "Transpose", "Reshape", "Flatten",
    "Squeeze", "Unsqueeze", "Concat", "Gather", "Slice", "Shape", "Size", "Expand", "Tile", "Neg",
    "Add", "Sub", "Mul", "Div", "Sqrt", "Reciprocal", "Range",
})
# DequantizeLinear is deliberately absent: folding it would silently turn a quantized model's int8
# weights into float32 ones (4x larger); its groups are blocked with a reason instead.
#: never materialise a folded constant larger than this (elements)
MAX_FOLD_ELEMENTS = 1 << 28
#: nor more than this in all (elements): a hostile graph of many huge fills stays a graph of nodes
MAX_LIFTED_ELEMENTS = 1 << 29
#: ops whose output can be far larger than their inputs: their output size is predicted before folding
_GROWING_OPS = frozenset({"ConstantOfShape", "Expand", "Tile", "Range", "Gather"})


class NameNodesPass(Pass):
    """Give every node a unique, non-empty name (``<op_type>_<n>``)."""

    name = "name-nodes"

    def run(self, model: ir.Model) -> PassResult:
        renamed = 0
        taken = {node.name for node in model.graph if node.name}
        seen: set[str] = set()
        counter = 0
        for node in model.graph:
            if node.name and node.name not in seen:
                seen.add(node.name)
                continue
            base = node.name or node.op_type
            while True:
                counter += 1
                candidate = f"{base}_{counter}"
                if candidate not in taken:
                    break
            node.name = candidate
            taken.add(candidate)
            seen.add(candidate)
            renamed += 1
        notes = [f"named {renamed} unnamed or duplicate nodes"] if renamed else []
        return PassResult(model, renamed > 0, notes)


def _constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name == "value_float":
            return np.array(attr.f, dtype=np.float32)
        if attr.name == "value_floats":
            return np.array(list(attr.floats), dtype=np.float32)
        if attr.name == "value_int":
            return np.array(attr.i, dtype=np.int64)
        if attr.name == "value_ints":
            return np.array(list(attr.ints), dtype=np.int64)
    return None  # sparse_value / value_string(s): left as a node


class LiftConstantsPass(Pass):
    """Evaluate constant subgraphs of foldable ops and store the results as initializers."""

    name = "lift-constants"

    def run(self, model: ir.Model) -> PassResult:
        graph = model.graph
        lifter = _Lifter(model)
        lifted = [node for node in list(graph) if lifter.lift(node)]
        if not lifted:
            return PassResult(model, False, [])
        lifted_ids = {id(n) for n in lifted}
        keep = [n for n in graph if id(n) not in lifted_ids]
        used = {v.name for n in keep for v in n.inputs if v is not None}
        used |= {v.name for v in graph.outputs} | subgraph_reads(graph)
        edit.remove_initializers(model, {name for name in graph.initializers if name not in used})
        for node in lifted:
            for out in node.outputs:
                if out.name in used and out.name not in graph.initializers:
                    _replace_by_initializer(model, out, lifter.values[out.name])
        edit.remove_nodes(graph, lifted)
        inits = set(graph.initializers)
        value_info(graph)[:] = [v for v in value_info(graph) if v.name not in inits]
        return PassResult(model, True, [f"lifted {len(lifted)} constant nodes to initializers"])


def _replace_by_initializer(model: ir.Model, out: ir.Value, array: np.ndarray) -> None:
    """``out`` (a node output) becomes an initializer of the same name holding ``array``."""
    name = out.name
    out.name = None
    value = edit.add_initializer(model, name, array)
    if out.is_graph_output():
        edit.take_declaration(value, out)
    out.replace_all_uses_with(value, replace_graph_outputs=True)


class _Lifter:
    """Decides, node by node in graph order, whether a node is evaluated once into constants."""

    def __init__(self, model: ir.Model):
        graph = model.graph
        self.model = model
        self.inits = graph.initializers
        self.values: dict[str, np.ndarray] = {}
        self.graph_inputs = {v.name for v in graph.inputs}
        self.opset_imports = [onnx.helper.make_opsetid(d, v) for d, v in model.opset_imports.items()]
        self.budget = MAX_LIFTED_ELEMENTS

    def value(self, name: str) -> np.ndarray:
        if name not in self.values:
            self.values[name] = np.asarray(self.inits[name].const_value.numpy())
        return self.values[name]

    def is_const(self, name: str) -> bool:
        if name == "" or name in self.values:
            return True
        return name in self.inits and (name not in self.graph_inputs or self.model.ir_version < 4)

    def lift(self, node: ir.Node) -> bool:
        names = inputs(node)
        if not (node.domain in ("", "ai.onnx") and node.op_type in FOLDABLE_OPS
                and all(self.is_const(i) for i in names)
                and not any(o.name in self.graph_inputs for o in node.outputs)):
            return False
        proto = onnx.NodeProto()
        node_into(proto, node)
        predicted = _predicted_elements(proto, [self.value(i) if i else None for i in names])
        unknown_growth = predicted is None and node.op_type in _GROWING_OPS
        if unknown_growth or (predicted is not None and predicted > min(MAX_FOLD_ELEMENTS, self.budget)):
            log.info("not folding %s (%s): its output would be too large (%s elements)", node.name,
                     node.op_type, predicted)
            return False
        results = self._evaluate(proto, names)
        if results is None or any(r.size > MAX_FOLD_ELEMENTS for r in results):
            return False
        for out, arr in zip(node.outputs, results):
            if out.name:
                self.values[out.name] = np.asarray(arr)
                self.budget -= self.values[out.name].size
        return True

    def _evaluate(self, proto: onnx.NodeProto, names: list[str]) -> list | None:
        try:
            if proto.op_type == "Constant":
                value = _constant_value(proto)
                return None if value is None else [value]
            from onnx.reference import ReferenceEvaluator

            feeds = {i: self.value(i) for i in names if i}
            return _fast_fold(proto, feeds) or _evaluate(ReferenceEvaluator, proto, feeds, self.opset_imports)
        except Exception as exc:  # noqa: BLE001 - a node we cannot fold simply stays a node
            log.debug("not folding %s (%s): %s", proto.name, proto.op_type, exc)
            return None


def _predicted_elements(node: onnx.NodeProto, inputs: list) -> int | None:
    """Elements the node's output would have, computed from its constant inputs before folding.

    Exact for the ops that can grow (ConstantOfShape, Expand, Tile, Range, Gather), an upper bound for
    broadcasting arithmetic, and the largest input for the rest (whose outputs never exceed it).
    """
    arrays = [a for a in inputs if a is not None]
    op = node.op_type
    try:
        if op == "ConstantOfShape":
            return _product(arrays[0].reshape(-1))
        if op == "Expand":
            target = [int(d) for d in arrays[1].reshape(-1)]
            rank = max(len(target), arrays[0].ndim)
            a = [1] * (rank - arrays[0].ndim) + list(arrays[0].shape)
            b = [1] * (rank - len(target)) + target
            return _product([max(x, y) for x, y in zip(a, b)])
        if op == "Tile":
            return arrays[0].size * _product(arrays[1].reshape(-1))
        if op == "Range":
            start, limit, delta = (float(np.asarray(a).reshape(-1)[0]) for a in arrays[:3])
            return max(0, int(np.ceil((limit - start) / delta))) if delta else None
        if op == "Gather":
            data, indices = arrays[0], arrays[1]
            axis = int(next((a.i for a in node.attribute if a.name == "axis"), 0))
            return data.size // max(data.shape[axis], 1) * indices.size
        if op in ("Add", "Sub", "Mul", "Div") and len(arrays) == 2:
            return _product(np.broadcast_shapes(arrays[0].shape, arrays[1].shape))
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if op in _GROWING_OPS:
        return None
    return max((a.size for a in arrays), default=0) * (len(arrays) if op == "Concat" else 1)


def _product(values) -> int:
    n = 1
    for v in values:
        n *= max(int(v), 0)
    return n


def _fast_fold(node: onnx.NodeProto, feeds: dict) -> list | None:
    """numpy fast paths for the ops that produce big weights (the reference evaluator is slow)."""
    if node.op_type == "ConstantOfShape":
        shape = [int(d) for d in feeds[node.input[0]].reshape(-1)]
        fill = np.zeros(1, dtype=np.float32)
        for attr in node.attribute:
            if attr.name == "value":
                fill = numpy_helper.to_array(attr.t).reshape(-1)
        count = 1
        for d in shape:
            count *= d
        if count > MAX_FOLD_ELEMENTS:
            return None
        return [np.full(shape, fill[0], dtype=fill.dtype)]
    if node.op_type == "Identity":
        return [feeds[node.input[0]]]
    return None


def _evaluate(evaluator_cls, node, feeds, opset_imports):
    inputs = [onnx.helper.make_tensor_value_info(k, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
              for k, v in feeds.items()]
    outputs = [onnx.helper.make_empty_tensor_value_info(o) for o in node.output if o]
    graph = onnx.helper.make_graph([node], "fold", inputs, outputs)
    tiny = onnx.helper.make_model(graph, opset_imports=opset_imports)
    tiny.ir_version = onnx.IR_VERSION
    ev = evaluator_cls(tiny)
    out = ev.run(None, feeds)
    return [np.asarray(o) for o in out]


def normalize(model: ir.Model) -> PassResult:
    """Run the normalization passes in order (mutates ``model``)."""
    from .base import PassSequence

    return PassSequence([NameNodesPass(), LiftConstantsPass()])(model)
