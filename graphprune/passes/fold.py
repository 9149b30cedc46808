"""``fold``: the library entry point that folds BatchNormalization and per-channel affines.

    from graphprune.passes.fold import fold
    result = fold(model)                 # mutates ``model`` and returns it as result.model
    result = fold(model, inplace=False)  # works on a copy; ``model`` is left untouched
    print("\\n".join(result.summary_lines()))

Stages: normalization (unique node names, constants lifted to initializers, so that weights
made by Constant/ConstantOfShape/Cast nodes become foldable), then rounds of
:class:`FoldBatchNormPass` and :class:`FoldAffinePass` until a round changes nothing (folding a
Mul into a BN can make that BN foldable into the Conv after it), then :class:`CleanupPass`.
Every stage is exact; running ``fold`` on its own output changes nothing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import onnx_ir as ir

from ..graph.model import to_proto
from ..graph.proto import weightless_copy
from ..graph.shapes import skeleton_shapes
from .base import FixpointPass
from .cleanup import CleanupPass
from .fold_affine import FoldAffinePass, FoldedNode
from .fold_batchnorm import FoldBatchNormPass
from .normalize import normalize

log = logging.getLogger(__name__)

#: rounds of (BN pass, affine pass) at most; real models settle in two
MAX_ROUNDS = 8


def count_batchnorm(model: ir.Model) -> int:
    return sum(n.op_type == "BatchNormalization" and n.domain in ("", "ai.onnx") for n in model.graph)


@dataclass
class FoldResult:
    """What :func:`fold` did: the model, every node folded, every BN kept with its reason."""

    graph: ir.Model
    folded: list[FoldedNode] = field(default_factory=list)
    #: (BatchNormalization node name, reason it was not folded)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    modified: bool = False
    batchnorm_before: int = 0
    batchnorm_after: int = 0
    notes: list[str] = field(default_factory=list)
    #: when nothing was folded or normalized: the weight-less ModelProto and the tensor shapes the
    #: folds were looked for with (those of the graph as returned; an analysis need not infer them again)
    skeleton: object = None
    shapes: dict | None = None

    @property
    def model(self):
        """The folded model as an ``onnx.ModelProto`` (``graph`` is the editable graph itself)."""
        return to_proto(self.graph)

    @property
    def folded_batchnorm(self) -> int:
        return sum(f.op_type == "BatchNormalization" for f in self.folded)

    @property
    def folded_affine(self) -> int:
        return len(self.folded) - self.folded_batchnorm

    def summary_lines(self) -> list[str]:
        into_consumers = sum(f.op_type == "BatchNormalization" and f.direction == "consumers" for f in self.folded)
        if self.batchnorm_before:
            lines = [f"folded {self.folded_batchnorm} of {self.batchnorm_before} BatchNormalization nodes "
                     f"({self.folded_batchnorm - into_consumers} into the node before, {into_consumers} into the "
                     f"nodes after); {self.batchnorm_after} left"]
        else:
            lines = ["no BatchNormalization nodes"]
        if self.folded_affine:
            lines.append(f"folded {self.folded_affine} per-channel Mul/Add/Sub/Div nodes")
        if self.skipped:
            lines.append(f"not folded ({len(self.skipped)}):")
            lines += [f"  {node}: {reason}" for node, reason in self.skipped]
        if not self.modified:
            lines.append("nothing to fold: the model is unchanged")
        return lines

    def to_dict(self) -> dict:
        return {
            "modified": self.modified,
            "batchnorm": {"before": self.batchnorm_before, "folded": self.folded_batchnorm,
                          "after": self.batchnorm_after},
            "affine_folded": self.folded_affine,
            "folded": [f.to_dict() for f in self.folded],
            "skipped": [{"node": n, "reason": r} for n, r in self.skipped],
            "notes": list(self.notes),
        }


def _fold_rounds(model: ir.Model, batchnorm: bool, affine: bool, result: FoldResult, strict: bool,
                 skeleton) -> None:
    skeleton = to_proto(model, tensors="skeleton") if skeleton is None else skeleton
    shapes = skeleton_shapes(skeleton)  # once: folds keep the shapes of every surviving tensor
    passes = (([FoldBatchNormPass(shapes, strict)] if batchnorm else [])
              + ([FoldAffinePass(batchnorm, shapes, strict)] if affine else []))
    outcome = FixpointPass(passes, max_rounds=MAX_ROUNDS)(model)
    for round_ in outcome.parts:
        for part in round_.parts:
            result.folded.extend(part.folded)
        if batchnorm:  # the BatchNorm pass runs first in every round: its last word stands
            result.skipped = list(round_.parts[0].skipped)
    result.modified |= outcome.modified
    if not result.modified:
        result.skeleton, result.shapes = skeleton, shapes


def fold(model: ir.Model, *, inplace: bool = True, batchnorm: bool = True, affine: bool = True,
         cleanup: bool = True, strict_initializer_inputs: bool = False, source=None) -> FoldResult:
    """Fold BatchNormalization and per-channel Mul/Add/Sub/Div into neighbouring linear nodes.

    Mutates ``model`` (and returns it as ``result.model``) unless ``inplace=False``, in which
    case a copy is folded. ``batchnorm``/``affine``/``cleanup`` switch the stages off;
    ``batchnorm=False`` also keeps every BatchNormalization's parameters unchanged (the affine
    stage neither folds through a BN nor into one), for importance that reads BN statistics.
    ``source``: the ``onnx.ModelProto`` that ``model`` was read from, unchanged since; when
    normalizing changes nothing, shapes are inferred on a weight-less copy of it (same bytes as
    serializing the graph, made faster).
    """
    if not inplace:
        from ..graph.model import copy_model

        model = copy_model(model)
    result = FoldResult(model, batchnorm_before=count_batchnorm(model))
    prepared = normalize(model)
    result.modified |= prepared.modified
    result.notes += prepared.notes
    skeleton = weightless_copy(source) if source is not None and inplace and not prepared.modified else None
    _fold_rounds(model, batchnorm, affine, result, strict_initializer_inputs, skeleton)
    if cleanup:
        cleaned = CleanupPass()(model)
        result.modified |= cleaned.modified
        if cleaned.modified:
            result.skeleton = result.shapes = None
        result.notes += cleaned.notes
    result.batchnorm_after = count_batchnorm(model)
    log.info("folded %d BatchNormalization and %d affine nodes", result.folded_batchnorm, result.folded_affine)
    return result
