"""rules/elementwise.py: broadcasting ops link each input axis that carries the output's positions."""
from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

from graphprune.rules import DEFAULT_RULES
from graphprune.rules.base import CHANNEL, Link, RuleContext, Space
from graphprune.rules.shapevalue import ShapeValues
from tests.helpers.rule_graphs import graph, tensor


def _result(op_type: str, a_dims, b_dims, y_dims):
    index = graph([helper.make_node(op_type, ["a", "b"], ["y"], name="n")],
                  [tensor("a", a_dims)], [tensor("y", y_dims)],
                  [numpy_helper.from_array(np.ones(b_dims, np.float32), "b")])
    return DEFAULT_RULES.lookup("", op_type, 23)(RuleContext(index, index.nodes["n"], ShapeValues(index)))


def test_broadcast_links_every_carrying_axis_and_skips_broadcast_ones():
    """Div(a[N, 4, 5], b[4, 1]): a's axes link to y's; b's axis 0 links to y's axis 1 (shifted by the
    rank difference) with Div's divisor neutral 1.0; b's axis 1 (size 1 against 5) is broadcast."""
    res = _result("Div", ["N", 4, 5], [4, 1], ["N", 4, 5])
    assert res.links == [Link(Space("a", k), Space("y", k)) for k in range(3)] + [
        Link(Space("b", 0), Space("y", 1), None, CHANNEL, "", 1.0)]
    assert not res.reasons


def test_broadcast_of_a_mismatched_size_is_a_barrier_and_a_mul_operand_has_neutral_zero():
    res = _result("Mul", [2, 4], [3, 4], [2, 4])  # b's axis 0 (3) against 2: no link, a reason
    assert res.links == [Link(Space("a", 0), Space("y", 0)), Link(Space("a", 1), Space("y", 1)),
                         Link(Space("b", 1), Space("y", 1), None, CHANNEL, "", 0.0)]
    assert list(res.reasons) == [Space("b", 0)] and "size 3) against size 2" in res.reasons[Space("b", 0)]
