"""Concrete shapes and element types of every tensor, for fixed input shapes.

ONNX shape inference runs on a weight-less copy whose inputs are fixed to the requested shapes.
When it leaves a tensor some node needs without a concrete shape (shape arithmetic it cannot
propagate), the model is run once in onnxruntime with every intermediate tensor exposed as an
output and the shapes are read off the results. If even that fails (ops onnxruntime does not
know), those shapes stay unknown and the profile lists the affected nodes as not counted.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import onnx

from ..errors import GraphPruneError
from ..graph import infer_shapes
from ..graph.proto import weightless_copy
from ..validation.feeds import make_feeds, resolve_shapes
from ..validation.runner import make_session, run_session
from .tensors import GraphNames, TensorInfo, element_size, graph_names  # noqa: F401 - element_size re-exported

log = logging.getLogger(__name__)


def _set_dims(vi: onnx.ValueInfoProto, shape) -> None:
    tt = vi.type.tensor_type
    tt.shape.ClearField("dim")
    for d in shape:
        tt.shape.dim.add().dim_value = int(d)


def _static_shapes(model: onnx.ModelProto, inputs: Mapping[str, tuple[int, ...]]) -> dict[str, TensorInfo]:
    light = weightless_copy(model)
    light.graph.ClearField("value_info")  # stale declared shapes (symbolic batch) would win over inferred ones
    for vi in light.graph.input:
        if vi.name in inputs:
            _set_dims(vi, inputs[vi.name])
    for vi in light.graph.output:
        vi.type.tensor_type.ClearField("shape")
    known = {}
    for name, (shape, elem) in infer_shapes(light).items():
        if shape is not None and all(isinstance(d, int) for d in shape):
            known[name] = TensorInfo(tuple(shape), elem)
    return known


def _runtime_shapes(model: onnx.ModelProto, inputs: Mapping[str, tuple[int, ...]], names: set[str]) -> dict[str, TensorInfo]:
    """Run the model once with ``names`` exposed as outputs (seeded random inputs)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    declared = {o.name for o in probe.graph.output}
    for name in sorted(names - declared):
        probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    feed = make_feeds(model, 1, seed=0, input_shapes=inputs)[0]
    values = run_session(make_session(probe, exact=True, label="shape probe"), feed, label="shape probe")
    out = {}
    for name, value in values.items():
        arr = np.asarray(value)
        out[name] = TensorInfo(tuple(arr.shape), onnx.helper.np_dtype_to_tensor_dtype(arr.dtype))
    return out


def bound_infos(model: onnx.ModelProto, known: Mapping, inputs: Mapping[str, tuple[int, ...]],
                names: GraphNames | None = None) -> dict | None:
    """Concrete shapes from ``known`` (tensor -> (shape, elem type), sizes or symbols, as
    :func:`graphprune.graph.shapes.infer_shapes` gives them) with the graph inputs' symbols bound
    to ``inputs``; None unless every tensor the nodes read or write gets one this way. ``names``:
    ``model``'s :func:`~graphprune.profiling.tensors.graph_names` when read already."""
    symbols: dict[str, int] = {}
    for name, concrete in inputs.items():
        shape = (known.get(name) or (None,))[0]
        if shape is None or len(shape) != len(concrete):
            return None
        for dim, size in zip(shape, concrete):
            if isinstance(dim, str) and symbols.setdefault(dim, int(size)) != size:
                return None
            if (isinstance(dim, int) and dim != size) or dim is None:
                return None
    infos = {}
    bound: dict[tuple, TensorInfo | None] = {}  # (shape with symbols, type) -> its info: many tensors share one
    for name in (names or graph_names(model)).needed():
        entry = known.get(name)
        if entry is None or entry[0] is None:
            return None
        info = bound.get(entry, False)
        if info is False:
            dims = tuple(d if isinstance(d, int) else symbols.get(d) for d in entry[0])
            info = bound[entry] = None if None in dims else TensorInfo(dims, entry[1])
        if info is None:
            return None
        infos[name] = info
    return infos


def known_infos(model: onnx.ModelProto, input_shapes: Mapping | None, known: Mapping | None,
                names: GraphNames | None = None) -> tuple[dict[str, TensorInfo] | None, dict]:
    """:func:`tensor_infos` from ``known`` shapes alone: (every tensor's info, or None when binding
    the input dims leaves one without a concrete shape; the resolved input shapes)."""
    inputs = resolve_shapes(model, input_shapes)
    if known is None:
        return None, inputs
    names = names or graph_names(model)
    bound = bound_infos(model, known, inputs, names)
    if bound is not None:
        bound.update(_initializer_infos(names))
    return bound, inputs


def _initializer_infos(names: GraphNames) -> dict[str, TensorInfo]:
    return {name: TensorInfo(dims, elem) for name, (_, dims, elem) in names.initializers.items()}


def tensor_infos(model: onnx.ModelProto, input_shapes: Mapping | None = None, runnable=None,
                 known: Mapping | None = None, names: GraphNames | None = None) -> tuple[dict[str, TensorInfo], dict]:
    """Shape and element type of every tensor the nodes read or write, and the resolved input shapes.

    ``runnable`` gives the full model when ``model`` is a weight-less skeleton (called only when
    shape inference leaves shapes that one onnxruntime run must supply). ``known``: shapes already
    inferred for this graph with symbolic input dims (an analysis index's); used when binding the
    input dims gives every tensor a concrete shape, else inference runs. ``names``: ``model``'s
    :func:`~graphprune.profiling.tensors.graph_names` when read already."""
    names = names or graph_names(model)
    bound, inputs = known_infos(model, input_shapes, known, names)
    if bound is not None:
        return bound, inputs
    infos = _static_shapes(model, inputs)
    infos.update(_initializer_infos(names))
    missing = {n for n in names.needed() if n not in infos}
    if missing:
        log.info("shape inference left %d tensor(s) without a concrete shape (e.g. %s); reading them from one "
                 "onnxruntime run", len(missing), sorted(missing)[0])
        try:
            infos.update(_runtime_shapes(runnable() if runnable is not None else model, inputs, missing))
        except GraphPruneError as exc:  # e.g. custom ops: their nodes are reported as not counted
            log.warning("shapes of %d tensor(s) stay unknown (%s); their nodes' MACs are not counted",
                        len(missing), exc)
    return infos, inputs
