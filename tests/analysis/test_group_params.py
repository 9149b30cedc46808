"""The parameter slices of a group: each initializer axis with the roles, tags and neutral value of
every link that names it.

Conv -> BatchNormalization -> Relu -> Conv, analysed without folding: the first Conv's output
channels are one group holding its weight's axis 0 and bias (they write the channels), the four
BatchNormalization vectors (per-channel parameters; a variance of 1, the others 0, leave a channel
inert) and the second Conv's weight axis 1 (it reads them).
"""
from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

from graphprune.analysis.builder import analyze
from graphprune.rules.base import CHANNEL, CONSUMER, PRODUCER, Space
from tests.helpers.rule_graphs import graph, tensor


def conv_bn_conv():
    rng = np.random.default_rng(0)
    inits = {"w1": rng.normal(size=(6, 3, 3, 3)), "b1": rng.normal(size=6), "scale": rng.uniform(0.5, 2, 6),
             "shift": rng.normal(size=6), "mean": rng.normal(size=6), "var": rng.uniform(0.5, 2, 6),
             "w2": rng.normal(size=(4, 6, 1, 1))}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c1", "scale", "shift", "mean", "var"], ["bn"], name="bn"),
             helper.make_node("Relu", ["bn"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2"], ["y"], name="conv2")]
    return graph(nodes, [tensor("x", [1, 3, 8, 8])], [tensor("y", [1, 4, 8, 8])],
                 [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])


def test_each_initializer_axis_has_the_roles_tags_and_neutral_value_of_its_links():
    analysis = analyze(conv_bn_conv())
    (group,) = [g for g in analysis.groups if Space("w1", 0) in g.spaces]
    found = {p.space: (set(p.roles), set(p.tags), p.neutral) for p in group.params}
    assert found == {
        Space("w1", 0): ({PRODUCER}, {"weight"}, 0.0),
        Space("b1", 0): ({PRODUCER}, {"bias"}, 0.0),
        Space("scale", 0): ({CHANNEL}, {"bn_scale"}, 0.0),
        Space("shift", 0): ({CHANNEL}, {"bn_bias"}, 0.0),
        Space("mean", 0): ({CHANNEL}, {"bn_mean"}, 0.0),
        Space("var", 0): ({CHANNEL}, {"bn_var"}, 1.0),
        Space("w2", 1): ({CONSUMER}, {"weight"}, 0.0),
    }
    assert [p.space for p in group.params] == [s for s in group.spaces if s in found]  # in the group's order
    assert group.n_slots == 6 and not group.barriers


def test_spaces_without_a_weight_reading_or_writing_them_make_no_group():
    """The input's channel axis is linked only to the first Conv's weight axis 1 (a consumer): a group;
    the batch axis reaches no initializer at all: no group."""
    analysis = analyze(conv_bn_conv())
    in_groups = {s for g in analysis.groups for s in g.spaces}
    assert Space("w1", 1) in in_groups
    assert not any(s.axis == 0 and s.tensor in ("x", "c1", "bn", "r", "y") for s in in_groups)
