"""Sizes that a model's own constants impose on its dynamic input dims, read without running it.

A dynamic input dim (image height and width, sequence length) is free as far as the graph's
structure goes, but some nodes only run at certain sizes:

* a Reshape to a constant shape without -1 or 0 needs exactly ``prod(shape)`` elements;
* a Gemm or MatMul with a constant weight needs its contracted axis to be as long as the weight's;
* an Add, Sub, Mul or Div with a constant that is not a per-channel vector (two or more axes
  longer than 1: anchor priors, a positional table) needs the other operand's axes to match;
* a Resize to constant sizes names a spatial size the model was built around (a hint, not a rule).

A :class:`Constraint` names the tensor to measure (its element count or one axis) and the value
it must have; :mod:`graphprune.validation.sizes` searches input sizes that meet it.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from ..input_checks import element_count
from ..structure_checks import node_label, outer_reads

#: constants larger than this are never read as values (shape constants are tiny)
MAX_VALUE_ELEMENTS = 64
#: elementwise ops whose constant operand must match the other operand's axes
_ELEMENTWISE = ("Add", "Sub", "Mul", "Div")


@dataclass(frozen=True)
class Constraint:
    """``tensor`` must have ``target`` elements (``axis`` None) or ``target`` positions on ``axis``."""

    node: str
    tensor: str
    axis: int | None
    target: int

    def measure(self, shape: tuple[int, ...]) -> int | None:
        """The measured value of a tensor of ``shape`` (None when it has no such axis)."""
        if self.axis is None:
            return element_count(shape)
        if -len(shape) <= self.axis < len(shape):
            return int(shape[self.axis])
        return None

    def describe(self) -> str:
        what = "elements" if self.axis is None else f"positions on axis {self.axis}"
        return f"{self.node} needs {self.target} {what} of {self.tensor!r}"


class ModelConstants:
    """Shapes (and small values) of the main graph's constants, and which tensors depend on inputs."""

    def __init__(self, model: onnx.ModelProto, input_names: Iterable[str]):
        graph = model.graph
        self.graph = graph
        self.tensors: dict[str, onnx.TensorProto] = {t.name: t for t in graph.initializer}
        self.shapes: dict[str, tuple[int, ...]] = {t.name: tuple(t.dims) for t in graph.initializer}
        for node in graph.node:
            self._add_constant_node(node)
        self.dynamic = _input_dependent(graph, set(input_names))

    def _add_constant_node(self, node: onnx.NodeProto) -> None:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    self.tensors[node.output[0]] = attr.t
                    self.shapes[node.output[0]] = tuple(attr.t.dims)
                elif attr.name == "value_ints":
                    self.tensors[node.output[0]] = numpy_helper.from_array(np.array(attr.ints, np.int64))
                    self.shapes[node.output[0]] = (len(attr.ints),)
        elif node.op_type == "ConstantOfShape" and node.input:
            dims = self.values(node.input[0])
            if dims is not None:
                self.shapes[node.output[0]] = tuple(int(d) for d in dims.ravel())

    def values(self, name: str) -> np.ndarray | None:
        """Values of a small constant (None for non-constants and big tensors)."""
        tensor = self.tensors.get(name)
        if tensor is None or element_count(tensor.dims) > MAX_VALUE_ELEMENTS:
            return None
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            return None
        return numpy_helper.to_array(tensor)

    def is_fixed(self, name: str) -> bool:
        """A tensor whose shape the model fixes (a constant), not one computed from the inputs."""
        return name in self.shapes and name not in self.dynamic


def _input_dependent(graph: onnx.GraphProto, inputs: set[str]) -> set[str]:
    """Tensors computed (transitively) from the graph inputs; nodes are in topological order."""
    dynamic = set(inputs)
    for node in graph.node:
        reads = [n for n in node.input if n] + sorted(outer_reads(node))
        if any(name in dynamic for name in reads):
            dynamic.update(o for o in node.output if o)
    return dynamic


def node_constraints(consts: ModelConstants, node: onnx.NodeProto, index: int) -> list[Constraint]:
    """What ``node`` requires of its input-dependent operand (empty when nothing is fixed)."""
    label = node_label(node, index)
    if node.op_type == "Reshape" and len(node.input) >= 2:
        return _reshape_constraints(consts, node, label)
    if node.op_type in ("Gemm", "MatMul") and len(node.input) >= 2:
        return _contraction_constraints(consts, node, label)
    if node.op_type in _ELEMENTWISE and len(node.input) == 2:
        return _elementwise_constraints(consts, node, label)
    return []


def _reshape_constraints(consts: ModelConstants, node: onnx.NodeProto, label: str) -> list[Constraint]:
    data, shape = node.input[0], node.input[1]
    target = consts.values(shape)
    if data not in consts.dynamic or target is None or target.size == 0 or (target <= 0).any():
        return []  # -1 and 0 adapt to the input: no fixed element count
    return [Constraint(label, data, None, element_count(int(v) for v in target.ravel()))]


def _attr(node: onnx.NodeProto, name: str, default: int = 0) -> int:
    return next((int(a.i) for a in node.attribute if a.name == name), default)


def _contraction_constraints(consts: ModelConstants, node: onnx.NodeProto, label: str) -> list[Constraint]:
    a, b = node.input[0], node.input[1]
    gemm = node.op_type == "Gemm"
    trans_a, trans_b = (_attr(node, "transA"), _attr(node, "transB")) if gemm else (0, 0)
    if a in consts.dynamic and consts.is_fixed(b):
        weight = consts.shapes[b]
        if gemm and len(weight) == 2:
            return [Constraint(label, a, -2 if trans_a else -1, weight[1] if trans_b else weight[0])]
        if not gemm and weight:
            return [Constraint(label, a, -1, weight[-2] if len(weight) >= 2 else weight[0])]
    if b in consts.dynamic and consts.is_fixed(a):
        weight = consts.shapes[a]
        if gemm and len(weight) == 2:
            return [Constraint(label, b, -1 if trans_b else -2, weight[0] if trans_a else weight[1])]
        if not gemm and len(weight) >= 2:
            return [Constraint(label, b, -2, weight[-1])]
    return []


def _elementwise_constraints(consts: ModelConstants, node: onnx.NodeProto, label: str) -> list[Constraint]:
    a, b = node.input
    if a in consts.dynamic and consts.is_fixed(b):
        other, fixed = a, consts.shapes[b]
    elif b in consts.dynamic and consts.is_fixed(a):
        other, fixed = b, consts.shapes[a]
    else:
        return []
    if sum(1 for d in fixed if d > 1) < 2:
        return []  # a scalar or per-channel vector broadcasts over any size
    return [Constraint(label, other, axis - len(fixed), d) for axis, d in enumerate(fixed) if d > 1]


def resize_sizes(consts: ModelConstants) -> list[tuple[int, int]]:
    """(height, width) of every Resize to constant spatial sizes, largest first.

    The sizes are either a constant ``sizes`` input of four values (N, C, H, W) or a Concat of
    computed leading dims and a constant (H, W) pair, as tf2onnx writes them.
    """
    producers = {o: n for n in consts.graph.node for o in n.output if o}
    pairs = set()
    for node in consts.graph.node:
        if node.op_type != "Resize" or len(node.input) < 4 or not node.input[3]:
            continue
        values = consts.values(node.input[3])
        if values is not None and values.size == 4:
            pairs.add((int(values[2]), int(values[3])))
            continue
        concat = producers.get(node.input[3])
        if concat is not None and concat.op_type == "Concat" and concat.input:
            tail = consts.values(concat.input[-1])
            if tail is not None and tail.size == 2:
                pairs.add((int(tail[0]), int(tail[1])))
    return sorted((p for p in pairs if min(p) > 0), key=lambda p: (-p[0] * p[1], p))


def trunk(model: onnx.ModelProto, outputs: Iterable[str]) -> onnx.ModelProto:
    """A model computing only ``outputs`` (tensors of ``model``): their ancestor nodes and initializers."""
    graph = model.graph
    producer = {o: i for i, node in enumerate(graph.node) for o in node.output if o}
    wanted, keep, seen = list(outputs), set(), set()
    stack = list(wanted)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        index = producer.get(name)
        if index is not None and index not in keep:
            keep.add(index)
            node = graph.node[index]
            stack.extend(n for n in node.input if n)
            stack.extend(outer_reads(node))
    part = onnx.ModelProto()
    part.ir_version, part.producer_name = model.ir_version, "graphprune size probe"
    part.opset_import.extend(model.opset_import)
    part.functions.extend(model.functions)
    part.graph.name = graph.name
    part.graph.node.extend(graph.node[i] for i in sorted(keep))
    part.graph.initializer.extend(t for t in graph.initializer if t.name in seen)
    stored = {t.name for t in graph.initializer}
    part.graph.input.extend(vi for vi in graph.input if vi.name not in stored or vi.name in seen)
    part.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in wanted)
    return part
