"""The model under repair: the editable graph, its analysis and the removed slots, kept in step.

Repairs edit kept weights and add biases before surgery. After every round of edits
:meth:`RepairState.refresh` rebuilds the analysis (a fresh index reads the edited weights; folded
biases are new initializers) and carries the removed slots over by their kept positions, so that
:meth:`RepairState.pruned_proto` (the graph with every removed slot's consumer slices zeroed: the
oracle of DESIGN.md) always computes what the pruned model will compute. Repairs measure that
model, never a pruned copy: the graph is pruned once, at the end, by surgery.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnx_ir as ir

from ..analysis.types import Analysis
from ..errors import PruningError
from ..graph.nodes import outputs
from ..rules.base import CONSUMER


@dataclass
class RepairState:
    model: ir.Model
    analysis: Analysis
    removed: dict
    strict_initializer_inputs: bool = False
    fold_batchnorm: bool = True

    def refresh(self) -> None:
        """Analyse the edited graph again; the removed slots must keep exactly the same positions."""
        from ..analysis.builder import analyze
        from ..graph.index import GraphIndex
        from ..planning.plan_file import removed_from_kept
        from ..surgery.apply import kept_positions

        before = kept_positions(self.analysis, self.removed)
        new = analyze(GraphIndex(self.model, strict_initializer_inputs=self.strict_initializer_inputs))
        moved, _ = removed_from_kept(new, before, strict=False)
        after = kept_positions(new, moved)
        lost = [s for s in before if s in after and not np.array_equal(before[s], after[s])]
        if lost or sum(len(v) for v in moved.values()) != sum(len(v) for v in self.removed.values()):
            raise PruningError("internal error: a repair changed the channel groups "
                               f"({', '.join(map(str, lost[:3])) or 'slot counts differ'}); nothing was written")
        self.analysis, self.removed = new, moved

    def pruned_proto(self) -> onnx.ModelProto:
        """The graph as the pruned model will compute it (removed consumer slices zeroed)."""
        from ..oracle import zero_removed

        return zero_removed(self.model, self.analysis, self.removed)

    def group_of(self, space):
        gid = self.analysis.space_group.get(space)
        return None if gid is None else self.analysis.groups[gid]

    def kept(self, space) -> np.ndarray:
        """Kept positions of ``space`` (all of them when its group loses nothing)."""
        group = self.group_of(space)
        slots = np.asarray(self.removed.get(group.id, ()), dtype=np.int64)
        if space not in group.slot_of:  # a group without slots (unknown sizes) is never pruned
            return np.arange(group.sizes[space], dtype=np.int64)
        return group.kept_positions(space, slots)

    def axis_kept(self, space) -> tuple[int, np.ndarray]:
        """Positions of the whole axis ``space`` and the kept ones: a position goes when any group on
        the axis (the axis itself, or its heads or head dims) removes its slot."""
        from ..calibration.sites import whole_size
        from .means import removed_mask

        size = whole_size(self.analysis, space)
        return size, np.nonzero(~removed_mask(self.analysis, self.removed, space, size))[0].astype(np.int64)

    def affected_nodes(self) -> set[str]:
        """Nodes whose output changes when the removed slots go: every node reading a removed slot
        through a consumer slice or a contraction, and everything downstream of them."""
        index = self.analysis.index
        start: set[str] = set()
        for group in self.analysis.groups:
            if not len(self.removed.get(group.id, ())):
                continue
            for param in group.params:
                if CONSUMER in param.roles:
                    start.update(u.node for u in index.uses(param.initializer))
            for space in group.contractions:
                start.update(u.node for u in index.uses(space.tensor))
        seen, stack = set(start), list(start)
        while stack:
            node = index.nodes[stack.pop()]
            for name in outputs(node):
                for use in index.uses(name) if name else ():
                    if use.node not in seen:
                        seen.add(use.node)
                        stack.append(use.node)
        return seen
