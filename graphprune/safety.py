"""Checks that make a loaded model safe to work on: declared sizes, versions and graph structure.

Everything here reads only the protobuf skeleton (names, dims, types, node lists) and never
allocates memory proportional to a *declared* size: a tensor's bytes are only trusted once
they are actually present in the file.

* :func:`check_tensors` — every tensor's element type is known, its element count is below
  :data:`MAX_TENSOR_ELEMENTS` and its data (raw bytes or typed values) matches its dims.
* :func:`check_declared_shapes` — no graph input, output or value_info declares more than
  :data:`MAX_TENSOR_ELEMENTS` elements (validation would allocate inputs of that size).
* :func:`check_versions` — the IR version and the opsets of the standard domains are ones this
  onnx release knows.
* :func:`check_structure` — in every graph and subgraph: each node output is produced once,
  every input is defined (graph input, initializer, earlier node or outer scope), graph
  outputs exist, names of inputs/outputs/initializers are unique, and the nodes form no cycle.
  An acyclic graph listed out of order is sorted (stable), as the ONNX checker requires.
* :func:`run_checker` — ``onnx.checker`` (full: strict shape inference) on a copy of the model
  without its big weights, so it is cheap and works above the 2 GB protobuf limit.

Each failure raises one :class:`~graphprune.errors.InvalidModelError` /
:class:`~graphprune.errors.UnsafeModelError` whose message names the tensor or node.
"""
from __future__ import annotations

import heapq
import logging
from functools import lru_cache

import numpy as np
import onnx
from onnx import helper

from .errors import InvalidModelError, UnsafeModelError
from .graph import copy_fields

log = logging.getLogger(__name__)

#: the largest tensor (elements) graphprune accepts, declared or stored: 4 Gi elements (16 GiB of float32)
MAX_TENSOR_ELEMENTS = 2**32
#: initializers with at most this many elements keep their values in the checker's copy (shape constants)
CHECKER_KEEP_ELEMENTS = 4096

#: element types stored several to a byte: bits per element
_PACKED_BITS = {
    name_value: bits
    for name, bits in (("INT4", 4), ("UINT4", 4), ("FLOAT4E2M1", 4), ("INT2", 2), ("UINT2", 2),
                       ("FLOAT6E2M3", 6), ("FLOAT6E3M2", 6))
    if (name_value := getattr(onnx.TensorProto, name, None)) is not None
}
_COMPLEX = {onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128}
#: standard domains whose opset versions are checked against this onnx release
_STANDARD_DOMAINS = ("", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training")


# --------------------------------------------------------------------------- tensors
def element_count(dims) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


@lru_cache(maxsize=None)
def _item_bits(data_type: int) -> int | None:
    """Bits per element of ``data_type`` in raw_data (None: strings or unknown types)."""
    if data_type in _PACKED_BITS:
        return _PACKED_BITS[data_type]
    if data_type in (onnx.TensorProto.UNDEFINED, onnx.TensorProto.STRING):
        return None
    try:
        return 8 * np.dtype(helper.tensor_dtype_to_np_dtype(data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        return None


def raw_nbytes(data_type: int, count: int) -> int | None:
    """Bytes that ``count`` elements of ``data_type`` occupy in raw_data (None: not fixed-size)."""
    bits = _item_bits(data_type)
    return None if bits is None else (count * bits + 7) // 8


def tensor_nbytes(tensor: onnx.TensorProto) -> int | None:
    """Bytes of ``tensor``'s raw data as its dims and type declare them (None for strings)."""
    return raw_nbytes(tensor.data_type, element_count(tensor.dims))


def _known_type(data_type: int) -> bool:
    return data_type != onnx.TensorProto.UNDEFINED and data_type in onnx.TensorProto.DataType.values()


def _label(tensor: onnx.TensorProto) -> str:
    return repr(tensor.name) if tensor.name else "(unnamed constant)"


def check_tensor(tensor: onnx.TensorProto, where: str) -> None:
    """One tensor: known type, sane element count, stored data consistent with dims."""
    name = _label(tensor)
    for d in tensor.dims:
        if d < 0:
            raise InvalidModelError(f"{where}: tensor {name} has a negative dimension {d}")
    count = element_count(tensor.dims)
    if count > MAX_TENSOR_ELEMENTS:
        raise UnsafeModelError(
            f"{where}: tensor {name} declares {count:,} elements (dims {list(tensor.dims)}), more than the "
            f"{MAX_TENSOR_ELEMENTS:,} graphprune accepts; refused before allocating anything")
    if not _known_type(tensor.data_type):
        raise InvalidModelError(f"{where}: tensor {name} has an unknown element type {tensor.data_type}")
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        return  # checked against its file by io before a byte is read
    if tensor.HasField("raw_data"):
        expected = tensor_nbytes(tensor)
        if expected is not None:
            held = len(tensor.raw_data)
            if held != expected:
                raise InvalidModelError(
                    f"{where}: tensor {name} declares shape {list(tensor.dims)} ({expected:,} bytes) but holds "
                    f"{held:,} bytes (truncated or corrupted file?)")
        return
    if tensor.data_type in _PACKED_BITS:
        return  # packed values in int32_data: one entry per byte; checked by onnx when converted
    field = helper.tensor_dtype_to_field(tensor.data_type)
    held = len(getattr(tensor, field))
    expected = count * (2 if tensor.data_type in _COMPLEX else 1)
    if held != expected:
        raise InvalidModelError(
            f"{where}: tensor {name} declares shape {list(tensor.dims)} ({count:,} elements) but holds "
            f"{held:,} values in {field} (corrupted file?)")


def iter_graphs(model: onnx.ModelProto):
    """``(graph, where)`` for the main graph and every subgraph, at any depth (iterative)."""
    stack = [(model.graph, "graph")]
    while stack:
        graph, where = stack.pop()
        yield graph, where
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("g"):
                    stack.append((attr.g, f"subgraph {attr.name!r} of node {node.name or node.op_type!r}"))
                for g in attr.graphs:
                    stack.append((g, f"subgraph {attr.name!r} of node {node.name or node.op_type!r}"))


def iter_tensors(model: onnx.ModelProto):
    """Every TensorProto in the model: initializers and node attributes of every graph."""
    for graph, _ in iter_graphs(model):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("sparse_tensor"):
                    yield attr.sparse_tensor.values
                    yield attr.sparse_tensor.indices


def check_tensors(model: onnx.ModelProto, where: str) -> None:
    for tensor in iter_tensors(model):
        check_tensor(tensor, where)


def check_declared_shapes(model: onnx.ModelProto, where: str) -> None:
    """Refuse graph inputs, outputs and value_infos declaring an absurd number of elements."""
    for graph, _ in iter_graphs(model):
        for vi in [*graph.input, *graph.output, *graph.value_info]:
            if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
                continue
            dims = [d.dim_value for d in vi.type.tensor_type.shape.dim if d.HasField("dim_value")]
            if any(d < 0 for d in dims):
                raise InvalidModelError(f"{where}: tensor {vi.name!r} declares a negative dimension {dims}")
            count = element_count(dims)
            if count > MAX_TENSOR_ELEMENTS:
                raise UnsafeModelError(
                    f"{where}: tensor {vi.name!r} declares {count:,} elements (dims {dims}), more than the "
                    f"{MAX_TENSOR_ELEMENTS:,} graphprune accepts; refused before allocating anything")


# --------------------------------------------------------------------------- versions
@lru_cache(maxsize=None)
def known_opset(domain: str) -> int | None:
    """The newest opset of a standard ``domain`` this onnx knows (None for custom domains)."""
    if domain in ("", "ai.onnx"):
        return onnx.defs.onnx_opset_version()
    if domain not in _STANDARD_DOMAINS:
        return None
    versions = [s.since_version for s in onnx.defs.get_all_schemas_with_history() if s.domain == domain]
    return max(versions) if versions else None


def check_versions(model: onnx.ModelProto, where: str) -> None:
    ir = model.ir_version
    if ir <= 0:
        raise InvalidModelError(f"{where}: the model has no IR version (not a complete ONNX model)")
    if ir > onnx.IR_VERSION:
        raise InvalidModelError(
            f"{where}: IR version {ir} is newer than this onnx {onnx.__version__} reads (up to "
            f"{onnx.IR_VERSION}); upgrade onnx or re-export the model with an older IR version")
    if ir >= 3 and not model.opset_import:
        raise InvalidModelError(f"{where}: the model imports no opset (opset_import is empty)")
    seen: set[str] = set()
    for op in model.opset_import:
        domain = "" if op.domain == "ai.onnx" else op.domain
        label = op.domain or "ai.onnx"
        if domain in seen:
            raise InvalidModelError(f"{where}: opset of domain {label!r} is imported twice")
        seen.add(domain)
        if op.version < 1:
            raise InvalidModelError(f"{where}: opset {op.version} of domain {label!r} is not a valid version")
        newest = known_opset(domain)
        if newest is not None and op.version > newest:
            raise InvalidModelError(
                f"{where}: opset {op.version} of domain {label!r} is unknown to onnx {onnx.__version__} (it knows "
                f"up to {newest}); re-export with opset <= {newest} or upgrade onnx")


# --------------------------------------------------------------------------- structure
def _node_label(node: onnx.NodeProto, i: int) -> str:
    return f"{node.op_type} node {node.name!r}" if node.name else f"{node.op_type} node #{i}"


def _subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    out = []
    for attr in node.attribute:
        if attr.HasField("g"):
            out.append(attr.g)
        out.extend(attr.graphs)
    return out


def _outer_reads(node: onnx.NodeProto) -> set[str]:
    """Names a node's subgraphs (any depth) read from scopes outside themselves."""
    reads: set[str] = set()
    stack = [(g, frozenset()) for g in _subgraphs(node)]
    while stack:
        g, visible = stack.pop()
        defined = set(visible) | {i.name for i in g.input} | {t.name for t in g.initializer}
        defined |= {o for n in g.node for o in n.output if o}
        for n in g.node:
            reads.update(i for i in n.input if i and i not in defined)
            stack.extend((sub, frozenset(defined)) for sub in _subgraphs(n))
        reads.update(o.name for o in g.output if o.name not in defined)
    return reads


def _invalid(where: str, text: str) -> InvalidModelError:
    return InvalidModelError(f"{where}: not a valid ONNX model: {text}")


def _unique(names, what: str, where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise _invalid(where, f"{what} {name!r} is listed twice")
        seen.add(name)


def _check_text(graph: onnx.GraphProto, where: str) -> None:
    """Names must be text: a corrupted file can hold bytes that are not UTF-8 (protobuf hands them over raw)."""
    named = [("graph input", vi.name) for vi in graph.input] + [("graph output", vi.name) for vi in graph.output]
    named += [("initializer", t.name) for t in graph.initializer]
    for i, node in enumerate(graph.node):
        named += [(f"node #{i}", v) for v in (node.name, node.op_type, node.domain, *node.input, *node.output)]
    for what, value in named:
        if not isinstance(value, str):
            raise _invalid(where, f"{what} has a name that is not UTF-8 text ({value[:20]!r}; corrupted file?)")


def _check_one_graph(graph: onnx.GraphProto, outer: frozenset, where: str) -> list[int] | None:
    """Checks one graph; returns a topological order of its nodes when they are listed out of order."""
    _check_text(graph, where)
    _unique([i.name for i in graph.input], "graph input", where)
    _unique([o.name for o in graph.output], "graph output", where)
    _unique([t.name for t in graph.initializer], "initializer", where)
    defined = set(outer) | {i.name for i in graph.input} | {t.name for t in graph.initializer}
    defined |= {s.values.name for s in graph.sparse_initializer}
    producer: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for name in node.output:
            if not name:
                continue
            if name in producer:
                first = graph.node[producer[name]]
                raise _invalid(
                    where, f"tensor {name!r} is produced twice (by {_node_label(first, producer[name])} and "
                    f"{_node_label(node, i)}); an ONNX graph assigns every tensor once")
            if name in defined and name not in outer:
                raise _invalid(
                    where, f"{_node_label(node, i)} writes {name!r}, which is already a graph input or initializer")
            producer[name] = i
    deps: list[set[int]] = []
    for i, node in enumerate(graph.node):
        reads = [n for n in node.input if n] + sorted(_outer_reads(node))
        mine = set()
        for name in reads:
            if name in producer:
                mine.add(producer[name])
            elif name not in defined:
                raise _invalid(
                    where, f"{_node_label(node, i)} reads {name!r}, which no node produces and which is neither "
                    "a graph input nor an initializer (dangling input)")
        deps.append(mine)
    for out in graph.output:
        if out.name not in producer and out.name not in defined:
            raise _invalid(where, f"graph output {out.name!r} is not produced by any node")
    return _topological_order(graph, deps, where)


def _topological_order(graph: onnx.GraphProto, deps: list[set[int]], where: str) -> list[int] | None:
    """Stable Kahn order; None when the listed order is already topological. Raises on a cycle."""
    if all(all(d < i for d in ds) for i, ds in enumerate(deps)):
        return None
    users: list[list[int]] = [[] for _ in deps]
    missing = [0] * len(deps)
    for i, ds in enumerate(deps):
        for d in ds:
            users[d].append(i)
            missing[i] += 1  # a node reading its own output waits for itself: never ready
    ready = [i for i, m in enumerate(missing) if m == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            missing[u] -= 1
            if missing[u] == 0:
                heapq.heappush(ready, u)
    if len(order) < len(deps):
        cycle = _find_cycle(deps, set(order))
        names = " -> ".join(repr(graph.node[i].name or graph.node[i].op_type) for i in cycle)
        raise _invalid(where, f"the nodes form a cycle ({names}); an ONNX graph must be acyclic")
    return order


def _find_cycle(deps: list[set[int]], done: set[int]) -> list[int]:
    """One cycle among the nodes not in ``done`` (every such node lies on or behind a cycle)."""
    start = next(i for i in range(len(deps)) if i not in done)
    seen: dict[int, int] = {}
    path: list[int] = []
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(d for d in sorted(deps[node]) if d not in done)
    cycle = list(reversed(path[seen[node]:]))  # in data-flow order
    first = cycle.index(min(cycle))  # start at the node listed first
    cycle = cycle[first:] + cycle[:first]
    return cycle + [cycle[0]]


def check_structure(model: onnx.ModelProto, where: str) -> int:
    """Check every graph (see module docstring); sorts graphs listed out of order. Returns graphs sorted."""
    sorted_graphs = 0
    stack = [(model.graph, frozenset(), where)]
    while stack:
        graph, outer, label = stack.pop()
        order = _check_one_graph(graph, outer, label)
        if order is not None:
            nodes = [graph.node[i] for i in order]
            copies = [onnx.NodeProto() for _ in nodes]
            for c, n in zip(copies, nodes):
                c.CopyFrom(n)
            del graph.node[:]
            graph.node.extend(copies)
            sorted_graphs += 1
            log.info("%s: nodes were listed out of topological order; sorted", label)
        visible = set(outer) | {i.name for i in graph.input} | {t.name for t in graph.initializer}
        visible |= {o for n in graph.node for o in n.output if o}
        for node in graph.node:
            for sub in _subgraphs(node):
                stack.append((sub, frozenset(visible), f"{label}: subgraph of {node.op_type} node {node.name!r}"))
    return sorted_graphs


# --------------------------------------------------------------------------- onnx checker
def checker_copy(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose big (or external) main-graph initializers are graph inputs instead.

    Types and shapes are kept, so the checker and shape inference see the same graph, but no
    weight bytes are copied (small constants such as Reshape shapes keep their values).
    """
    light = onnx.ModelProto()
    copy_fields(model, light, skip=("graph",))
    copy_fields(model.graph, light.graph, skip=("initializer",))
    declared = {i.name for i in model.graph.input}
    for t in model.graph.initializer:
        small = element_count(t.dims) <= CHECKER_KEEP_ELEMENTS and t.data_location != onnx.TensorProto.EXTERNAL
        if small:
            light.graph.initializer.add().CopyFrom(t)
        elif t.name not in declared:
            light.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return light


def _first_line(exc: Exception) -> str:
    """The checker's message on one line; of cascading inference errors only the first is kept."""
    text = " ".join(str(exc).split())
    first = text.find("(op_type:")
    second = text.find(" (op_type:", first + 1) if first >= 0 else -1
    if second > 0:
        text = text[:second] + " (and errors that follow from it)"
    return text or type(exc).__name__


def run_checker(model: onnx.ModelProto, where: str) -> None:
    """``onnx.checker.check_model(full_check=True)`` on :func:`checker_copy`; one-line error."""
    light = checker_copy(model)
    try:
        onnx.checker.check_model(light, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise _invalid(where, _first_line(exc)) from exc
    except UnicodeDecodeError as exc:  # the checker's message quotes a name that is not UTF-8
        raise _invalid(where, "it holds text that is not UTF-8 (corrupted file?)") from exc


def check_model(model: onnx.ModelProto, where: str) -> None:
    """All load-time checks, cheapest first (the model may be reordered, never otherwise changed)."""
    check_versions(model, where)
    check_declared_shapes(model, where)
    check_structure(model, where)
    run_checker(model, where)
