"""Per-node parameters, MACs and activation bytes; activation peak by liveness.

* **params** of a node: elements of the weight initializers it reads that no earlier node read
  (each initializer counts once, at its first consumer), and of its own value for ``Constant``.
  Weights are floating-point or <= 8-bit integer tensors; int32/int64 constants are shapes,
  axes and indices, not parameters.
* **activation bytes** of a node: bytes of the tensors it writes.
* **peak activation bytes**: the most bytes alive at once when nodes run in graph order, a
  tensor living from its producer (graph inputs: from the start) to its last consumer (graph
  outputs: to the end); initializers are not activations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import onnx

from .macs import node_macs
from .tensors import GraphNames, graph_names

_WEIGHT_TYPES = frozenset({
    onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
    onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT4, onnx.TensorProto.UINT4,
    onnx.TensorProto.FLOAT8E4M3FN, onnx.TensorProto.FLOAT8E5M2,
})


@dataclass(frozen=True)
class NodeProfile:
    """Cost of one node. ``macs`` is None when the op has no MAC formula (see :mod:`.macs`)."""

    name: str
    op_type: str
    params: int
    macs: int | None
    activation_bytes: int
    output_shape: tuple[int, ...] | None

    def to_dict(self) -> dict:
        return {"name": self.name, "op_type": self.op_type, "params": self.params, "macs": self.macs,
                "activation_bytes": self.activation_bytes,
                "output_shape": None if self.output_shape is None else list(self.output_shape)}


def _constant_value_size(node: onnx.NodeProto) -> tuple[int, int] | None:
    """(elements, element type) of a Constant node's value, when its attribute says."""
    for attr in node.attribute:
        if attr.name == "value":
            return math.prod(attr.t.dims), attr.t.data_type
        if attr.name == "value_floats":
            return len(attr.floats), onnx.TensorProto.FLOAT
        if attr.name == "value_float":
            return 1, onnx.TensorProto.FLOAT
    return None


def _constant_tensors(names: GraphNames, infos: dict | None) -> tuple[set[str], dict[str, int]]:
    """Every constant tensor, and the weight-typed ones with their element counts: initializers,
    and the outputs of nodes that only compute from constants (Constant, ConstantOfShape fills,
    casts and reshapes of weights...; sizes from ``infos`` when the node does not say)."""
    from ..passes.normalize import FOLDABLE_OPS

    sizes = {name: (count, elem) for name, (count, _, elem) in names.initializers.items()}
    constant = sizes.__contains__
    for i, op_type in enumerate(names.op_types):
        if op_type not in FOLDABLE_OPS or names.domains[i] not in ("", "ai.onnx"):
            continue
        # every input given is constant (map/filter: no generator frame per node, most nodes of a
        # transformer export are foldable ops on activations)
        if not all(map(constant, filter(None, names.inputs[i]))):
            continue
        for name in names.outputs[i]:
            info = (infos or {}).get(name)
            known = _constant_value_size(names.nodes[i]) if op_type == "Constant" else None
            if known is None and info is not None:
                known = (info.numel, info.elem_type)
            sizes[name] = known if known is not None else (0, 0)
    return set(sizes), {name: n for name, (n, elem) in sizes.items() if elem in _WEIGHT_TYPES}


def node_params(model: onnx.ModelProto, infos: dict | None = None, names: GraphNames | None = None) -> list[int]:
    """Parameters of every node of the main graph, in graph order (see the module docstring):
    the one way graphprune counts parameters (``profile``, ``inspect`` and every summary).

    A parameter is an element of a weight-typed constant tensor (an initializer, or computed from
    constants only, such as a ConstantOfShape fill) that a computing node reads; it counts once,
    at its first such reader (a node computing constants from constants, such as the Reshape of a
    weight by a constant shape, reads none: its output is the weight). ``names``: ``model``'s
    :func:`~graphprune.profiling.tensors.graph_names` when read already."""
    names = names or graph_names(model)
    constants, weights = _constant_tensors(names, infos)
    seen: set[str] = set()
    out = []
    for op_type, inputs, outputs in zip(names.op_types, names.inputs, names.outputs):
        params = 0
        fresh = [name for name in inputs if name in weights and name not in seen]
        if fresh and not (op_type == "Constant" or all(not n or n in constants for n in inputs)
                          and any(o in weights for o in outputs)):  # a computing node
            for name in fresh:
                if name not in seen:  # a weight read twice by one node counts once
                    seen.add(name)
                    params += weights[name]
        out.append(params)
    return out


def count_parameters(model: onnx.ModelProto, infos: dict | None = None) -> int:
    """Parameters of ``model`` (a skeleton without weight bytes will do: only dims are read)."""
    return sum(node_params(model, infos))


def node_profiles(model: onnx.ModelProto, infos: dict) -> list[NodeProfile]:
    """One record per node of the main graph, in graph order."""
    records = []
    for node, params in zip(model.graph.node, node_params(model, infos)):
        out_bytes = sum(infos[o].nbytes for o in node.output if o in infos)
        first = infos.get(node.output[0]) if node.output else None
        records.append(NodeProfile(node.name or f"{node.op_type}#{len(records)}", node.op_type, params,
                                   node_macs(node, infos), out_bytes, None if first is None else first.shape))
    return records


def peak_activation_bytes(model: onnx.ModelProto, infos: dict) -> int:
    """Largest live activation footprint over a graph-order execution (see module docstring)."""
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    last_use: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for name in node.input:
            if name and name not in inits:
                last_use[name] = i
    keep_to_end = {o.name for o in graph.output}

    def size(name: str) -> int:
        info = infos.get(name)
        return info.nbytes if info is not None else 0

    live = {i.name: size(i.name) for i in graph.input if i.name not in inits}
    current = sum(live.values())
    peak = current
    for i, node in enumerate(graph.node):
        for name in node.output:
            if name and name not in live:
                live[name] = size(name)
                current += live[name]
        peak = max(peak, current)
        for name in set(node.input) | set(node.output):
            if name in live and name not in keep_to_end and last_use.get(name, -1) <= i:
                current -= live.pop(name)
    return peak


__all__ = ["NodeProfile", "count_parameters", "node_params", "node_profiles", "peak_activation_bytes"]
