"""A sandwich test for every rule: ``Conv → OP → Conv`` under both oracles (see tests/helpers/sandwich/).

For each case:

* structure: the named groups are prunable with the hand-computed slot count, or blocked with
  the exact reason; after pruning at 0.5 the initializers keep the expected sizes and the
  attributes/constants that follow channels (Conv ``group``, Split sizes, Slice bounds, Reshape
  shapes, Gather indices, Resize sizes) hold the expected values; graph outputs keep their
  names and shapes;
* numbers: the pruned model equals its pruning oracle (zeroed consumer slices) to
  ``ORACLE_RTOL``; dead channels are removed exactly with unchanged outputs; ratio 0 is exact.
"""
from __future__ import annotations

import math

import pytest

from graphprune.graph.model import to_proto
from tests.helpers.oracle import (ORACLE_RTOL, dead_channel_check, group_of, kept_count, pruning_oracle_check,
                                  ratio_zero_check)
from tests.helpers.planning import normalized
from tests.helpers.sandwich import CASES, Pruned

IDS = sorted(CASES)


def _signature(model) -> list:
    return [(o.name, [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim]) for o in model.graph.output]


@pytest.mark.parametrize("case_id", IDS)
def test_structure_and_pruning_oracle(case_id):
    case = CASES[case_id]()
    res = pruning_oracle_check(case.model, ratio=0.5)
    for exp in case.expects:
        group = group_of(res.analysis, exp.weight, exp.axis)
        assert group is not None, f"{exp.weight} axis {exp.axis} is in no group"
        reasons = sorted({b.reason for b in group.barriers})
        if exp.blocked is not None:
            assert exp.blocked in reasons, f"{exp.weight}: expected barrier {exp.blocked!r}, got {reasons}"
            continue
        assert group.prunable, f"{exp.weight}: group blocked by {reasons}"
        assert group.n_slots == exp.slots, f"{exp.weight}: {group.n_slots} slots, expected {exp.slots}"
        for (init, axis), size in exp.kept.items():
            got = kept_count(res.pruned, init, axis)
            assert got == size, f"{init} axis {axis}: kept {got}, expected {size}"
    pruned = Pruned(to_proto(normalized(case.model)), res.pruned)
    for check in case.checks:
        check(pruned)
    assert _signature(res.pruned) == _signature(case.model)
    assert res.output_shapes_equal
    assert res.removed_slots > 0 and res.params_after < res.params_before
    assert res.max_rel_error <= ORACLE_RTOL, f"pruned model differs from its oracle by {res.max_rel_error:.3g}"


@pytest.mark.parametrize("case_id", IDS)
def test_dead_channels(case_id):
    res = dead_channel_check(CASES[case_id]().model, ratio=0.25)
    expected = sum(math.floor(0.25 * g.n_slots) for g in res.analysis.prunable_groups)
    assert expected > 0
    assert res.removed_slots == expected
    assert res.dead_removed_exactly, "L2 did not remove exactly the killed slots"
    assert res.output_shapes_equal
    assert res.max_rel_error <= ORACLE_RTOL, f"outputs changed by {res.max_rel_error:.3g}"


@pytest.mark.parametrize("case_id", IDS)
def test_ratio_zero(case_id):
    assert ratio_zero_check(CASES[case_id]().model) == 0.0
