"""The reshape rule's segment maps (flatten, channel shuffle, head split) and the attention heads
they tie together through Reshape/Transpose/MatMul, under the pruning oracle."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphprune.rules.reshape import align_segments, segment_pairs
from tests.helpers.models import graph_model as _model
from tests.helpers.models import random_weight
from tests.helpers.oracle import ORACLE_RTOL, pruning_oracle_check

RNG = np.random.default_rng(0)


def _w(name, shape, scale=0.3):
    return random_weight(name, shape, RNG, scale)


# --------------------------------------------------------------------------- reshape segments
@pytest.mark.parametrize("ins,outs,expected", [
    ((1, 64, 7, 7), (1, 3136), [([0], [0], True), ([1, 2, 3], [1], True)]),
    ((1, 48, 44, 44), (24, 2, 1936), [([0, 1], [0, 1], True), ([2, 3], [2], True)]),
    (("N", 8, 4, 4), ("N", 2, 4, 16), [([0], [0], True), ([1], [1, 2], True), ([2, 3], [3], True)]),
    ((2, 24, 1936), (2, 1, 24, 44, 44), [([0], [0], True), ([1], [1, 2], True), ([2], [3, 4], True)]),
    ((1, 8, None), (1, 8, 3), [([0], [0], True), ([1], [1], True), ([2], [2], False)]),
])
def test_align_segments(ins, outs, expected):
    assert align_segments(ins, outs) == expected


def test_segment_pairs_flatten_and_shuffle():
    # flatten C=3, HW=2x2 into 12 features: channel c <-> features 4c..4c+3
    pairs = segment_pairs([3, 2, 2], [12], 0, 0)
    assert pairs.tolist() == [[c, 4 * c + k] for c in range(3) for k in range(4)]
    # C=6 -> (g=2, C/g=3): choosing the inner factor ties channels c and c+3
    inner = segment_pairs([6], [2, 3], 0, 1)
    assert sorted(map(tuple, inner.tolist())) == [(c, c % 3) for c in range(6)]
    # identity (same size, same order) is reported as None
    assert segment_pairs([1, 5], [5], 1, 0) is None


# --------------------------------------------------------------------------- attention heads
def _attention_model(tokens=16, dim=32, heads=4):
    d = dim // heads
    nodes = [
        helper.make_node("MatMul", ["x", "Wq"], ["q"]), helper.make_node("Add", ["q", "bq"], ["q1"]),
        helper.make_node("MatMul", ["x", "Wk"], ["k"]), helper.make_node("MatMul", ["x", "Wv"], ["v"]),
        helper.make_node("Reshape", ["q1", "s4"], ["q2"]), helper.make_node("Transpose", ["q2"], ["q3"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["k", "s4"], ["k2"]), helper.make_node("Transpose", ["k2"], ["k3"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["v", "s4"], ["v2"]), helper.make_node("Transpose", ["v2"], ["v3"], perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["q3", "k3"], ["sc"]), helper.make_node("Div", ["sc", "sq"], ["sc2"]),
        helper.make_node("Softmax", ["sc2"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v3"], ["o"]), helper.make_node("Transpose", ["o"], ["o2"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["o2", "s3"], ["o3"]), helper.make_node("MatMul", ["o3", "Wo"], ["y"]),
    ]
    inits = [_w("Wq", (dim, dim)), _w("bq", (dim,)), _w("Wk", (dim, dim)), _w("Wv", (dim, dim)), _w("Wo", (dim, dim)),
             numpy_helper.from_array(np.array([1, tokens, heads, d], np.int64), "s4"),
             numpy_helper.from_array(np.array([1, tokens, dim], np.int64), "s3"),
             numpy_helper.from_array(np.array(np.sqrt(d), np.float32), "sq")]
    return _model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, tokens, dim])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, tokens, dim])])


def test_attention_heads_and_head_dimensions_prune_consistently():
    """Whole heads are one group (Q, K, V columns of a head and the output projection's rows go
    together); Q and K share their contracted head dimension, V and the output projection theirs:
    position j of every head goes together (the reshape into heads ties j, j+8, j+16, j+24). At 0.5
    half the heads go, and half of every kept head's dims: 4 heads x 8 dims -> 2 x 4, and the
    reshape targets follow (the scale constant 1/sqrt(8) stays: it is of the original head size)."""
    res = pruning_oracle_check(_attention_model(), 0.5)
    assert res.max_rel_error <= ORACLE_RTOL and res.output_shapes_equal
    by_kind = {}
    for g in res.analysis.groups:
        by_kind.setdefault(g.kind, []).append(g)
    (heads,), dims = by_kind["heads"], by_kind["dims"]
    assert heads.prunable and heads.n_slots == 4
    assert {str(p.space) for p in heads.params} >= {"Wq[axis 1]", "Wk[axis 1]", "Wv[axis 1]", "Wo[axis 0]"}
    qk = next(g for g in dims if any(str(p.space) == "Wq[axis 1]" for p in g.params))
    vo = next(g for g in dims if any(str(p.space) == "Wv[axis 1]" for p in g.params))
    assert qk is not vo and qk.n_slots == vo.n_slots == 8
    assert {str(p.space) for p in qk.params} == {"Wq[axis 1]", "Wk[axis 1]", "bq[axis 0]"}
    assert {str(p.space) for p in vo.params} == {"Wv[axis 1]", "Wo[axis 0]"}
    consts = {t.name: numpy_helper.to_array(t).tolist() for t in res.pruned.graph.initializer}
    assert consts["s4"] == [1, 16, 2, 4] and consts["s3"] == [1, 16, 8]
    shapes = {t.name: list(t.dims) for t in res.pruned.graph.initializer}
    assert shapes["Wq"] == shapes["Wk"] == shapes["Wv"] == [32, 8] and shapes["Wo"] == [8, 32]