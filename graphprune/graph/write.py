"""Writing the editable graph to a file, one initializer at a time.

A protobuf message is the concatenation of its fields in field-number order, so the bytes of a
``ModelProto`` are: the model fields before ``graph`` (7), the graph as one length-delimited
field, the model fields after it. Inside the graph, the initializers (field 5) sit between the
nodes and name (1, 2) and everything else (10 and up). :func:`write_model` writes exactly the
bytes ``to_proto(model).SerializeToString()`` would give, but builds only one initializer's
``TensorProto`` at a time, so saving never holds a second copy of the weights. With
``external``, initializers of at least ``min_bytes`` go to a data file (offsets aligned) and the
model holds references to them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnx_ir as ir

from .model import array_meta_into, tensor_into, to_proto
from .proto import copy_fields

_GRAPH_FIELD = 7
_INITIALIZER_FIELD = 5
_RAW_DATA_FIELD = 9


@dataclass(frozen=True)
class External:
    """Where big initializers go: an open data file, the name the model records for it."""

    data: object
    location: str
    min_bytes: int = 1024
    alignment: int = 4096


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload_size: int) -> bytes:
    """Tag and length of a length-delimited field."""
    return _varint((number << 3) | 2) + _varint(payload_size)


def _part(message, keep) -> bytes:
    """The serialized fields of ``message`` whose number satisfies ``keep``."""
    part = type(message)()
    copy_fields(message, part, skip=tuple(fd.name for fd, _ in message.ListFields() if not keep(fd.number)))
    return part.SerializeToString()


def _raw_bytes(tensor) -> int | None:
    """Bytes of the tensor's data when it is (or will be) stored as raw data, else None."""
    if isinstance(tensor, ir.TensorProtoTensor):
        return len(tensor.raw.raw_data) if tensor.raw.HasField("raw_data") else None
    if isinstance(tensor, (ir.ExternalTensor, ir.StringTensor)):
        return None
    return int(tensor.nbytes)


class _Entry:
    """One initializer as it will be written: its proto without the data, where the data goes."""

    def __init__(self, name: str, tensor, external: External | None, offset: int):
        self.name, self.tensor = name, tensor
        nbytes = _raw_bytes(tensor)
        self.external = external is not None and nbytes is not None and nbytes >= external.min_bytes
        self.offset, self.nbytes = offset, nbytes
        if self.external:
            self.offset += -offset % external.alignment
            self.meta = _external_proto(tensor, name, external.location, self.offset, nbytes)
            self.size = self.meta.ByteSize()
        elif nbytes is not None and not isinstance(tensor, ir.TensorProtoTensor):
            self.meta = _meta_proto(tensor, name)
            self.size = self.meta.ByteSize() + len(_field(_RAW_DATA_FIELD, nbytes)) + nbytes
        else:
            self.meta = None
            self.size = tensor.raw.ByteSize() if isinstance(tensor, ir.TensorProtoTensor) else self._proto().ByteSize()

    @property
    def end(self) -> int:
        return self.offset + (self.nbytes if self.external else 0)

    def _proto(self) -> onnx.TensorProto:
        proto = onnx.TensorProto()
        tensor_into(proto, self.tensor, self.name)
        return proto

    def write(self, fh, external: External | None) -> None:
        fh.write(_field(_INITIALIZER_FIELD, self.size))
        if self.external:
            pad = self.offset - external.data.tell()
            external.data.write(b"\0" * pad)
            external.data.write(_data_bytes(self.tensor))
            fh.write(self.meta.SerializeToString())
        elif self.meta is not None:
            _write_with_raw(fh, self.meta, _data_bytes(self.tensor))
        else:
            fh.write(self._proto().SerializeToString())


def _data_bytes(tensor) -> bytes:
    if isinstance(tensor, ir.TensorProtoTensor):
        return tensor.raw.raw_data
    array = np.asarray(tensor.numpy())
    return np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


def _meta_proto(tensor, name: str) -> onnx.TensorProto:
    """The proto :func:`tensor_into` writes for an array tensor, without its raw data."""
    proto = onnx.TensorProto()
    array_meta_into(proto, tensor, name)
    return proto


def _write_with_raw(fh, meta: onnx.TensorProto, data: bytes) -> None:
    """``meta`` with ``raw_data`` = ``data`` inserted at its field-number place (9)."""
    fh.write(_part(meta, lambda n: n < _RAW_DATA_FIELD))
    fh.write(_field(_RAW_DATA_FIELD, len(data)))
    fh.write(data)
    fh.write(_part(meta, lambda n: n > _RAW_DATA_FIELD))


def _external_proto(tensor, name: str, location: str, offset: int, nbytes: int) -> onnx.TensorProto:
    proto = _meta_proto(tensor, name) if not isinstance(tensor, ir.TensorProtoTensor) else _copy_without_data(tensor)
    proto.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(nbytes))):
        entry = proto.external_data.add()
        entry.key, entry.value = key, value
    return proto


def _copy_without_data(tensor: ir.TensorProtoTensor) -> onnx.TensorProto:
    proto = onnx.TensorProto()
    copy_fields(tensor.raw, proto, skip=("raw_data", "external_data", "data_location"))
    return proto


def entries(model: ir.Model, external: External | None = None) -> list[_Entry]:
    out, offset = [], 0
    for name, value in model.graph.initializers.items():
        entry = _Entry(name, value.const_value, external, offset)
        offset = entry.end if entry.external else offset
        out.append(entry)
    return out


def serialized_size(model: ir.Model, external: External | None = None) -> int:
    """Bytes :func:`write_model` writes into the model file (the data file not counted)."""
    skeleton = to_proto(model, tensors="none")
    graph = skeleton.graph.ByteSize() + sum(len(_field(_INITIALIZER_FIELD, e.size)) + e.size
                                            for e in entries(model, external))
    skeleton.ClearField("graph")
    return skeleton.ByteSize() + len(_field(_GRAPH_FIELD, graph)) + graph


def write_model(model: ir.Model, fh, external: External | None = None) -> bool:
    """Write ``model`` to the binary file ``fh``; returns whether any initializer went external."""
    skeleton = to_proto(model, tensors="none")
    items = entries(model, external)
    head = _part(skeleton.graph, lambda n: n < _INITIALIZER_FIELD)
    tail = _part(skeleton.graph, lambda n: n > _INITIALIZER_FIELD)
    graph_size = len(head) + len(tail) + sum(len(_field(_INITIALIZER_FIELD, e.size)) + e.size for e in items)
    fh.write(_part(skeleton, lambda n: n < _GRAPH_FIELD))
    fh.write(_field(_GRAPH_FIELD, graph_size))
    fh.write(head)
    for entry in items:
        entry.write(fh, external)
    fh.write(tail)
    fh.write(_part(skeleton, lambda n: n > _GRAPH_FIELD))
    return any(e.external for e in items)
