"""The concrete shape and element type of a tensor, its size in bytes, and the names and sizes the
counts read off a graph proto (no I/O, no runtime).

Reading a string field of a protobuf message makes a new Python string every time, so a graph of
20,000 nodes costs tens of milliseconds per pass over its node names. Shapes, parameters and MACs
each walk the nodes; :class:`GraphNames` reads every node's op type, domain, inputs and outputs
and every initializer's dims and type once, for all of them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    elem_type: int

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * element_size(self.elem_type)


def element_size(elem_type: int) -> int:
    """Bytes per element (sub-byte types round up to 1; unknown types count 4)."""
    try:
        return max(1, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).itemsize)
    except (KeyError, TypeError, ValueError):
        return 4


@dataclass(frozen=True)
class GraphNames:
    """Per node of a main graph, in graph order: the node, its op type, domain, inputs and outputs;
    per initializer name: (element count, dims, element type), the last one of a name winning."""

    nodes: list[onnx.NodeProto]
    op_types: list[str]
    domains: list[str]
    inputs: list[list[str]]
    outputs: list[list[str]]
    initializers: dict[str, tuple[int, tuple[int, ...], int]]

    def needed(self) -> set[str]:
        """Every tensor some node reads or writes (an omitted optional one, "", left out)."""
        names = set().union(*self.inputs, *self.outputs)
        names.discard("")
        return names

    def read(self) -> set[str]:
        """Every tensor some node reads."""
        names = set().union(*self.inputs)
        names.discard("")
        return names


def graph_names(model: onnx.ModelProto) -> GraphNames:
    """Read the main graph of ``model`` once (see :class:`GraphNames`)."""
    graph = model.graph
    nodes = list(graph.node)
    initializers = {}
    for t in graph.initializer:
        dims = tuple(t.dims)
        initializers[t.name] = (math.prod(dims), dims, t.data_type)
    return GraphNames(nodes, [n.op_type for n in nodes], [n.domain for n in nodes],
                      [n.input[:] for n in nodes], [n.output[:] for n in nodes], initializers)
