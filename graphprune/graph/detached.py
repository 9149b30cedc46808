"""A model whose large weights travel beside it as arrays: how graphprune hands models to onnxruntime.

Handing onnxruntime a ModelProto means serializing it: every weight is copied into the protobuf's
bytes, which onnxruntime parses and copies again into its own buffers. For a 98 MB ResNet-50 that
is two passes over the weights per session, and the default checks open three sessions. A
:class:`Detached` model is a skeleton ModelProto whose large initializers are stubs (name, type,
dims, and an external-data location that does not exist), with the arrays that fill them beside
it. The runner (:func:`graphprune.validation.runner.make_session`) gives the arrays to onnxruntime
as they are (``SessionOptions.add_external_initializers``), so only the skeleton is serialized.

Only tensors that onnxruntime can take from numpy are detached (numeric types with a numpy dtype:
not bfloat16, float8, 4-bit or string tensors); small ones (shapes, axes, scales) and every
initializer of a subgraph stay in the skeleton, so shape inference over the skeleton sees their
values.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import onnx
import onnx_ir as ir

from .model import SKELETON_KEEP_ELEMENTS, WrittenNodes, from_proto, tensor_into, to_proto
from .proto import write_tensor

#: the external-data location of a stub (no such file: the data is in :attr:`Detached.arrays`)
STUB_LOCATION = "graphprune-detached-weight"

#: element types onnxruntime takes from a numpy array without conversion
_NUMPY_TYPES = frozenset(ir.DataType(t) for t in (
    onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.INT8,
    onnx.TensorProto.UINT8, onnx.TensorProto.INT16, onnx.TensorProto.UINT16, onnx.TensorProto.INT32,
    onnx.TensorProto.UINT32, onnx.TensorProto.INT64, onnx.TensorProto.UINT64, onnx.TensorProto.BOOL))


@dataclass(frozen=True)
class Detached:
    """A skeleton ModelProto (read it, never serialize it for a session yourself) and the arrays of
    its stub initializers, by name.

    ``fills``: slices of stub arrays still to be set, ``(name, axis, positions, value)`` in order;
    :meth:`filled` makes them (on copies), so that whoever hands the arrays over pays for the copies
    (the oracle's zeroed weights are copied on the worker that makes its session)."""

    proto: onnx.ModelProto
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    fills: tuple[tuple[str, int, np.ndarray, float], ...] = ()

    def with_fills(self, fills) -> Detached:
        """The same model with more slices to set (every name must be a stub's)."""
        unknown = {f[0] for f in fills} - set(self.arrays)
        if unknown:
            raise KeyError(f"not detached initializers: {sorted(unknown)}")
        return Detached(self.proto, self.arrays, self.fills + tuple(fills))

    def filled(self) -> Detached:
        """The model with its fills made: each filled array is a new copy (the others are shared)."""
        if not self.fills:
            return self
        arrays = dict(self.arrays)
        copied: set[str] = set()
        for name, axis, positions, value in self.fills:
            if name not in copied:
                arrays[name] = np.array(arrays[name], copy=True)
                copied.add(name)
            array = arrays[name]
            # one masked pass over the array: setting the slices by fancy indexing writes a few
            # elements at a time (an input channel of a 1x1 convolution is one float per row), about
            # 2x slower on ResNet-50's oracle
            np.copyto(array, np.asarray(value, array.dtype), where=_positions_mask(array.shape, axis, positions))
        return Detached(self.proto, MappingProxyType(arrays))

    def refers_to_files(self) -> bool:
        """Whether the skeleton keeps references to real external-data files (a tensor that was
        never loaded stays one), besides its stubs."""
        return any(t.data_location == onnx.TensorProto.EXTERNAL and not _is_stub(t)
                   for t in self.proto.graph.initializer)

    def to_proto(self) -> onnx.ModelProto:
        """A complete ModelProto: the skeleton with every stub filled with its array (a copy)."""
        arrays = self.filled().arrays
        out = onnx.ModelProto()
        out.CopyFrom(self.proto)
        for tensor in out.graph.initializer:
            array = arrays.get(tensor.name)
            if array is not None and _is_stub(tensor):
                write_tensor(tensor, array)
        return out


def detach(model: ir.Model, written: WrittenNodes | None = None) -> Detached:
    """``model`` (the editable graph) as a skeleton and the arrays of its large weights; ``written``:
    its nodes as written before (see :func:`~graphprune.graph.model.to_proto`).

    Arrays are those the graph holds (a rewritten weight is shared, not copied; a weight still in
    the loaded protobuf is read once). Edits of the graph afterwards replace tensors, they never
    write into these arrays, so the result keeps the graph as it was."""
    skeleton = to_proto(model, tensors="none", written=written)
    arrays: dict[str, np.ndarray] = {}
    for name, value in model.graph.initializers.items():
        tensor, proto = value.const_value, skeleton.graph.initializer.add()
        if tensor.size > SKELETON_KEEP_ELEMENTS and tensor.dtype in _NUMPY_TYPES \
                and not isinstance(tensor, ir.ExternalTensor):  # a reference to a file stays one
            arrays[name] = np.asarray(tensor.numpy())
            _stub(proto, name, tensor.dtype.value, tensor.shape.numpy())
        else:
            tensor_into(proto, tensor, name)
    return Detached(skeleton, MappingProxyType(arrays))


def detach_proto(proto: onnx.ModelProto) -> Detached:
    """:func:`detach` of a ModelProto (which is only read: its weights are copied out once)."""
    return detach(from_proto(proto))


def _positions_mask(shape: tuple, axis: int, positions: np.ndarray) -> np.ndarray:
    """True at ``positions`` of ``axis``, shaped to broadcast against an array of ``shape``."""
    mask = np.zeros(shape[axis], dtype=bool)
    mask[positions] = True
    return mask.reshape([-1 if d == axis else 1 for d in range(len(shape))])


def _stub(proto: onnx.TensorProto, name: str, data_type: int, dims) -> None:
    proto.name = name
    proto.data_type = data_type
    proto.dims.extend(int(d) for d in dims)
    proto.data_location = onnx.TensorProto.EXTERNAL
    proto.external_data.add(key="location", value=STUB_LOCATION)


def _is_stub(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL and \
        any(e.key == "location" and e.value == STUB_LOCATION for e in tensor.external_data)
