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

from graphprune.core import analyze_model, apply_decision, as_model, count_params, decide, prepare
from graphprune.oracle import kill_slots, zero_removed
from tests.helpers import random_feeds, relative_error, run

#: outputs of a pruned model vs its oracle: summation order changes when terms are dropped
ORACLE_RTOL = 1e-5


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


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


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


def _prune_and_compare(m, analysis, decision, reference, exact: bool) -> OracleResult:
    """Apply ``decision`` to ``m`` (checker-valid afterwards) and compare it with ``reference``."""
    before = count_params(m)
    apply_decision(m, analysis, decision)
    onnx.checker.check_model(m, full_check=True)
    err, shapes = _compare(reference, m)
    return OracleResult(len(analysis.prunable_groups), len(analysis.blocked_groups),
                        sum(len(v) for v in decision.removed.values()), before, count_params(m), err, shapes,
                        exact, m, analysis)


def dead_channel_check(model, ratio: float = 0.25, seed: int = 0) -> OracleResult:
    m = prepare(as_model(model))
    analysis = analyze_model(m)
    dead = decide(analysis, ratio=ratio, importance="random", seed=seed).removed
    kill_slots(m, analysis, dead)
    reference = _copy(m)
    analysis = analyze_model(m)
    decision = decide(analysis, ratio=ratio, importance="l2")
    exact = ({k: sorted(map(int, v)) for k, v in decision.removed.items()}
             == {k: sorted(map(int, v)) for k, v in dead.items()})
    return _prune_and_compare(m, analysis, decision, reference, exact)


def pruning_oracle_check(model, ratio: float = 0.5, importance: str = "l2", seed: int = 0) -> OracleResult:
    m = prepare(as_model(model))
    analysis = analyze_model(m)
    decision = decide(analysis, ratio=ratio, importance=importance, seed=seed)
    reference = zero_removed(m, analysis, decision.removed)
    return _prune_and_compare(m, analysis, decision, reference, True)


def ratio_zero_check(model) -> float:
    """Ratio 0 must leave outputs bit-for-bit equal (returns the max relative error)."""
    original = prepare(as_model(model))
    m = _copy(original)
    analysis = analyze_model(m)
    apply_decision(m, analysis, decide(analysis, ratio=0.0))
    err, shapes = _compare(original, m)
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
           "group_of", "kept_count", "np"]
