"""The graph builder for transformer exports, and the run-time shape forms the exporters write.

:class:`TransformerBuilder` extends :class:`models.builder.GraphBuilder` with what transformer
exports need: integer token inputs with symbolic ``batch``/``sequence`` dims, parameters named
after their module path (``encoder.layer.0.attention.self.query.weight``), extra opset domains
(``com.microsoft``) and graph outputs declared with symbolic dims.

Two export styles are written:

* ``torchscript`` (opset 14..17): every size that depends on an input dim is computed at run
  time (``Shape -> Gather -> Unsqueeze -> Concat``), as ``torch.onnx.export`` with dynamic axes
  writes it;
* ``dynamo`` (opset 18..23): reshape targets are constants (``0`` copies an input dim, ``-1``
  takes the rest), other run-time sizes read ``Shape(start, end)`` slices, as the dynamo
  exporter writes them.

With static dims (``batch=2``) both styles write literal sizes, as an exporter does when it
constant-folds the shape computations of a static export.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

from models.builder import BIAS_STD, PRODUCER, GraphBuilder, ir_version_for

STYLES = ("torchscript", "dynamo")
#: the ORT-optimizer form of a model (com.microsoft fused ops on top of an opset-17 graph)
ORT_STYLE = "ort"
OPSETS = {"torchscript": (14, 17), "dynamo": (18, 23), ORT_STYLE: (17, 17)}
DEFAULT_OPSET = {"torchscript": 14, "dynamo": 18, ORT_STYLE: 17}
MS_DOMAIN = "com.microsoft"
#: torch's ``finfo(float32).min``, the value exporters use for masked attention scores
MASK_VALUE = float(np.finfo(np.float32).min)
#: the ``end`` torch writes for an open slice ``x[..., k:]``
INT64_MAX = int(np.iinfo(np.int64).max)

Dim = int | str


@dataclass(frozen=True)
class RunSize:
    """A size known only at run time: axis ``axis`` of tensor ``tensor``."""
    tensor: str
    axis: int


Size = int | RunSize


@dataclass(frozen=True)
class HeadsConfig:
    """The attention width every architecture's configuration starts with."""
    hidden: int
    heads: int

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


class TransformerBuilder(GraphBuilder):
    """A :class:`GraphBuilder` for one transformer export in one style."""

    opset_range = (min(low for low, _ in OPSETS.values()), max(high for _, high in OPSETS.values()))

    def __init__(self, name: str, *, style: str, opset: int | None = None, seed: int = 0,
                 batch: Dim = "batch", sequence: Dim = "sequence"):
        if style not in OPSETS:
            raise ValueError(f"{name}: style must be one of {sorted(OPSETS)}, got {style!r}")
        opset = DEFAULT_OPSET[style] if opset is None else opset
        low, high = OPSETS[style]
        if not low <= opset <= high:
            raise ValueError(f"{name}: the {style} style is written at opset {low}..{high}, got {opset}")
        super().__init__(name, opset=opset, seed=seed, batch=batch)
        if not (isinstance(sequence, str) and sequence) and not (isinstance(sequence, int) and sequence >= 1):
            raise ValueError(f"sequence must be a positive int or a dim name, got {sequence!r}")
        self.style, self.sequence = style, sequence
        self.domains: dict[str, int] = {"": opset}
        self.output_infos: list[onnx.ValueInfoProto] = []

    @property
    def torchscript(self) -> bool:
        return self.style == "torchscript"

    @property
    def dynamo(self) -> bool:
        return self.style == "dynamo"

    @contextlib.contextmanager
    def scopes(self, *names: str) -> Iterator[None]:
        """Nested :meth:`scope` blocks, outermost first."""
        with contextlib.ExitStack() as stack:
            for name in names:
                stack.enter_context(self.scope(name))
            yield

    def use_domain(self, domain: str, version: int = 1) -> str:
        self.domains[domain] = version
        return domain

    # ------------------------------------------------------------------ parameters
    def param_name(self, leaf: str) -> str:
        """``leaf`` under the current module path: scopes joined by dots."""
        return ".".join([*self.scope_path, leaf])

    def draw(self, shape: Sequence[int], std: float) -> np.ndarray:
        """The array :meth:`param` would store (the same draw from the builder's rng)."""
        return self.rng.standard_normal(tuple(shape), dtype=np.float32) * np.float32(std)

    def param(self, leaf: str, shape: Sequence[int], std: float, mean: float = 0.0) -> str:
        return self.normal(self.param_name(leaf), shape, std, mean)

    def param_uniform(self, leaf: str, shape: Sequence[int], low: float, high: float) -> str:
        return self.uniform(self.param_name(leaf), shape, low, high)

    def bias(self, leaf: str, size: int) -> str:
        return self.param(leaf, (size,), BIAS_STD)

    def buffer(self, leaf: str, array: np.ndarray) -> str:
        """A constant that is not drawn at random (position ids, masks, cos/sin tables)."""
        return self.add_initializer(self.param_name(leaf), array)

    # ------------------------------------------------------------------ inputs and outputs
    def token_input(self, name: str, elem_type: int = TensorProto.INT64) -> str:
        """An integer input of shape [batch, sequence]."""
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, [self.batch, self.sequence]))
        return name

    def float_input(self, name: str, dims: Sequence[Dim]) -> str:
        """A float input of shape [batch, *dims]."""
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [self.batch, *dims]))
        return name

    def graph_output(self, tensor: str, name: str, dims: Sequence[Dim]) -> str:
        """Rename ``tensor`` to ``name`` and declare it a float graph output of shape ``dims``."""
        self.output(tensor, name)
        self.output_infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims)))
        return name

    def finish(self, doc: str = "") -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.output_infos, self.initializers)
        opsets = [helper.make_opsetid(domain, version) for domain, version in self.domains.items()]
        return helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER,
                                 ir_version=ir_version_for(self.opset), doc_string=doc)

    # ------------------------------------------------------------------ run-time sizes
    def size_of(self, tensor: str, axis: int, static: Dim) -> Size:
        """``static`` when it is a number, else the run-time size of ``tensor``'s ``axis``."""
        return static if isinstance(static, int) else RunSize(tensor, axis)

    def batch_of(self, tensor: str, axis: int = 0) -> Size:
        return self.size_of(tensor, axis, self.batch)

    def sequence_of(self, tensor: str, axis: int = 1) -> Size:
        return self.size_of(tensor, axis, self.sequence)

    def run_size(self, size: RunSize) -> str:
        """A [1] int64 tensor holding ``size`` at run time, in this style's form."""
        if self.torchscript:
            index = self.const(np.int64(size.axis), np.int64)
            gathered = self.node("Gather", [self.unary("Shape", size.tensor), index], axis=0)
            return self.unsqueeze(gathered, [0])
        return self.node("Shape", [size.tensor], start=size.axis, end=size.axis + 1)

    def shape_tensor(self, sizes: Sequence[Size]) -> str:
        """A 1-D int64 tensor of ``sizes``: a constant, or a Concat of constants and run-time sizes.

        The torchscript form writes one constant per number (as the exporter's ``Unsqueeze``
        constants); the dynamo form joins neighbouring numbers into one constant.
        """
        if all(isinstance(s, int) for s in sizes):
            return self.ints(sizes)
        pieces: list[str] = []
        numbers: list[int] = []
        for size in sizes:
            if isinstance(size, int) and not self.torchscript:
                numbers.append(size)
                continue
            if numbers:
                pieces.append(self.ints(numbers))
                numbers = []
            pieces.append(self.ints([size]) if isinstance(size, int) else self.run_size(size))
        if numbers:
            pieces.append(self.ints(numbers))
        return pieces[0] if len(pieces) == 1 else self.concat(pieces, axis=0)

    def reshape_to(self, x: str, sizes: Sequence[Size]) -> str:
        """Reshape ``x`` to ``sizes``: computed (torchscript) or a constant with 0 / -1 (dynamo).

        In the dynamo form a run-time size read from ``x``'s own axis at the same position is
        written 0 (copy), any other one -1 (at most one).
        """
        if self.torchscript or all(isinstance(s, int) for s in sizes):
            return self.node("Reshape", [x, self.shape_tensor(sizes)])
        target = [s if isinstance(s, int) else 0 if (s.tensor, s.axis) == (x, i) else -1
                  for i, s in enumerate(sizes)]
        if target.count(-1) > 1:
            raise ValueError(f"{self.name}: reshape of {x} to {sizes} needs more than one -1")
        return self.reshape(x, target)

    def slice_to(self, x: str, end: Size, axis: int) -> str:
        """``x[0:end]`` along ``axis`` (``end`` a number or a run-time size)."""
        return self.node("Slice", [x, self.ints([0]), self.shape_tensor([end]), self.ints([axis])])
