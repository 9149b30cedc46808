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
from onnx import numpy_helper

from ..graph import add_initializer, remove_initializers, subgraph_reads
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

    def run(self, model: onnx.ModelProto) -> PassResult:
        renamed = 0
        taken = {node.name for node in model.graph.node if node.name}
        seen: set[str] = set()
        counter = 0
        for node in model.graph.node:
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

    def run(self, model: onnx.ModelProto) -> PassResult:
        from onnx.reference import ReferenceEvaluator

        graph = model.graph
        inits = {t.name: t for t in graph.initializer}
        values: dict[str, np.ndarray] = {}
        graph_inputs = {i.name for i in graph.input}
        graph_outputs = {o.name for o in graph.output}
        opset_imports = list(model.opset_import)
        keep: list[onnx.NodeProto] = []
        lifted = 0
        budget = MAX_LIFTED_ELEMENTS

        def value(name: str) -> np.ndarray:
            if name not in values:
                values[name] = numpy_helper.to_array(inits[name])
            return values[name]

        def is_const(name: str) -> bool:
            if name == "":
                return True
            if name in values:
                return True
            return name in inits and (name not in graph_inputs or model.ir_version < 4)

        for node in graph.node:
            foldable = (node.domain in ("", "ai.onnx") and node.op_type in FOLDABLE_OPS
                        and all(is_const(i) for i in node.input)
                        and not any(o in graph_inputs for o in node.output))
            if not foldable:
                keep.append(node)
                continue
            predicted = _predicted_elements(node, [value(i) if i else None for i in node.input])
            unknown_growth = predicted is None and node.op_type in _GROWING_OPS
            if unknown_growth or (predicted is not None and predicted > min(MAX_FOLD_ELEMENTS, budget)):
                log.info("not folding %s (%s): its output would be too large (%s elements)", node.name,
                     node.op_type, predicted)
                keep.append(node)
                continue
            try:
                if node.op_type == "Constant":
                    results = [_constant_value(node)]
                    if results[0] is None:
                        keep.append(node)
                        continue
                else:
                    feeds = {i: value(i) for i in node.input if i}
                    results = _fast_fold(node, feeds) or _evaluate(ReferenceEvaluator, node, feeds, opset_imports)
            except Exception as exc:  # noqa: BLE001 - a node we cannot fold simply stays a node
                log.debug("not folding %s (%s): %s", node.name, node.op_type, exc)
                keep.append(node)
                continue
            if results is None or any(r.size > MAX_FOLD_ELEMENTS for r in results):
                keep.append(node)
                continue
            for name, arr in zip(node.output, results):
                if name:
                    values[name] = np.asarray(arr)
                    budget -= values[name].size
            lifted += 1

        if not lifted:
            return PassResult(model, False, [])
        used = {i for n in keep for i in n.input} | graph_outputs | subgraph_reads(graph)
        remove_initializers(graph, {name for name in inits if name not in used})
        for name, arr in values.items():
            if name in used and name not in inits:
                add_initializer(graph, name, arr)
        new_inits = list(graph.initializer)
        del graph.node[:]
        graph.node.extend(keep)
        init_names = {t.name for t in new_inits}
        if model.ir_version < 4:
            # old IR: every initializer must also be declared as a graph input
            declared = {i.name for i in graph.input}
            for t in new_inits:
                if t.name not in declared:
                    graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        kept_inputs = [i for i in graph.input if i.name in init_names or i.name not in inits]
        if len(kept_inputs) != len(graph.input):
            del graph.input[:]
            graph.input.extend(kept_inputs)
        kept_vi = [v for v in graph.value_info if v.name not in init_names]
        del graph.value_info[:]
        graph.value_info.extend(kept_vi)
        return PassResult(model, True, [f"lifted {lifted} constant nodes to initializers"])


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


def normalize(model: onnx.ModelProto) -> PassResult:
    """Run the normalization passes in order (mutates ``model``)."""
    from .base import run_passes

    return run_passes(model, [NameNodesPass(), LiftConstantsPass()])
