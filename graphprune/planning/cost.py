"""Predicted parameters and MACs of a decision, without touching the model.

Every tensor whose axis a plan shrinks is a space of some group, so the pruned model's tensor
shapes are the analysed model's shapes with each changed space's axis set to its kept count.
The MAC formulas of :mod:`graphprune.profiling.macs` read only shapes and attributes, so
re-evaluating them on the shrunk shapes predicts exactly what ``graphprune profile`` reports for
the pruned model; parameters follow the same convention (weight initializers read by a node,
each counted once). Only the nodes that touch a changed tensor are re-evaluated.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx

from ..analysis.types import Analysis
from ..profiling.counts import _WEIGHT_TYPES
from ..profiling.macs import node_macs
from ..profiling.tensors import GraphNames, TensorInfo, graph_names


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int

    def to_dict(self) -> dict:
        return {"params": self.params, "macs": self.macs}


class CostModel:
    """Parameters and MACs of ``model`` (the analysed object) after removing slots."""

    def __init__(self, model: onnx.ModelProto, analysis: Analysis, infos: Mapping[str, TensorInfo],
                 names: GraphNames | None = None):
        """``model``: the analysed model as a proto (a weight-less skeleton will do); ``infos``:
        the concrete shape of every tensor (:func:`graphprune.profiling.shapes.tensor_infos`);
        ``names``: ``model``'s :func:`~graphprune.profiling.tensors.graph_names` when read already."""
        self.analysis = analysis
        self.infos = dict(infos)
        self.names = names = names or graph_names(model)
        self.nodes = names.nodes
        self.groups = {g.id: g for g in analysis.groups}
        read = names.read()
        self.weights = {name for name, (_, _, elem) in names.initializers.items()
                        if elem in _WEIGHT_TYPES and name in read}
        self.touching: dict[str, list[int]] = {}
        for i, (inputs, outputs) in enumerate(zip(names.inputs, names.outputs)):
            for name in inputs + outputs:
                if name:
                    self.touching.setdefault(name, []).append(i)
        self.node_base = [node_macs(n, self.infos) or 0 for n in self.nodes]
        self.base = Cost(sum(_numel(self.infos[w].shape) for w in self.weights),
                         int(sum(self.node_base)))

    def kept_sizes(self, removed: Mapping) -> dict[str, dict[int, int]]:
        """tensor -> {axis: kept size} for every axis that loses positions (an axis in several
        groups, heads and head dims, loses the positions any of them removes)."""
        lost: dict = {}
        for gid, slots in removed.items():
            slots = np.asarray(slots, dtype=np.int64)
            if slots.size == 0:
                continue
            group = self.groups[gid]
            gone = np.zeros(group.n_slots, dtype=bool)
            gone[slots] = True
            for space, slot_ids in group.slot_of.items():
                if space.is_part:
                    continue
                mask = gone[slot_ids]
                if np.count_nonzero(mask):  # 4x cheaper than mask.any() on a space's few slots
                    lost[space] = lost[space] | mask if space in lost else mask
        out: dict[str, dict[int, int]] = {}
        for space, mask in lost.items():
            out.setdefault(space.tensor, {})[space.axis] = mask.size - np.count_nonzero(mask)
        return out

    def _shrunk(self, removed: Mapping) -> tuple[dict, dict]:
        """(kept sizes, tensor infos with every changed axis shrunk)."""
        sizes = self.kept_sizes(removed)
        infos = dict(self.infos)
        for tensor, axes in sizes.items():
            info = infos.get(tensor)
            if info is None:
                continue
            shape = list(info.shape)
            for axis, size in axes.items():
                if axis < len(shape):
                    shape[axis] = size
            infos[tensor] = TensorInfo(tuple(shape), info.elem_type)
        return sizes, infos

    def kept_work(self, removed: Mapping) -> dict[str, float]:
        """node name -> the fraction of its work kept, for every node the removal touches: MACs
        after / before, or (nodes without MACs) output elements after / before."""
        sizes, infos = self._shrunk(removed)
        out = {}
        for i in sorted({i for t in sizes for i in self.touching.get(t, ())}):
            node = self.nodes[i]
            if self.node_base[i]:
                out[node.name] = (node_macs(node, infos) or 0) / self.node_base[i]
                continue
            before = sum(_numel(self.infos[o].shape) for o in node.output if o in self.infos)
            after = sum(_numel(infos[o].shape) for o in node.output if o in infos)
            if before:
                out[node.name] = after / before
        return out

    def evaluate(self, removed: Mapping) -> Cost:
        sizes, infos = self._shrunk(removed)
        params = self.base.params
        for tensor in sizes:
            if tensor in self.weights:
                params += _numel(infos[tensor].shape) - _numel(self.infos[tensor].shape)
        affected = sorted({i for t in sizes for i in self.touching.get(t, ())})
        macs = self.base.macs
        for i in affected:
            macs += (node_macs(self.nodes[i], infos) or 0) - self.node_base[i]
        return Cost(int(params), int(macs))


def _numel(shape) -> int:
    return int(math.prod(shape))
