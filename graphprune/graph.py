"""A read-only index over an ``onnx.ModelProto``: producers, consumers, constants, shapes.

Analysis, scoring and planning read the model only through this index; they never mutate it.
Tensors and nodes are keyed by name (node names are made unique by normalization).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import onnx
from onnx import numpy_helper

log = logging.getLogger(__name__)

Shape = tuple  # tuple of int | str | None: static size, named symbolic size, unknown

#: GraphIndex keeps at most this many bytes of initializer values cached: beyond it, values are
#: read again from the model when asked for, so analysis never holds a second copy of all weights
ARRAY_CACHE_BYTES = 256 * 2**20
#: initializers larger than this are stripped of data before shape inference (speed)
_INFERENCE_KEEP_ELEMENTS = 4096


@dataclass(frozen=True)
class Use:
    """One input slot of one node: ``node.input[index]``."""

    node: str
    index: int


def _dims(type_proto: onnx.TypeProto) -> Shape | None:
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    out = []
    for d in type_proto.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            out.append(d.dim_value)
        elif d.HasField("dim_param") and not d.dim_param.startswith("unk__"):
            out.append(d.dim_param)  # a named symbolic dimension (same name = same size)
        else:
            out.append(None)
    return tuple(out)


def _numel(dims) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def infer_shapes(model: onnx.ModelProto) -> dict[str, tuple[Shape | None, int]]:
    """Shape inference on a data-less copy of the model: tensor name -> (shape, elem_type)."""
    light = onnx.ModelProto()
    copy_without_weights(model, light)
    try:
        inferred = onnx.shape_inference.infer_shapes(light, check_type=False, strict_mode=False, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - inference is best effort; missing shapes become barriers
        log.warning("shape inference failed (%s); continuing with declared shapes only", exc)
        inferred = light
    result: dict[str, tuple[Shape | None, int]] = {}
    _collect_shapes(inferred.graph, result)
    if any(shape is None or None in shape for shape, _ in result.values()) or len(result) < len(light.graph.node):
        _refine_with_symbolic_inference(inferred, result)
    for init in model.graph.initializer:
        result[init.name] = (tuple(init.dims), init.data_type)
    return result


def _collect_shapes(graph: onnx.GraphProto, result: dict) -> None:
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        shape = _dims(vi.type)
        elem = vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else 0
        prev = result.get(vi.name)
        if prev is None or (prev[0] is None and shape is not None):
            result[vi.name] = (shape, elem)


def _merge_dims(a: Shape | None, b: Shape | None) -> Shape | None:
    """Per dimension, prefer a static size, then a named symbol, then unknown."""
    if a is None or b is None or len(a) != len(b):
        return a if a is not None else b
    out = []
    for x, y in zip(a, b):
        out.append(x if isinstance(x, int) else y if isinstance(y, int) else x if x is not None else y)
    return tuple(out)


def _refine_with_symbolic_inference(light: onnx.ModelProto, result: dict) -> None:
    """onnxruntime's symbolic shape inference follows computed shapes (Shape→Slice→Concat→Resize
    sizes, Reshape of computed shapes) that onnx's inference leaves unknown."""
    try:
        refined = _symbolic_inference(light)
    except ImportError as exc:  # sympy missing: say so, the affected groups will be blocked
        log.warning("onnxruntime symbolic shape inference unavailable (%s); computed shapes stay unknown", exc)
        return
    except Exception as exc:  # noqa: BLE001 - best effort; unknown shapes stay unknown (barriers)
        log.debug("symbolic shape inference failed: %s", exc)
        return
    if refined is None:
        return
    extra: dict = {}
    _collect_shapes(refined.graph, extra)
    for name, (shape, elem) in extra.items():
        prev = result.get(name)
        if prev is None:
            result[name] = (shape, elem)
        else:
            result[name] = (_merge_dims(prev[0], shape), prev[1] or elem)


def _symbolic_inference(light: onnx.ModelProto) -> onnx.ModelProto | None:
    """onnxruntime's symbolic shape inference, or None when it cannot infer every shape.

    ``SymbolicShapeInference.infer_shapes`` saves ``sym_shape_infer_temp.onnx`` (and its data)
    into the current directory whenever inference is incomplete; graphprune never writes files
    it was not asked to, so the same steps are run here without that save.
    """
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference, get_opset

    logging.getLogger("onnxruntime.tools.symbolic_shape_infer").setLevel(logging.ERROR)
    opset = get_opset(light)
    if not opset or opset < 7:
        return None
    engine = SymbolicShapeInference(2**31 - 1, True, False, 0)
    complete = False
    engine._preprocess(light)
    while engine.run_:
        complete = engine._infer_impl()
    engine._update_output_from_vi()
    return engine.out_mp_ if complete else None


def copy_without_weights(model: onnx.ModelProto, light: onnx.ModelProto) -> None:
    """Copy everything but the bytes of big initializers (they keep name, type and dims), for
    shape inference: small int64 constants (shapes, axes) keep their values."""
    copy_fields(model, light, skip=("graph",))
    copy_fields(model.graph, light.graph, skip=("initializer",))
    for init in model.graph.initializer:
        if _numel(init.dims) > _INFERENCE_KEEP_ELEMENTS and init.data_type != onnx.TensorProto.INT64:
            copy_fields(init, light.graph.initializer.add(), skip=_TENSOR_DATA_FIELDS)
        else:
            light.graph.initializer.add().CopyFrom(init)


_TENSOR_DATA_FIELDS = ("raw_data", "float_data", "int32_data", "string_data", "int64_data", "double_data",
                       "uint64_data", "external_data", "data_location")


class GraphIndex:
    """Name-based index of the main graph of a model."""

    def __init__(self, model: onnx.ModelProto, shapes: dict | None = None, strict_initializer_inputs: bool = False):
        self.model = model
        #: treat initializers that are also graph inputs as overridable (barriers) instead of weights
        self.strict_initializer_inputs = strict_initializer_inputs
        self.graph = model.graph
        self.nodes: dict[str, onnx.NodeProto] = {}
        self.node_order: list[str] = []
        self.producer: dict[str, str] = {}
        self.consumers: dict[str, list[Use]] = {}
        for node in self.graph.node:
            self.nodes[node.name] = node
            self.node_order.append(node.name)
            for i, name in enumerate(node.input):
                if name:
                    self.consumers.setdefault(name, []).append(Use(node.name, i))
            for name in node.output:
                if name:
                    self.producer[name] = node.name
        self.node_pos = {name: i for i, name in enumerate(self.node_order)}
        self.initializers: dict[str, onnx.TensorProto] = {t.name: t for t in self.graph.initializer}
        self._add_implicit_uses()
        self.graph_inputs = [i.name for i in self.graph.input if i.name not in self.initializers]
        self.graph_outputs = [o.name for o in self.graph.output]
        #: initializers also declared as graph inputs (old IR): treated as weights, shapes kept in sync
        self.initializer_inputs = {i.name for i in self.graph.input if i.name in self.initializers}
        #: initializer values read so far, least recently used first, at most ARRAY_CACHE_BYTES in all
        self._arrays: dict[str, np.ndarray] = {}
        self._cached_bytes = 0
        self._shapes = shapes if shapes is not None else infer_shapes(model)

    def _add_implicit_uses(self) -> None:
        """Tensors read from inside a subgraph (If/Loop/Scan bodies) count as uses (index -1)."""
        for node in self.graph.node:
            subgraphs = []
            for attr in node.attribute:
                if attr.HasField("g"):
                    subgraphs.append(attr.g)
                subgraphs.extend(attr.graphs)
            if not subgraphs:
                continue
            read: set[str] = set()
            defined: set[str] = set()
            stack = list(subgraphs)
            while stack:
                g = stack.pop()
                defined.update(i.name for i in g.input)
                defined.update(t.name for t in g.initializer)
                for n in g.node:
                    read.update(i for i in n.input if i)
                    defined.update(o for o in n.output if o)
                    for attr in n.attribute:
                        if attr.HasField("g"):
                            stack.append(attr.g)
                        stack.extend(attr.graphs)
                read.update(o.name for o in g.output)
            for name in sorted(read - defined):
                if name in self.producer or name in self.initializers or any(
                        i.name == name for i in self.graph.input):
                    self.consumers.setdefault(name, []).append(Use(node.name, -1))

    # ------------------------------------------------------------------ opsets
    @cached_property
    def opsets(self) -> dict[str, int]:
        out = {}
        for op in self.model.opset_import:
            out[op.domain or ""] = op.version
        if "ai.onnx" in out and "" not in out:
            out[""] = out["ai.onnx"]
        return out

    def opset(self, domain: str = "") -> int:
        return self.opsets.get(domain or "", 0)

    # ------------------------------------------------------------------ tensors
    def is_constant(self, name: str) -> bool:
        return name in self.initializers

    def array(self, name: str) -> np.ndarray:
        """Value of an initializer (read-only; cached up to ARRAY_CACHE_BYTES, least recently used out)."""
        arr = self._arrays.get(name)
        if arr is None:
            arr = numpy_helper.to_array(self.initializers[name])
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

    def shape(self, name: str) -> Shape | None:
        entry = self._shapes.get(name)
        return entry[0] if entry else None

    def elem_type(self, name: str) -> int:
        entry = self._shapes.get(name)
        return entry[1] if entry else 0

    def rank(self, name: str) -> int | None:
        s = self.shape(name)
        return None if s is None else len(s)

    def node_of(self, tensor: str) -> onnx.NodeProto | None:
        name = self.producer.get(tensor)
        return self.nodes[name] if name is not None else None

    def uses(self, tensor: str) -> list[Use]:
        return self.consumers.get(tensor, [])


def fresh_name(taken: set, base: str) -> str:
    """``base`` or ``base_1``, ``base_2``... whichever is not in ``taken`` (which it joins)."""
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def copy_fields(src, dst, skip: tuple[str, ...] = ()) -> None:
    """Copy every set field of protobuf message ``src`` into ``dst`` except those named in ``skip``.

    Used to build light copies of models (a graph without its initializers, a tensor without its
    bytes) without ever copying the skipped, possibly huge, fields.
    """
    for fd, value in src.ListFields():
        if fd.name in skip:
            continue
        if fd.is_repeated:
            getattr(dst, fd.name).extend(value)
        elif fd.message_type is not None:
            getattr(dst, fd.name).CopyFrom(value)
        else:
            setattr(dst, fd.name, value)


def get_attr(node: onnx.NodeProto, name: str, default=None):
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def write_tensor(tensor: onnx.TensorProto, array: np.ndarray) -> None:
    """Overwrite ``tensor`` in place with ``array`` (keeps its name; no proto copies)."""
    array = np.asarray(array)
    tensor.ClearField("dims")
    for field in ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data",
                  "external_data"):
        tensor.ClearField(field)
    tensor.data_location = onnx.TensorProto.DEFAULT
    tensor.data_type = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
    tensor.dims.extend(array.shape)
    tensor.raw_data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


def add_initializer(graph: onnx.GraphProto, name: str, array: np.ndarray) -> onnx.TensorProto:
    """Append a new initializer built in place (avoids copying big protos)."""
    tensor = graph.initializer.add()
    tensor.name = name
    write_tensor(tensor, array)
    return tensor


def remove_initializers(graph: onnx.GraphProto, names: set[str]) -> int:
    """Delete initializers by name, in place; returns how many were removed."""
    if not names:
        return 0
    keep_idx = [i for i, t in enumerate(graph.initializer) if t.name not in names]
    removed = len(graph.initializer) - len(keep_idx)
    if removed:
        # delete from the end so indices stay valid; protobuf deletes without copying survivors
        for i in range(len(graph.initializer) - 1, -1, -1):
            if graph.initializer[i].name in names:
                del graph.initializer[i]
    return removed


def subgraph_reads(graph: onnx.GraphProto) -> set[str]:
    """Every tensor name read by nodes inside the subgraphs of ``graph``'s nodes (any depth)."""
    names: set[str] = set()
    stack = []
    for n in graph.node:
        for attr in n.attribute:
            if attr.HasField("g"):
                stack.append(attr.g)
            stack.extend(attr.graphs)
    while stack:
        g = stack.pop()
        for n in g.node:
            names.update(n.input)
            for a in n.attribute:
                if a.HasField("g"):
                    stack.append(a.g)
                stack.extend(a.graphs)
        names.update(o.name for o in g.output)
    return names
