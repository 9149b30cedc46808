"""The pruning oracle and the dead-channel construction (see DESIGN.md, "two oracles").

* :func:`zero_removed` returns a copy of the (unpruned) model in which every consumer slice of
  every removed slot is zeroed; where a contraction reads two activations, the removed
  positions of one side are masked with an inserted ``Mul``. The pruned model must compute
  exactly what this model computes.
* :func:`kill_slots` sets *every* parameter slice of the given slots to its neutral value, so a
  magnitude criterion must remove exactly those slots and the outputs must not change.
"""
from __future__ import annotations

import numpy as np
import onnx

from .analysis.types import Analysis
from .graph import write_tensor
from .rules.base import CONSUMER, Space


def _set_positions(arr: np.ndarray, axis: int, positions: np.ndarray, value: float) -> np.ndarray:
    out = np.array(arr, copy=True)
    index = [slice(None)] * out.ndim
    index[axis] = positions
    out[tuple(index)] = value
    return out


def _removed_positions(group, slots: np.ndarray, space: Space) -> np.ndarray:
    return np.nonzero(np.isin(group.slot_of[space], slots))[0]


def zero_removed(model: onnx.ModelProto, analysis: Analysis, removed: dict) -> onnx.ModelProto:
    """Copy of ``model`` (the analysed one) with removed slots' consumer slices zeroed."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    inits = {t.name: t for t in out.graph.initializer}
    by_id = {g.id: g for g in analysis.groups}
    arrays: dict[str, np.ndarray] = {}
    masks: list[tuple[Space, np.ndarray, int]] = []
    for gid, slots in removed.items():
        group = by_id[gid]
        slots = np.asarray(slots)
        if slots.size == 0:
            continue
        for param in group.params:
            if CONSUMER in param.roles:
                pos = _removed_positions(group, slots, param.space)
                arr = arrays.get(param.initializer, analysis.index.array(param.initializer))
                arrays[param.initializer] = _set_positions(arr, param.axis, pos, 0.0)
        for space in _activation_contractions(analysis, group):
            masks.append((space, _removed_positions(group, slots, space), group.sizes[space]))
    for name, arr in arrays.items():
        write_tensor(inits[name], arr)
    for space, pos, size in masks:
        _insert_mask(out, analysis, space, pos, size)
    return out


def _activation_contractions(analysis: Analysis, group) -> list[Space]:
    """Spaces of activations read by a contraction whose other side is not a parameter."""
    out = []
    index = analysis.index
    for space in group.spaces:
        if index.is_constant(space.tensor):
            continue
        rank = len(index.shape(space.tensor))
        for use in index.uses(space.tensor):
            node = index.nodes[use.node]
            if use.index != 0 or any(index.is_constant(i) for i in node.input[:2]):
                continue
            if node.op_type == "MatMul":
                contracted = rank - 1
            elif node.op_type == "Gemm":
                contracted = 0 if any(a.name == "transA" and a.i for a in node.attribute) else 1
            else:
                continue
            if space.axis == contracted:
                out.append(space)
    return out


def _insert_mask(model: onnx.ModelProto, analysis: Analysis, space: Space, positions: np.ndarray, size: int) -> None:
    rank = len(analysis.index.shape(space.tensor))
    shape = [1] * rank
    shape[space.axis] = size
    mask = np.ones(shape, dtype=np.float32)
    index = [0] * rank
    index[space.axis] = positions
    mask[tuple(index)] = 0.0
    dtype = onnx.helper.tensor_dtype_to_np_dtype(analysis.index.elem_type(space.tensor) or 1)
    mask_name = f"{space.tensor}__oracle_mask{space.axis}"
    masked = f"{space.tensor}__oracle_masked{space.axis}"
    model.graph.initializer.append(onnx.numpy_helper.from_array(mask.astype(dtype), mask_name))
    for node in model.graph.node:
        if node.op_type in ("MatMul", "Gemm") and node.input and node.input[0] == space.tensor:
            node.input[0] = masked
    model.graph.node.append(onnx.helper.make_node("Mul", [space.tensor, mask_name], [masked]))
    _toposort(model.graph)


def _toposort(graph: onnx.GraphProto) -> None:
    produced = {o: i for i, n in enumerate(graph.node) for o in n.output}
    nodes = list(graph.node)
    order: list[int] = []
    state = [0] * len(nodes)
    for start in range(len(nodes)):
        stack = [(start, False)]
        while stack:
            i, done = stack.pop()
            if done:
                state[i] = 2
                order.append(i)
                continue
            if state[i]:
                continue
            state[i] = 1
            stack.append((i, True))
            for name in nodes[i].input:
                j = produced.get(name)
                if j is not None and state[j] == 0:
                    stack.append((j, False))
    sorted_nodes = [nodes[i] for i in order]
    del graph.node[:]
    graph.node.extend(sorted_nodes)


def kill_slots(model: onnx.ModelProto, analysis: Analysis, slots_by_group: dict) -> None:
    """Set every parameter slice of the given slots to its neutral value (in place)."""
    inits = {t.name: t for t in model.graph.initializer}
    by_id = {g.id: g for g in analysis.groups}
    arrays: dict[str, np.ndarray] = {}
    for gid, slots in slots_by_group.items():
        group = by_id[gid]
        for param in group.params:
            pos = _removed_positions(group, np.asarray(slots), param.space)
            arr = arrays.get(param.initializer, analysis.index.array(param.initializer))
            arrays[param.initializer] = _set_positions(arr, param.axis, pos, param.neutral)
    for name, arr in arrays.items():
        write_tensor(inits[name], arr)
