"""Conversion between ``onnx.ModelProto`` and the editable graph (an ``onnx_ir.Model``).

graphprune edits models as onnx-ir graphs: every value knows its producer and its uses, and
those links stay consistent through ``replace_all_uses_with``, ``graph.remove`` and
``graph.insert_after``, so no pass keeps consumer lists by hand. Weights are not copied on the
way in: an initializer of a loaded ModelProto stays that proto's bytes (``TensorProtoTensor``),
and only a tensor that a pass rewrites becomes a new array.

:func:`to_proto` writes the graph back so that a model that went through graphprune without an
edit gives the bytes it came with: the opset order and fields set explicitly to their default
value are remembered at :func:`from_proto` time, and value_info entries are kept as the model
declared them (:func:`value_info`; shapes that inference finds are never written). Tensors that a
pass wrote are serialized as raw little-endian data with ``data_location`` set explicitly.
"""
from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import NamedTuple

import numpy as np
import onnx
import onnx_ir as ir
from onnx_ir import serde

from .gc_pause import gc_paused

#: initializers with more elements than this lose their bytes in a skeleton copy (shape inference
#: needs only names, types and dims of weights; small int64 constants keep their values)
SKELETON_KEEP_ELEMENTS = 4096

_OPSETS = "graphprune.opset_order"
_VALUE_INFO = "graphprune.value_info"
_EMPTY_FIELDS = "graphprune.empty_fields"
_NODE_FIELDS = ("doc_string", "domain", "overload")
_GRAPH_FIELDS = ("name", "doc_string")
_MODEL_FIELDS = ("producer_name", "producer_version", "domain", "model_version", "doc_string")


def from_proto(proto: onnx.ModelProto) -> ir.Model:
    """The editable graph of ``proto`` (initializer bytes are shared with ``proto``, not copied)."""
    with gc_paused():  # one object per node, value and attribute, no cycles: see graph.gc_pause
        model = serde.deserialize_model(proto)
    model.meta[_OPSETS] = [(o.domain, o.version, o.HasField("domain")) for o in proto.opset_import]
    model.meta[_EMPTY_FIELDS] = _explicit_defaults(proto, _MODEL_FIELDS)
    _remember_graph(model.graph, proto.graph)
    return model


def copy_model(model: ir.Model) -> ir.Model:
    """An independent editable graph with the same contents as ``model`` (its weights copied)."""
    return from_proto(to_proto(model))


def _explicit_defaults(proto, fields: tuple[str, ...]) -> tuple[str, ...]:
    """Fields of ``proto`` set explicitly to their default value (written again by :func:`to_proto`)."""
    return tuple(f for f in fields if proto.HasField(f) and not getattr(proto, f))


def _remember_graph(graph: ir.Graph, proto: onnx.GraphProto) -> None:
    info = []
    for vi in proto.value_info:
        copy = onnx.ValueInfoProto()
        copy.CopyFrom(vi)
        info.append(copy)
    graph.meta[_VALUE_INFO] = info
    graph.meta[_EMPTY_FIELDS] = _explicit_defaults(proto, _GRAPH_FIELDS)
    for node, node_proto in zip(graph, proto.node):
        empty = _explicit_defaults(node_proto, _NODE_FIELDS)
        if empty:
            node.meta[_EMPTY_FIELDS] = empty


def value_map(graph: ir.Graph) -> dict[str, ir.Value]:
    """Every named value of ``graph``: inputs, initializers and node outputs."""
    values: dict[str, ir.Value] = {v.name: v for v in graph.inputs if v.name}
    values.update(graph.initializers)
    for node in graph:
        for out in node.outputs:
            if out.name:
                values[out.name] = out
    return values


def value_info(graph: ir.Graph) -> list[onnx.ValueInfoProto]:
    """The model's value_info entries: declarations kept as the model wrote them (edit this list
    to drop stale entries or to update a pruned size); shapes that inference finds never go here."""
    return graph.meta.setdefault(_VALUE_INFO, [])


class WrittenNodes(NamedTuple):
    """The NodeProtos an earlier :func:`to_proto` wrote for a graph, in graph order, and the names of
    the nodes edited since (no node may have been added, removed or moved since)."""

    protos: Sequence[onnx.NodeProto]
    edited: Collection[str]


def to_proto(model: ir.Model, *, tensors: str = "all", written: WrittenNodes | None = None) -> onnx.ModelProto:
    """The ModelProto of ``model``.

    ``tensors``: ``"all"`` copies every initializer; ``"skeleton"`` keeps only small ones (the
    others keep name, type and dims: enough for shape inference); ``"none"`` writes none.
    ``written``: the graph's nodes as written before; the nodes not edited since are copied from
    them instead of serialized again (the same messages).
    """
    if tensors not in ("all", "skeleton", "none"):
        raise ValueError(f"tensors must be all, skeleton or none, not {tensors!r}")
    proto = onnx.ModelProto()
    proto.ir_version = model.ir_version
    explicit = model.meta.get(_EMPTY_FIELDS, ())
    for field in _MODEL_FIELDS:
        value = getattr(model, field)
        if value or field in explicit:
            setattr(proto, field, value or type(getattr(proto, field))())
    for domain, version, named in _opset_order(model):
        entry = proto.opset_import.add(version=version)
        if domain or named:
            entry.domain = domain
    for key, value in model.metadata_props.items():
        proto.metadata_props.add(key=key, value=value)
    graph_into(proto.graph, model.graph, tensors=tensors, ir_version=model.ir_version, written=written)
    for function in model.functions.values():
        serde.serialize_function_into(proto.functions.add(), from_=function,
                                      create_value_info=model.ir_version >= 10, model_ir_version=model.ir_version)
    return proto


def _opset_order(model: ir.Model) -> list[tuple[str, int, bool]]:
    """(domain, version, domain written) in the order the model had them; new domains last."""
    current = dict(model.opset_imports)
    ordered = [(d, current.pop(d), named) for d, _, named in model.meta.get(_OPSETS, ()) if d in current]
    return ordered + [(d, v, True) for d, v in current.items()]


def graph_into(proto: onnx.GraphProto, graph: ir.Graph, *, tensors: str = "all", ir_version: int | None = None,
               written: WrittenNodes | None = None) -> None:
    """Serialize ``graph`` into ``proto`` (see :func:`to_proto` for ``tensors`` and ``written``)."""
    explicit = graph.meta.get(_EMPTY_FIELDS, ())
    for field in _GRAPH_FIELDS:
        value = getattr(graph, field)
        if value or field in explicit:
            setattr(proto, field, value or "")
    if written is None:
        for node in graph:
            node_into(proto.node.add(), node, ir_version)
    else:
        _nodes_into(proto.node, graph, written, ir_version)
    if tensors != "none":
        for name, value in graph.initializers.items():
            tensor_into(proto.initializer.add(), value.const_value, name, skeleton=tensors == "skeleton")
    for value in graph.inputs:
        serde.serialize_value_into(proto.input.add(), value)
    for value in graph.outputs:
        serde.serialize_value_into(proto.output.add(), value)
    proto.value_info.extend(value_info(graph))
    for key, value in graph.metadata_props.items():
        proto.metadata_props.add(key=key, value=value)


def _nodes_into(protos, graph: ir.Graph, written: WrittenNodes, ir_version: int | None) -> None:
    """The nodes of ``graph`` into ``protos``: copies of the ``written`` ones, serialized anew where
    edited. Copying runs of NodeProtos stays in C (20k nodes: 136 ms serialized, 15 ms copied)."""
    old, edited = written
    if len(old) != len(graph):
        raise ValueError(f"{len(old)} nodes written before for a graph of {len(graph)} nodes")
    start = 0
    if edited:
        for i, node in enumerate(graph):
            if node.name in edited:
                protos.extend(old[start:i])
                node_into(protos.add(), node, ir_version)
                start = i + 1
    protos.extend(old[start:])


def node_into(proto: onnx.NodeProto, node: ir.Node, ir_version: int | None = None) -> None:
    serde.serialize_node_into(proto, node, model_ir_version=ir_version)
    for field in node.meta.get(_EMPTY_FIELDS, ()):
        if not getattr(proto, field):
            setattr(proto, field, "")


def dims_and_type(tensor) -> tuple[tuple[int, ...], int]:
    """An initializer's dims and element type; a loaded tensor's are read off its proto (no Shape
    object per initializer)."""
    raw = tensor.raw if isinstance(tensor, ir.TensorProtoTensor) else None
    if raw is not None:
        return tuple(raw.dims), raw.data_type
    return tuple(tensor.shape.numpy()), tensor.dtype.value


def tensor_into(proto: onnx.TensorProto, tensor, name: str, *, skeleton: bool = False) -> None:
    """One initializer: the original proto verbatim, or the array a pass wrote (raw data)."""
    if skeleton:
        dims, dtype = dims_and_type(tensor)
        if math.prod(dims) > SKELETON_KEEP_ELEMENTS and dtype != ir.DataType.INT64:
            proto.name = name
            proto.data_type = dtype
            proto.dims.extend(dims)
            return
    if isinstance(tensor, (ir.TensorProtoTensor, ir.ExternalTensor, ir.StringTensor)):
        serde.serialize_tensor_into(proto, tensor)
        proto.name = name
        return
    array_meta_into(proto, tensor, name)
    array = np.asarray(tensor.numpy())
    proto.raw_data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


#: element types whose loaded protos onnx-ir copies as they are (it validates packed 6-bit floats first)
_VERBATIM_TYPES = frozenset(t.value for t in (
    ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.BFLOAT16, ir.DataType.DOUBLE, ir.DataType.BOOL,
    ir.DataType.INT8, ir.DataType.INT16, ir.DataType.INT32, ir.DataType.INT64,
    ir.DataType.UINT8, ir.DataType.UINT16, ir.DataType.UINT32, ir.DataType.UINT64))


def verbatim_proto(tensor, name: str) -> onnx.TensorProto | None:
    """The loaded proto of ``tensor`` when :func:`tensor_into` would write a copy of it as it is (its
    own name, a plain element type, no metadata added), else None: a caller may copy many at once."""
    if type(tensor) is not ir.TensorProtoTensor or tensor.metadata_props:  # noqa: E721 - exact type
        return None
    raw = tensor.raw
    return raw if raw.data_type in _VERBATIM_TYPES and raw.name == name else None


def array_meta_into(proto: onnx.TensorProto, tensor, name: str) -> None:
    """Every field of an array tensor's proto but its raw data."""
    proto.name = name
    if tensor.doc_string:
        proto.doc_string = tensor.doc_string
    proto.data_type = tensor.dtype.value
    proto.dims.extend(int(d) for d in tensor.shape.numpy())
    proto.data_location = onnx.TensorProto.DEFAULT
    for key, value in tensor.metadata_props.items():
        proto.metadata_props.add(key=key, value=value)
