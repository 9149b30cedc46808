"""The two correctness oracles as reusable test checks (see DESIGN.md).

* :func:`dead_channel_check`: pick (with the planner itself, random scores) the slots a 25%
  prune would remove, kill every parameter slice of those slots, prune at 25% with the L2
  criterion: exactly those slots must go and the outputs must not change.
* :func:`pruning_oracle_check`: prune at a ratio with any criterion; the pruned model must
  compute what the original computes after zeroing every consumer slice of the removed slots.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnx_ir as ir

from graphprune.graph.model import to_proto
from graphprune.oracle import kill_slots, zero_removed
from graphprune.surgery.apply import apply_removal
from tests.helpers.onnxrt import random_feeds, relative_error, run
from tests.helpers.planning import analyze_graph, decide, normalized

#: outputs of a pruned model vs its oracle: summation order changes when terms are dropped
ORACLE_RTOL = 1e-5

_FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}


@dataclass
class OracleResult:
    prunable: int
    blocked: int
    removed_slots: int
    params_before: int
    params_after: int
    max_rel_error: float
    output_shapes_equal: bool
    dead_removed_exactly: bool = True
    pruned: onnx.ModelProto | None = None
    analysis: object = None


def float_parameters(model: onnx.ModelProto | ir.Model) -> int:
    """Elements of the floating-point initializers (counted here, independently of the profiler)."""
    proto = model if isinstance(model, onnx.ModelProto) else to_proto(model, tensors="skeleton")
    return sum(int(np.prod(t.dims, dtype=np.int64)) for t in proto.graph.initializer if t.data_type in _FLOATS)


def _compare(reference: onnx.ModelProto, candidate: onnx.ModelProto, seeds=(0, 1)) -> tuple[float, bool]:
    worst, shapes = 0.0, True
    for seed in seeds:
        feeds = random_feeds(reference, seed=seed)
        ref, cand = run(reference, feeds), run(candidate, feeds)
        for name in ref:
            shapes &= ref[name].shape == cand[name].shape
            if ref[name].shape == cand[name].shape:
                worst = max(worst, relative_error(ref[name], cand[name]))
    return worst, shapes


def _prune_and_compare(graph: ir.Model, analysis, decision, reference: onnx.ModelProto, exact: bool) -> OracleResult:
    """Apply ``decision`` to ``graph`` (checker-valid afterwards) and compare it with ``reference``."""
    before = float_parameters(graph)
    apply_removal(graph, analysis, decision.removed)
    pruned = to_proto(graph)
    onnx.checker.check_model(pruned, full_check=True)
    err, shapes = _compare(reference, pruned)
    return OracleResult(len(analysis.prunable_groups), len(analysis.blocked_groups),
                        sum(len(v) for v in decision.removed.values()), before, float_parameters(pruned), err, shapes,
                        exact, pruned, analysis)


def dead_channel_check(model, ratio: float = 0.25, seed: int = 0) -> OracleResult:
    graph = normalized(model)
    analysis = analyze_graph(graph)
    dead = decide(analysis, ratio=ratio, importance="random", seed=seed).removed
    kill_slots(graph, analysis, dead)
    reference = to_proto(graph)
    analysis = analyze_graph(graph)
    decision = decide(analysis, ratio=ratio, importance="l2")
    exact = ({k: sorted(map(int, v)) for k, v in decision.removed.items()}
             == {k: sorted(map(int, v)) for k, v in dead.items()})
    return _prune_and_compare(graph, analysis, decision, reference, exact)


def pruning_oracle_check(model, ratio: float = 0.5, importance: str = "l2", seed: int = 0) -> OracleResult:
    graph = normalized(model)
    analysis = analyze_graph(graph)
    decision = decide(analysis, ratio=ratio, importance=importance, seed=seed)
    reference = zero_removed(graph, analysis, decision.removed)
    return _prune_and_compare(graph, analysis, decision, reference, True)


def ratio_zero_check(model) -> float:
    """Ratio 0 must leave outputs bit-for-bit equal (returns the max relative error)."""
    graph = normalized(model)
    original = to_proto(graph)
    analysis = analyze_graph(graph)
    apply_removal(graph, analysis, decide(analysis, ratio=0.0).removed)
    err, shapes = _compare(original, to_proto(graph))
    assert shapes
    return err


def group_of(analysis, tensor: str, axis: int):
    """The group containing space (tensor, axis), or None."""
    from graphprune.rules.base import Space

    gid = analysis.space_group.get(Space(tensor, axis))
    return None if gid is None else next(g for g in analysis.groups if g.id == gid)


def kept_count(model: onnx.ModelProto, initializer: str, axis: int) -> int:
    for t in model.graph.initializer:
        if t.name == initializer:
            return int(t.dims[axis])
    raise KeyError(initializer)


__all__ = ["ORACLE_RTOL", "OracleResult", "dead_channel_check", "pruning_oracle_check", "ratio_zero_check",
           "float_parameters", "group_of", "kept_count"]
