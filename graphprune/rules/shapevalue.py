"""Values of small integer tensors (shapes, sizes, indices) together with their provenance.

Rules for ops that take a shape (Reshape, Resize sizes, Expand, ConstantOfShape, Tile...) need
to know, for each element of that shape, where it comes from:

* ``("const", initializer, flat_index, node, input_index)``: a literal in an initializer, read
  by ``node.input[input_index]`` — surgery can rewrite it (copy-on-write per use);
* ``("dim", tensor, axis)``: a copy of ``Shape(tensor)[axis]`` — it follows the tensor at run time;
* ``("scaled", tensor, axis, const)``: ``Shape(tensor)[axis]`` times a literal (``const`` is the
  literal's ``"const"`` source, so surgery can rewrite the factor: ``batch * heads``);
* ``None``: computed at run time in some other way — nothing can be said about it.

The evaluator is iterative over the producing subgraph and memoised.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

import numpy as np
import onnx

from ..graph.index import GraphIndex, int64_bytes
from ..graph.nodes import get_attr, input_name, inputs

MAX_ELEMENTS = 64
#: ops whose output is read off their input's shape, not its values
SIZE_OPS = frozenset({"Shape", "Size"})
#: ops whose ``_op_*`` method reads only the entries of input 0
FIRST_INPUT_OPS = frozenset({"Identity", "Cast", "Unsqueeze", "Squeeze"})


class Entry(NamedTuple):
    """One element of a small integer tensor (a named tuple: the analysis makes one per element of
    every shape vector a rule reads, and a frozen dataclass costs three times as much to make)."""

    value: int | None
    source: tuple | None
    #: the (tensor, axis) sizes this value depends on (a copy or any arithmetic of them)
    deps: frozenset = frozenset()

    @property
    def is_const(self) -> bool:
        return self.source is not None and self.source[0] == "const"

    @property
    def is_dim(self) -> bool:
        return self.source is not None and self.source[0] == "dim"

    @property
    def is_scaled(self) -> bool:
        return self.source is not None and self.source[0] == "scaled"

    @property
    def dim_source(self) -> tuple | None:
        """(tensor, axis) whose run-time size this entry copies or scales, else None."""
        return (self.source[1], self.source[2]) if self.is_dim or self.is_scaled else None


class ShapeValues:
    def __init__(self, index: GraphIndex):
        self.index = index
        self._memo: dict[str, list[Entry] | None] = {}
        self._handlers: dict[str, object] = {}  # op type -> its _op_* method or None
        #: initializer -> its elements as ints (None: not a small integer vector), read once
        self._ints: dict[str, tuple[int, ...] | None] = {}
        #: (tensor, start, end) -> entries of Shape(tensor)[start:end], made once
        self._dims: dict[tuple, list[Entry]] = {}

    def input_value(self, node, index: int) -> list[Entry] | None:
        """Entries of ``node.input[index]`` (constants get sources naming this use)."""
        name = input_name(node, index)
        if not name:
            return None
        if self.index.is_constant(name):
            return self._const(name, (node.name, index))
        return self.value(name)

    def value(self, tensor: str) -> list[Entry] | None:
        constants = self.index.initializers
        if tensor in constants:
            return self._const(tensor, None)
        memo = self._memo
        if tensor in memo:
            return memo[tensor]
        # iterative post-order over producers: a tensor's node, handler and inputs are read on its
        # first visit; when inputs are left to compute, its stack slot becomes a (tensor, node,
        # handler, inputs) plan computed once they are done (20k nodes: 11k shape ops visited once
        # each instead of twice). The stack grows as it did with one slot per tensor (same depth cap).
        stack: list = [tensor]
        while stack:
            top = stack[-1]
            if type(top) is tuple:
                stack.pop()
                name, node, handler, names = top
                if name not in memo:
                    memo[name] = self._apply(node, handler, names)
                continue
            if top in memo:
                stack.pop()
                continue
            node = self.index.node_of(top)
            handler = None if node is None else self._handler(node, top)
            names = () if handler is None or node.op_type in SIZE_OPS else inputs(node)
            pending = [i for i in names if i and i not in memo and i not in constants]
            if pending and len(stack) < 10_000:
                stack[-1] = (top, node, handler, names)
                stack.extend(pending)
                continue
            stack.pop()
            memo[top] = None if handler is None else self._apply(node, handler, names)
        return memo[tensor]

    # ------------------------------------------------------------------
    def _const(self, name: str, use: tuple | None) -> list[Entry] | None:
        if name in self._ints:
            ints = self._ints[name]
        else:
            ints = self._ints[name] = self._read_ints(name)
        if ints is None:
            return None
        node, idx = use if use else (None, None)
        return [Entry(v, ("const", name, i, node, idx) if use else None) for i, v in enumerate(ints)]

    def _read_ints(self, name: str) -> tuple[int, ...] | None:
        """The elements of initializer ``name`` when it is a small integer scalar or vector, else None.
        An int64 one held as raw bytes is unpacked straight from them (20k nodes, 11k constants:
        50 -> 10 ms); its array is read only if a rule asks for it."""
        found = int64_bytes(self.index.initializers[name].const_value)
        if found is not None:
            raw, dims = found
            count = len(raw) // 8
            if len(dims) <= 1 and len(raw) == 8 * count and (dims[0] if dims else 1) == count:
                return struct.unpack(f"<{count}q", raw) if count <= MAX_ELEMENTS else None
        arr = self.index.array(name)
        small = arr.dtype.kind in "iu" and arr.ndim <= 1 and arr.size <= MAX_ELEMENTS
        return tuple(arr.reshape(-1).tolist()) if small else None

    def _handler(self, node, name: str):
        """The ``_op_*`` method that computes ``name`` (output 0 of ``node``), or None."""
        if node.domain not in ("", "ai.onnx") or name != node.outputs[0].name:  # (it has an output: name)
            return None
        op = node.op_type
        if op not in self._handlers:
            self._handlers[op] = getattr(self, f"_op_{op}", None)
        return self._handlers[op]

    def _apply(self, node, handler, names) -> list[Entry] | None:
        """``handler`` on the entries of ``names`` (the inputs of ``node``; empty for SIZE_OPS)."""
        constants, memo = self.index.initializers, self._memo
        if node.op_type in FIRST_INPUT_OPS:
            names = names[:1]  # an Unsqueeze's axes are not read: their entries are not made
        ins = [self._const(i, (node.name, k)) if i in constants else memo.get(i) if i else None
               for k, i in enumerate(names)]
        try:
            return handler(node, ins)
        except (ValueError, IndexError, TypeError):
            return None

    def _op_Shape(self, node, ins):
        x = input_name(node, 0)
        shape = self.index.shape(x)
        if shape is None:
            return None
        rank = len(shape)
        start = get_attr(node, "start", 0)
        end = get_attr(node, "end", rank)
        start = max(0, min(rank, start + rank if start < 0 else start))
        end = max(0, min(rank, end + rank if end < 0 else end))
        # Shape(x) is read by several Shape nodes (one per size a shape vector copies): made once
        key = (x, start, end)
        entries = self._dims.get(key)
        if entries is None:
            entries = self._dims[key] = [
                Entry(shape[a] if isinstance(shape[a], int) else None, ("dim", x, a), frozenset({(x, a)}))
                for a in range(start, end)]
        return list(entries)

    def _op_Size(self, node, ins):
        shape = self.index.shape(input_name(node, 0))
        if shape is None:
            return None
        x = input_name(node, 0)
        total = 1
        for d in shape:
            total = total * d if isinstance(d, int) and total is not None else None
        return [Entry(total, None, frozenset((x, a) for a in range(len(shape))))]

    def _op_Identity(self, node, ins):
        return ins[0]

    def _op_Cast(self, node, ins):
        return ins[0]

    def _op_Unsqueeze(self, node, ins):
        return ins[0]

    def _op_Squeeze(self, node, ins):
        return ins[0]

    def _op_Concat(self, node, ins):
        if any(v is None for v in ins):
            return None
        out = []
        for v in ins:
            out.extend(v)
        return out

    def _op_Gather(self, node, ins):
        data, idx = ins[0], ins[1]
        if data is None or idx is None or any(e.value is None for e in idx):
            return None
        n = len(data)
        return [data[e.value + n if e.value < 0 else e.value] for e in idx]

    def _op_Slice(self, node, ins):
        data = ins[0]
        if data is None:
            return None
        if len(node.inputs) > 1:
            params = [ins[i] if i < len(ins) else None for i in range(1, 5)]
            if params[0] is None or params[1] is None:
                return None
            starts = [e.value for e in params[0]]
            ends = [e.value for e in params[1]]
            steps = [e.value for e in params[3]] if params[3] else [1]
        else:
            starts, ends = get_attr(node, "starts"), get_attr(node, "ends")
            steps = [1]
        if len(starts) != 1 or None in starts or None in ends or None in steps:
            return None
        return data[slice(starts[0], ends[0], steps[0])] or None

    @staticmethod
    def _paired(a, b):
        """Elements of two operands side by side (one element broadcast), or None."""
        if a is None or b is None:
            return None
        if len(a) == 1 and len(b) > 1:
            a = a * len(b)
        if len(b) == 1 and len(a) > 1:
            b = b * len(a)
        return list(zip(a, b)) if len(a) == len(b) else None

    def _arith(self, node, ins, fn):
        pairs = self._paired(ins[0], ins[1])
        if pairs is None:
            return None
        out = []
        for x, y in pairs:
            val = None if x.value is None or y.value is None else int(fn(x.value, y.value))
            out.append(Entry(val, None, x.deps | y.deps))
        return out

    def _op_ConstantOfShape(self, node, ins):
        shape = ins[0]
        if shape is None or any(e.value is None for e in shape) or len(shape) != 1:
            return None
        count = shape[0].value
        fill = _tensor_values(get_attr(node, "value"))
        fill = int(fill[0]) if fill is not None and fill.size else 0
        return [Entry(fill, None) for _ in range(count)] if 0 <= count <= MAX_ELEMENTS else None

    def _op_Equal(self, node, ins):
        pairs = self._paired(ins[0], ins[1])
        if pairs is None:
            return None
        out = []
        for x, y in pairs:
            if x.value is not None and y.value is not None:
                out.append(Entry(int(x.value == y.value), None, x.deps | y.deps))
            elif (x.is_dim and y.value is not None and y.value < 0) or (y.is_dim and x.value is not None and x.value < 0):
                out.append(Entry(0, None, x.deps | y.deps))  # a size is never negative
            else:
                out.append(Entry(None, None, x.deps | y.deps))
        return out

    def _op_Where(self, node, ins):
        cond, x, y = ins[0], ins[1], ins[2]
        if cond is None or x is None or y is None or any(e.value is None for e in cond):
            return None
        n = max(len(cond), len(x), len(y))
        if any(len(v) not in (1, n) for v in (cond, x, y)):
            return None
        pick = lambda v, i: v[i if len(v) > 1 else 0]  # noqa: E731 - broadcasting of one element
        return [pick(x, i) if pick(cond, i).value else pick(y, i) for i in range(n)]

    def _op_Mul(self, node, ins):
        out = self._arith(node, ins, lambda x, y: x * y)
        if out is None or len(out) != 1 or len(ins[0]) != 1 or len(ins[1]) != 1:
            return out
        a, b = ins
        dim, const = (a[0], b[0]) if a[0].is_dim and b[0].is_const else (b[0], a[0])
        if dim.is_dim and const.is_const:
            return [Entry(out[0].value, ("scaled", dim.source[1], dim.source[2], const.source), out[0].deps)]
        return out

    def _op_Add(self, node, ins):
        return self._arith(node, ins, lambda x, y: x + y)

    def _op_Sub(self, node, ins):
        return self._arith(node, ins, lambda x, y: x - y)

    def _op_Div(self, node, ins):
        return self._arith(node, ins, lambda x, y: int(np.trunc(x / y)))


def _tensor_values(value) -> np.ndarray | None:
    """Elements of a tensor attribute (an onnx-ir tensor or a TensorProto), flattened."""
    if value is None:
        return None
    if hasattr(value, "numpy"):
        return np.asarray(value.numpy()).reshape(-1)
    return onnx.numpy_helper.to_array(value).reshape(-1)


#: ops whose integer outputs ShapeValues follows element by element (copies, no arithmetic)
PURE_SHAPE_OPS = frozenset({"Identity", "Cast", "Unsqueeze", "Squeeze", "Concat", "Gather", "Slice"})


def copies_values(node, index: int) -> bool:
    """Does input ``index`` of ``node`` only copy integer values along (followed element by element)?"""
    if node.domain not in ("", "ai.onnx") or node.op_type not in PURE_SHAPE_OPS:
        return False
    return node.op_type == "Concat" or index == 0
