"""Checks that make a loaded model safe to work on: declared sizes, versions and graph structure.

Everything here reads only the protobuf skeleton (names, dims, types, node lists) and never
allocates memory proportional to a *declared* size: a tensor's bytes are only trusted once
they are actually present in the file.

* :func:`check_tensors` — every tensor's element type is known, its element count is below
  :data:`MAX_TENSOR_ELEMENTS` and its data (raw bytes or typed values) matches its dims.
* :func:`normalize_declared_dims` — a negative dim declared on a graph input, output or
  value_info (older Paddle2ONNX writes ``dim_value: -1`` for a dynamic dim, and onnxruntime
  runs such models) is made unknown, as the exporter meant. A negative dim of a stored tensor
  (initializer, constant) stays an error (:func:`check_tensor`).
* :func:`check_declared_shapes` — no graph input, output or value_info declares more than
  :data:`MAX_TENSOR_ELEMENTS` elements (validation would allocate inputs of that size).
* :func:`check_versions` — the IR version and the opsets of the standard domains are ones this
  onnx release knows.
* :func:`check_structure` (in :mod:`graphprune.structure_checks`, re-exported here) — in every
  graph and subgraph: each node output is produced once, every input is defined (graph input,
  initializer, earlier node or outer scope), graph outputs exist, names of inputs/outputs/
  initializers are unique, and the nodes form no cycle. An acyclic graph listed out of order is
  sorted (stable), as the ONNX checker requires.
* :func:`run_checker` — ``onnx.checker`` (full: strict shape inference) on a copy of the model
  without its big weights, so it is cheap and works above the 2 GB protobuf limit.

Each failure raises one :class:`~graphprune.errors.InvalidModelError` /
:class:`~graphprune.errors.UnsafeModelError` whose message names the tensor or node.
"""
from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
import onnx
from onnx import helper

from .errors import InvalidModelError, UnsafeModelError
from .graph import copy_fields
from .structure_checks import check_structure, invalid_model

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


def _declared_shapes(model: onnx.ModelProto):
    """``(value_info, shape)`` of every declared tensor shape of every graph (inputs, outputs, value_info)."""
    for graph, _ in iter_graphs(model):
        for vi in [*graph.input, *graph.output, *graph.value_info]:
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
                yield vi, vi.type.tensor_type.shape


def normalize_declared_dims(model: onnx.ModelProto, where: str) -> int:
    """Make every negative declared dim unknown (see module docstring); returns how many there were."""
    count = 0
    for _, shape in _declared_shapes(model):
        for d in shape.dim:
            if d.HasField("dim_value") and d.dim_value < 0:
                d.ClearField("dim_value")
                count += 1
    if count:
        log.info("%s: %d declared dimension(s) of -1 read as unknown (dynamic)", where, count)
    return count


def check_declared_shapes(model: onnx.ModelProto, where: str) -> None:
    """Refuse graph inputs, outputs and value_infos declaring an absurd number of elements.

    Negative dims count as unknown (:func:`normalize_declared_dims` removes them at load)."""
    for vi, shape in _declared_shapes(model):
        dims = [d.dim_value for d in shape.dim if d.HasField("dim_value") and d.dim_value >= 0]
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
        if checker_keeps(element_count(t.dims), t.data_location == onnx.TensorProto.EXTERNAL):
            light.graph.initializer.add().CopyFrom(t)
        elif t.name not in declared:
            light.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return light


def checker_keeps(count: int, external: bool) -> bool:
    """Whether :func:`checker_copy` keeps an initializer of ``count`` elements (with its values);
    the others become typed graph inputs."""
    return count <= CHECKER_KEEP_ELEMENTS and not external


def _first_line(exc: Exception) -> str:
    """The checker's message on one line; of cascading inference errors only the first is kept."""
    text = " ".join(str(exc).split())
    first = text.find("(op_type:")
    second = text.find(" (op_type:", first + 1) if first >= 0 else -1
    if second > 0:
        text = text[:second] + " (and errors that follow from it)"
    return text or type(exc).__name__


def run_checker(model: onnx.ModelProto | bytes, where: str) -> None:
    """``onnx.checker.check_model(full_check=True)`` on :func:`checker_copy`; one-line error.
    ``model`` may be the checker's copy already, serialized (bytes)."""
    light = model if isinstance(model, bytes) else checker_copy(model)
    try:
        onnx.checker.check_model(light, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise invalid_model(where, _first_line(exc)) from exc
    except UnicodeDecodeError as exc:  # the checker's message quotes a name that is not UTF-8
        raise invalid_model(where, "it holds text that is not UTF-8 (corrupted file?)") from exc


def check_model(model: onnx.ModelProto, where: str) -> None:
    """All load-time checks, cheapest first (the model may be reordered and its negative declared dims
    made unknown, never otherwise changed)."""
    normalize_declared_dims(model, where)
    check_versions(model, where)
    check_declared_shapes(model, where)
    check_structure(model, where)
    run_checker(model, where)
