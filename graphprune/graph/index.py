"""A read-only, name-keyed index over the editable graph: producers, consumers, constants, shapes.

Analysis, scoring and planning read the model only through this index and never mutate it.
It is built once from the graph's own links (node order, inputs and outputs, subgraph reads),
so it holds no state of its own that edits could make stale: after an edit, build a new one.
Tensors and nodes are keyed by name (node names are made unique by normalization).
"""
from __future__ import annotations

import logging
import threading
from functools import cached_property
from typing import NamedTuple

import numpy as np
import onnx
import onnx_ir as ir
from onnx_ir import serde

from .gc_pause import gc_paused
from .model import to_proto
from .nodes import has_subgraph
from .shapes import Shape, skeleton_shapes

log = logging.getLogger(__name__)

#: GraphIndex keeps at most this many bytes of initializer values cached: beyond it, values are
#: read again from the graph when asked for, so analysis never holds a second copy of all weights
ARRAY_CACHE_BYTES = 256 * 2**20


class Use(NamedTuple):
    """One input slot of one node: ``node.inputs[index]`` (``index`` -1: read inside a subgraph).
    A named tuple: one is made per input of every node (a frozen dataclass cost twice as much)."""

    node: str
    index: int


class GraphIndex:
    """Name-based index of the main graph of an ``onnx_ir.Model``."""

    def __init__(self, model: ir.Model, shapes: dict | None = None, strict_initializer_inputs: bool = False,
                 skeleton: onnx.ModelProto | None = None):
        """``shapes``: the tensor shapes of this graph, when known (else inferred here); ``skeleton``:
        its weight-less ModelProto, when one was made already (the bytes of ``to_proto(model,
        tensors="skeleton")``, e.g. :func:`graph.proto.weightless_copy` of the proto an unchanged
        graph was read from); it is read, never modified."""
        # many small objects (uses, names, the skeleton, shapes), no cycles: see graph.gc_pause
        with gc_paused():
            self.model = model
            self.graph = model.graph
            #: treat initializers that are also graph inputs as overridable (barriers) instead of weights
            self.strict_initializer_inputs = strict_initializer_inputs
            self.nodes: dict[str, ir.Node] = {}
            self.node_order: list[str] = []
            self.producer: dict[str, str] = {}
            self.consumers: dict[str, list[Use]] = {}
            graph_nodes = list(self.graph)  # one walk of onnx-ir's linked list (a generator per step)
            self._link(graph_nodes)
            self.node_pos = {name: i for i, name in enumerate(self.node_order)}
            self.initializers: dict[str, ir.Value] = dict(self.graph.initializers)
            self._add_implicit_uses(graph_nodes)
            self.graph_inputs = [v.name for v in self.graph.inputs if v.name not in self.initializers]
            self.graph_outputs = [v.name for v in self.graph.outputs]
            #: initializers also declared as graph inputs (old IR): treated as weights, shapes kept in sync
            self.initializer_inputs = {v.name for v in self.graph.inputs if v.name in self.initializers}
            #: initializer values read so far, least recently used first, at most ARRAY_CACHE_BYTES in all
            self._arrays: dict[str, np.ndarray] = {}
            self._cached_bytes = 0
            self._arrays_lock = threading.Lock()  # scorers read values on worker threads (importance.threads)
            #: the weight-less ModelProto shape inference ran on (None when ``shapes`` were given): the
            #: graph as indexed, for counts that read protos (stale after an edit, like the whole index)
            self.skeleton: onnx.ModelProto | None = skeleton
            if shapes is None:
                if self.skeleton is None:
                    self.skeleton = to_proto(model, tensors="skeleton")
                shapes = skeleton_shapes(self.skeleton)
            self._shapes = shapes

    def _link(self, graph_nodes: list[ir.Node]) -> None:
        """Fill nodes, node order, producers and consumers (each node's name read once, the dicts
        held in locals; with Use a named tuple, the index of 20k nodes without inference 91 -> 67 ms)."""
        nodes, order, producer, consumers = self.nodes, self.node_order, self.producer, self.consumers
        for node in graph_nodes:
            name = node.name
            nodes[name] = node
            order.append(name)
            for i, value in enumerate(node.inputs):
                tensor = "" if value is None else value.name
                if tensor:
                    uses = consumers.get(tensor)
                    if uses is None:
                        consumers[tensor] = [Use(name, i)]
                    else:
                        uses.append(Use(name, i))
            for value in node.outputs:
                tensor = value.name
                if tensor:
                    producer[tensor] = name

    def _add_implicit_uses(self, graph_nodes: list[ir.Node]) -> None:
        """Tensors read from inside a subgraph (If/Loop/Scan bodies) count as uses (index -1)."""
        for node in graph_nodes:
            if not node.attributes or not has_subgraph(node):  # most nodes have none (20k nodes: 9 -> 5.5 ms)
                continue
            for name in sorted(subgraph_reads_of(node)):
                if name in self.producer or name in self.initializers or any(
                        v.name == name for v in self.graph.inputs):
                    self.consumers.setdefault(name, []).append(Use(node.name, -1))

    # ------------------------------------------------------------------ opsets
    @cached_property
    def opsets(self) -> dict[str, int]:
        out = dict(self.model.opset_imports)
        if "ai.onnx" in out and "" not in out:
            out[""] = out["ai.onnx"]
        return out

    def opset(self, domain: str = "") -> int:
        return self.opsets.get(domain or "", 0)

    # ------------------------------------------------------------------ tensors
    def is_constant(self, name: str) -> bool:
        return name in self.initializers

    def elem_type_of_initializer(self, name: str) -> int:
        return self.initializers[name].const_value.dtype.value

    def array(self, name: str) -> np.ndarray:
        """Value of an initializer (read-only; cached up to ARRAY_CACHE_BYTES, least recently used out)."""
        with self._arrays_lock:  # scorers read values on worker threads (importance.threads)
            arr = self._arrays.get(name)
            if arr is None:
                arr = _int64_array(self.initializers[name].const_value)
                if arr is None:
                    arr = np.asarray(self.initializers[name].const_value.numpy())
                arr.setflags(write=False)
                if arr.nbytes <= ARRAY_CACHE_BYTES:
                    self._arrays[name] = arr
                    self._cached_bytes += arr.nbytes
                    while self._cached_bytes > ARRAY_CACHE_BYTES:
                        oldest = next(iter(self._arrays))
                        self._cached_bytes -= self._arrays.pop(oldest).nbytes
            else:
                self._arrays[name] = self._arrays.pop(name)  # most recently used last
            return arr

    @property
    def shapes(self) -> dict:
        """tensor -> (shape, elem type) of every tensor inference found (see :mod:`.shapes`)."""
        return self._shapes

    def shape(self, name: str) -> Shape | None:
        entry = self._shapes.get(name)
        return entry[0] if entry else None

    def elem_type(self, name: str) -> int:
        entry = self._shapes.get(name)
        return entry[1] if entry else 0

    def rank(self, name: str) -> int | None:
        s = self.shape(name)
        return None if s is None else len(s)

    def node_of(self, tensor: str) -> ir.Node | None:
        name = self.producer.get(tensor)
        return self.nodes[name] if name is not None else None

    def uses(self, tensor: str) -> list[Use]:
        return self.consumers.get(tensor, [])


def int64_bytes(tensor) -> tuple[bytes, list] | None:
    """(raw little-endian bytes, dims) of an int64 onnx-ir tensor read from a TensorProto that holds
    its data as raw bytes (shapes, axes, indices: most constants a graph holds), else None."""
    if type(tensor) is not serde.TensorProtoTensor:
        return None
    proto = tensor.raw
    if proto.data_type != onnx.TensorProto.INT64 or proto.data_location or not proto.HasField("raw_data"):
        return None
    return proto.raw_data, proto.dims


def _int64_array(tensor) -> np.ndarray | None:
    """The array ``tensor.numpy()`` gives, read straight off the protobuf for :func:`int64_bytes`
    tensors, else None. onnx-ir's numpy() goes through enum and dtype lookups first (20k nodes,
    11k such constants: 36 -> 17 ms)."""
    found = int64_bytes(tensor)
    if found is None:
        return None
    raw, dims = found
    arr = np.frombuffer(raw, dtype=_LITTLE_INT64)
    if len(dims) == 1 and dims[0] == arr.size:
        return arr  # reshape, which reads the dims container, is most of the cost of a short vector
    return arr.reshape(tuple(dims))


_LITTLE_INT64 = np.dtype("<i8")


def subgraph_reads_of(node: ir.Node) -> set[str]:
    """Names of outer tensors read by the subgraphs of ``node`` (any depth)."""
    read: set[str] = set()
    defined: set[str] = set()
    stack = [g for a in node.attributes.values() for g in _graphs(a)]
    while stack:
        g = stack.pop()
        defined.update(v.name for v in g.inputs)
        defined.update(g.initializers)
        for n in g:
            read.update(v.name for v in n.inputs if v is not None and v.name)
            defined.update(v.name for v in n.outputs if v.name)
            for a in n.attributes.values():
                stack.extend(_graphs(a))
        read.update(v.name for v in g.outputs)
    return read - defined


def subgraph_reads(graph: ir.Graph) -> set[str]:
    """Every outer tensor name read inside the subgraphs of ``graph``'s nodes."""
    names: set[str] = set()
    for node in graph:
        if has_subgraph(node):
            names |= subgraph_reads_of(node)
    return names


def _graphs(attr) -> list:
    if attr.is_ref():
        return []
    if attr.type == ir.AttributeType.GRAPH:
        return [attr.value]
    if attr.type == ir.AttributeType.GRAPHS:
        return list(attr.value)
    return []
