"""Sizes computed at run time that onnx's shape inference leaves unknown, followed here.

onnx's inference (with data propagation) reads a Slice's starts and ends only when they are
constants: a causal mask or a position table sliced up to the sequence length
(``Shape -> Gather -> Unsqueeze -> Slice``) gets unknown sizes, and so does everything downstream
of it. This module carries the values of small int64 tensors (shape arithmetic: ``Shape``,
``Gather``, ``Unsqueeze``, ``Squeeze``, ``Concat``, ``Slice``, ``Cast``, ``Identity``, constants)
as tuples of sizes (int: static, str: a named symbolic size, None: unknown), and works out the
output shapes of the Slices that read such values. :mod:`.shapes` gives the shapes found to
onnx's inference as declared shapes, and onnx carries them downstream.

Only sizes that follow without a guess are given, with one assumption, the one onnxruntime's
symbolic inference makes: a slice whose end is a symbolic size ``s`` along an axis of static size
``d > 1`` keeps ``s`` elements (``s <= d``: the mask or table is at least as long as the sequence).
"""
from __future__ import annotations

import numpy as np
import onnx

Dim = int | str | None
Values = tuple  # tuple of Dim: the value of a 1-D int64 tensor, or a 1-tuple for a 0-D one
#: ends at least this large mean "to the end of the axis" (onnxruntime's symbolic inference's bound)
END_OF_AXIS = 2**31 - 1
#: tensors at most this long are carried as values (shape vectors, axes, indices)
MAX_VALUES = 64


class ComputedSizes:
    """Values of small int64 tensors and the shapes known so far, filled by one walk of a graph."""

    def __init__(self, graph: onnx.GraphProto, shapes: dict, opset: int = 0):
        #: tensor -> (shape, elem type) known before the walk (inference or declarations)
        self.shapes = shapes
        #: tensor -> (shape, elem type) found by the walk, where ``shapes`` has none or unknown sizes
        self.found: dict[str, tuple] = {}
        self.values: dict[str, Values] = {}
        #: tensors whose value is 0-D (a scalar); the others are 1-D
        self.scalars: set[str] = set()
        #: constant tensors (initializers, Constant nodes), read into ``values`` when first asked for
        self.constants: dict[str, onnx.TensorProto] = {init.name: init for init in graph.initializer}
        #: tensor -> the node of a value op that makes it (output 0), followed when its value is asked for
        self.producers: dict[str, onnx.NodeProto] = {}
        #: tensors whose producer was followed (its value is in ``values`` when one was found)
        self.followed: set[str] = set()
        self.opset = opset  # of the default domain: the value ops read their attributes by it

    def _read_constant(self, name: str) -> None:
        tensor = self.constants[name]
        self.values[name] = None  # read once, whatever it holds
        if tensor.data_type != onnx.TensorProto.INT64 or len(tensor.dims) > 1 or tensor.data_location:
            return
        size = tensor.dims[0] if tensor.dims else 1
        if size > MAX_VALUES:
            return
        raw = tensor.raw_data
        values = np.frombuffer(raw, dtype="<i8").tolist() if len(raw) == 8 * size else list(tensor.int64_data)
        if len(values) != size:
            return  # a skeleton's stripped bytes, or a malformed tensor
        self.values[name] = tuple(values)
        if not tensor.dims:
            self.scalars.add(name)

    def shape(self, name: str) -> tuple | None:
        entry = self.found.get(name) or self.shapes.get(name)
        return entry[0] if entry else None

    def elem_type(self, name: str) -> int:
        entry = self.found.get(name) or self.shapes.get(name)
        return entry[1] if entry else 0

    def value(self, name: str) -> Values | None:
        if name in self.constants and name not in self.values:
            self._read_constant(name)
        elif name in self.producers and name not in self.followed:
            self._follow(name)
        return self.values.get(name) if name else None

    def _follow(self, tensor: str) -> None:
        """Run the value ops above ``tensor``, inputs first (iterative post-order, each op once)."""
        stack = [tensor]
        while stack:
            name = stack[-1]
            if name in self.followed:
                stack.pop()
                continue
            node = self.producers[name]
            pending = [i for i in node.input if i in self.producers and i not in self.followed and i not in stack]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            self.followed.add(name)
            VALUE_OPS[node.op_type](self, node, self.opset)

    def is_scalar(self, name: str) -> bool:
        """Whether ``name`` holds a 0-D value (after :meth:`value` read it)."""
        return self.value(name) is not None and name in self.scalars

    def set_value(self, name: str, values: Values | None, scalar: bool = False) -> None:
        if values is not None and len(values) <= MAX_VALUES:
            self.values[name] = tuple(values)
            if scalar:
                self.scalars.add(name)


def _attribute(node: onnx.NodeProto, name: str, default=None):
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def _known(shape: tuple | None) -> bool:
    return shape is not None and None not in shape


# ---------------------------------------------------------------------- values of int64 tensors
def _shape_value(state: ComputedSizes, node, opset: int) -> None:
    shape = state.shape(node.input[0])
    if shape is not None:
        start, end = _attribute(node, "start", 0), _attribute(node, "end", None)
        state.set_value(node.output[0], shape[start:end] if opset >= 15 else shape)


def _gather_value(state: ComputedSizes, node, opset: int) -> None:
    data, indices = state.value(node.input[0]), state.value(node.input[1])
    if data is None or indices is None or state.is_scalar(node.input[0]) or _attribute(node, "axis", 0) != 0:
        return
    if all(isinstance(i, int) and -len(data) <= i < len(data) for i in indices):
        state.set_value(node.output[0], [data[i] for i in indices], scalar=state.is_scalar(node.input[1]))


def _unsqueeze_value(state: ComputedSizes, node, opset: int) -> None:
    axes = state.value(node.input[1]) if opset >= 13 and len(node.input) > 1 else _attribute(node, "axes")
    if state.is_scalar(node.input[0]) and axes is not None and list(axes) in ([0], [-1]):
        state.set_value(node.output[0], state.value(node.input[0]))


def _squeeze_value(state: ComputedSizes, node, opset: int) -> None:
    data = state.value(node.input[0])
    if data is not None and len(data) == 1 and not state.is_scalar(node.input[0]):
        state.set_value(node.output[0], data, scalar=True)


def _concat_value(state: ComputedSizes, node, opset: int) -> None:
    parts = [state.value(name) for name in node.input]
    if all(p is not None for p in parts) and not any(state.is_scalar(name) for name in node.input):
        state.set_value(node.output[0], [d for p in parts for d in p])


def _pass_value(state: ComputedSizes, node, opset: int) -> None:
    if node.op_type == "Cast" and _attribute(node, "to") != onnx.TensorProto.INT64:
        return
    state.set_value(node.output[0], state.value(node.input[0]), scalar=state.is_scalar(node.input[0]))


def _constant_value(state: ComputedSizes, node, opset: int) -> None:
    tensor = _attribute(node, "value")
    if isinstance(tensor, onnx.TensorProto):
        state.constants[node.output[0]] = tensor


def _slice_value(state: ComputedSizes, node, opset: int) -> None:
    data, params = state.value(node.input[0]), _slice_params(state, node, opset)
    if data is None or params is None or state.is_scalar(node.input[0]):
        return
    starts, ends, axes, steps = params
    if len(starts) == 1 and axes[0] in (0, -1) and all(isinstance(v, int) for v in (starts[0], ends[0], steps[0])):
        if steps[0] != 0:
            state.set_value(node.output[0], data[starts[0]:ends[0]:steps[0]])


# ---------------------------------------------------------------------- shapes of their consumers
def _slice_params(state: ComputedSizes, node, opset: int) -> tuple | None:
    """(starts, ends, axes, steps) of a Slice, each a tuple, or None when one is unknown."""
    if opset < 10:
        starts, ends = _attribute(node, "starts"), _attribute(node, "ends")
        axes, steps = _attribute(node, "axes"), None
    else:
        starts, ends = state.value(node.input[1]), state.value(node.input[2])
        axes = state.value(node.input[3]) if len(node.input) > 3 and node.input[3] else None
        steps = state.value(node.input[4]) if len(node.input) > 4 and node.input[4] else None
        if (len(node.input) > 3 and node.input[3] and axes is None) or (
                len(node.input) > 4 and node.input[4] and steps is None):
            return None
    if starts is None or ends is None or len(starts) != len(ends):
        return None
    axes = tuple(range(len(starts))) if axes is None else tuple(axes)
    steps = (1,) * len(starts) if steps is None else tuple(steps)
    return (tuple(starts), tuple(ends), axes, steps) if len(axes) == len(steps) == len(starts) else None


def _sliced_size(size: Dim, start: Dim, end: Dim, step: Dim) -> Dim:
    """Elements kept along one axis, or None when they do not follow without a guess."""
    if not all(isinstance(v, int) for v in (start, step)) or step == 0:
        return None
    if isinstance(size, int) and isinstance(end, int):
        return len(range(size)[start:end:step])
    if start != 0 or step != 1:
        return None
    if isinstance(size, int) and isinstance(end, str):
        return size if size <= 1 else end  # min(size, end): end when the table covers the sequence
    if isinstance(size, str) and (end == size or (isinstance(end, int) and end >= END_OF_AXIS)):
        return size
    return None


def _slice_shape(state: ComputedSizes, node, opset: int) -> tuple | None:
    dims, params = state.shape(node.input[0]), _slice_params(state, node, opset)
    if dims is None or params is None:
        return None
    out = list(dims)
    for start, end, axis, step in zip(*params):
        if not isinstance(axis, int) or not -len(dims) <= axis < len(dims):
            return None
        out[axis] = _sliced_size(dims[axis], start, end, step)
    return tuple(out)


VALUE_OPS = {"Shape": _shape_value, "Gather": _gather_value, "Unsqueeze": _unsqueeze_value,
             "Squeeze": _squeeze_value, "Concat": _concat_value, "Cast": _pass_value, "Identity": _pass_value,
             "Constant": _constant_value, "Slice": _slice_value}
#: ops whose output shape is worked out here; Reshape, Expand and ConstantOfShape targets are left to
#: onnx's data propagation and onnxruntime's symbolic pass (working them out here too finds shapes
#: that today's path does not, where onnxruntime's pass fails, and so changes analyses)
SHAPE_OPS = {"Slice": _slice_shape}
_READ_OPS = frozenset(VALUE_OPS) | frozenset(SHAPE_OPS)


def _computed_inputs(state: ComputedSizes, node) -> bool:
    """Whether a Slice reads a parameter that is not a constant (onnx's inference leaves those)."""
    return any(name and name not in state.constants for name in node.input[1:])


def computed_shapes(graph: onnx.GraphProto, shapes: dict, opset: int, *, inferred: bool) -> dict[str, tuple]:
    """Output shapes of the ``Slice`` nodes of ``graph`` that follow from the values of their int64
    inputs where ``shapes`` (tensor -> (tuple of Dim, elem
    type)) has none or unknown sizes: tensor -> (shape, elem type), fully known ones only.
    ``inferred``: ``shapes`` come from onnx's inference; else from declarations, and only nodes
    with computed parameters (which onnx's inference cannot read) are tried.

    Values are worked out only for the tensors those Slices read (a transformer export has
    thousands of shape computations and a handful of Slices whose bounds onnx cannot read). The
    Slices are tried in node order, so a value read off a sliced tensor's shape sees the shape
    found for it, as a walk of every node in order would."""
    state = ComputedSizes(graph, shapes, opset)
    slices = []
    producers = state.producers
    for node in graph.node:
        op_type = node.op_type  # read first: for the other nodes (most of a CNN) nothing else is read
        if op_type not in _READ_OPS or node.domain not in ("", "ai.onnx") or not node.output or not node.input:
            continue
        if op_type in VALUE_OPS:  # (a Constant node has no input: its value is not followed)
            producers[node.output[0]] = node
        if op_type in SHAPE_OPS:
            slices.append(node)
    for node in slices:
        if not _known(state.shape(node.output[0])) and (inferred or _computed_inputs(state, node)):
            shape, elem_type = SHAPE_OPS[node.op_type](state, node, opset), state.elem_type(node.input[0])
            if _known(shape) and elem_type:
                state.found[node.output[0]] = (shape, elem_type)
    return state.found
