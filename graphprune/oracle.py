"""The pruning oracle and the dead-channel construction (see DESIGN.md, "two oracles").

* :func:`zeroed` (a :class:`~graphprune.graph.detached.Detached` model, for onnxruntime) and
  :func:`zero_removed` (a ModelProto) return a copy of the (unpruned) model in which every consumer slice of
  every removed slot is zeroed; where a contraction reads two activations, the removed
  positions of one side are masked with an inserted ``Mul``, and parameters that write such a
  side inside an op (``OPERAND``: a fused attention's query/key projection or bias) are zeroed. The pruned model must compute
  exactly what this model computes.
* :func:`kill_slots` sets *every* parameter slice of the given slots to its neutral value, so a
  magnitude criterion must remove exactly those slots and the outputs must not change.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir

from .analysis.types import Analysis
from .graph import edit, write_tensor
from .graph.detached import Detached, detach
from .graph.model import WrittenNodes
from .input_checks import check_structure
from .rules.base import CONSUMER, OPERAND, Space, part_coordinates


def _set_positions(arr: np.ndarray, axis: int, positions: np.ndarray, value: float) -> np.ndarray:
    out = np.array(arr, copy=True)
    index = [slice(None)] * out.ndim
    index[axis] = positions
    out[tuple(index)] = value
    return out


def _current(arrays: dict, analysis: Analysis, name: str) -> np.ndarray:
    """The edited value of initializer ``name`` so far, else its original value."""
    return arrays[name] if name in arrays else analysis.index.array(name)


def zeroed(model: ir.Model, analysis: Analysis, removed: dict, written: WrittenNodes | None = None) -> Detached:
    """The oracle of ``removed``: ``model`` (the analysed graph, read, not edited) with every removed
    slot's consumer slices zeroed and contractions masked, as a detached model. Its weights are the
    graph's arrays; large zeroed ones are copied when the model is handed over (``Detached.fills``).
    ``written``: the graph's nodes as written before (e.g. the analysed skeleton's), copied, not
    serialized again (20k nodes: 136 -> 15 ms)."""
    detached = detach(model, written)
    out = detached.proto
    inits = {t.name: t for t in out.graph.initializer}
    by_id = {g.id: g for g in analysis.groups}
    small: dict[str, np.ndarray] = {}
    fills: list[tuple[str, int, np.ndarray, float]] = []
    masks: list[tuple[Space, np.ndarray, int]] = []
    for gid, slots in removed.items():
        group = by_id[gid]
        slots = np.asarray(slots)
        if slots.size == 0:
            continue
        for param in group.params:
            if param.roles & {CONSUMER, OPERAND}:
                pos = group.removed_positions(param.space, slots)
                if param.initializer in detached.arrays:
                    fills.append((param.initializer, param.axis, pos, 0.0))
                else:
                    small[param.initializer] = _set_positions(_current(small, analysis, param.initializer),
                                                              param.axis, pos, 0.0)
        for space in group.contractions:
            masks.append((space, group.removed_positions(space, slots), group.sizes[space]))
    for name, arr in small.items():
        write_tensor(inits[name], arr)
    for space, pos, size in masks:
        _insert_mask(out, analysis, space, pos, size)
    return detached.with_fills(fills)


def zero_removed(model: ir.Model, analysis: Analysis, removed: dict) -> onnx.ModelProto:
    """:func:`zeroed` as a complete ModelProto."""
    return zeroed(model, analysis, removed).to_proto()


def _insert_mask(model: onnx.ModelProto, analysis: Analysis, space: Space, positions: np.ndarray, size: int) -> None:
    """Multiply ``space``'s tensor by a 0/1 mask before every reader (only removed positions change).

    For a part of an axis, the positions of the axis whose coordinate in the part is removed."""
    full_shape = analysis.index.shape(space.tensor)
    rank = len(full_shape)
    if space.is_part:
        size = int(full_shape[space.axis])
        positions = np.nonzero(np.isin(part_coordinates(size, space.part), positions))[0]
    shape = [1] * rank
    shape[space.axis] = size
    mask = np.ones(shape, dtype=np.float32)
    index = [0] * rank
    index[space.axis] = positions
    mask[tuple(index)] = 0.0
    dtype = onnx.helper.tensor_dtype_to_np_dtype(analysis.index.elem_type(space.tensor) or 1)
    suffix = f"{space.axis}" + (f"_{space.part[0]}_{space.part[1]}" if space.is_part else "")
    mask_name = f"{space.tensor}__oracle_mask{suffix}"
    masked = f"{space.tensor}__oracle_masked{suffix}"
    model.graph.initializer.append(onnx.numpy_helper.from_array(mask.astype(dtype), mask_name))
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name == space.tensor:
                node.input[i] = masked
    model.graph.node.append(onnx.helper.make_node("Mul", [space.tensor, mask_name], [masked]))
    check_structure(model, "oracle model")  # puts the new Mul in topological order


def kill_slots(model: ir.Model, analysis: Analysis, slots_by_group: dict) -> None:
    """Set every parameter slice of the given slots to its neutral value (in place, on the
    editable graph the analysis was computed on)."""
    by_id = {g.id: g for g in analysis.groups}
    arrays: dict[str, np.ndarray] = {}
    for gid, slots in slots_by_group.items():
        group = by_id[gid]
        for param in group.params:
            pos = group.removed_positions(param.space, np.asarray(slots))
            arr = _current(arrays, analysis, param.initializer)
            arrays[param.initializer] = _set_positions(arr, param.axis, pos, param.neutral)
    for name, arr in arrays.items():
        edit.write_initializer(model.graph.initializers[name], arr)
