"""FoldAffinePass: per-channel Mul/Add/Sub/Div by constants fold into the linear node before them."""
from __future__ import annotations

import numpy as np
import pytest

from graphprune.graph.model import from_proto, to_proto
from graphprune.passes.affines import per_channel_vector
from graphprune.passes.fold_affine import Channel, ChannelAffine, FoldAffinePass, NotFoldable
from tests.helpers.fold import GraphBuilder, fold_checked, init_shapes, only, op_counts


def test_compose_applies_first_then_second():
    first = ChannelAffine(np.array([2.0, 3.0]), np.array([1.0, -1.0]))
    second = ChannelAffine(np.array([0.5, 4.0]), np.array([0.0, 2.0]))
    both = first.then(second)
    x = np.array([1.5, -2.0])
    assert np.allclose(both.scale * x + both.shift, second.scale * (first.scale * x + first.shift) + second.shift)


@pytest.mark.parametrize("shape,expected", [((), [7, 7, 7]), ((3, 1, 1), [0, 1, 2]), ((1, 3, 1, 1), [0, 1, 2])])
def test_per_channel_vector_accepts_channel_broadcasts(shape, expected):
    value = np.full(shape, 7.0) if shape == () else np.arange(3.0).reshape(shape)
    assert per_channel_vector(value, Channel(axis=1, rank=4, count=3), "k").tolist() == expected


@pytest.mark.parametrize("shape", [(1, 1, 5, 5), (3, 5, 5), (1, 1, 3, 1, 1)])
def test_per_channel_vector_refuses_other_broadcasts(shape):
    with pytest.raises(NotFoldable):
        per_channel_vector(np.ones(shape), Channel(axis=1, rank=4, count=3), "k")


def _conv_then(ops):
    """Conv [1,4,6,6] followed by ``ops``: list of (op_type, constant shape, data index)."""
    b = GraphBuilder()
    h = b.conv(b.input([1, 3, 6, 6]), 3, 4, bias=False)
    for op, shape, index in ops:
        k = b.const(low=0.5, high=1.5, shape=shape)
        h = b.op(op, [h, k] if index == 0 else [k, h])
    return b.model(h)


@pytest.mark.parametrize("ops", [
    [("Mul", (4, 1, 1), 0), ("Add", (1, 4, 1, 1), 0)],        # old exporters' BN decomposition
    [("Sub", (4, 1, 1), 0), ("Div", (4, 1, 1), 0)],
    [("Mul", (), 1), ("Sub", (4, 1, 1), 1), ("Add", (4, 1, 1), 1)],  # constant first; k - x
    [("Div", (1,), 0)],
], ids=["mul-add", "sub-div", "reversed", "scalar-div"])
def test_chain_after_conv_folds_into_it(ops):
    result = fold_checked(_conv_then(ops))
    assert op_counts(result.model) == {"Conv": 1}
    assert init_shapes(result.model, only(result.model, "Conv"))[0] == (4, 3, 3, 3)
    assert len(result.folded) == len(ops) and {f.direction for f in result.folded} == {"producer"}


@pytest.mark.parametrize("op,shape,index", [("Mul", (1, 1, 4, 4), 0), ("Div", (4, 1, 1), 1), ("Add", (2, 1, 4, 1, 1), 0)],
                         ids=["spatial-mask", "constant-over-data", "rank-growing"])
def test_non_affine_constants_stay(op, shape, index):
    model = _conv_then([(op, shape, index)])
    result = fold_checked(model)
    assert op_counts(result.model) == op_counts(model) and result.folded == []


def test_gemm_then_mul_add():
    b = GraphBuilder()
    h = b.gemm(b.input([3, 6]), 6, 4, trans_b=1, bias=None)
    h = b.op("Add", [b.op("Mul", [h, b.const(shape=(4,))]), b.const(shape=(1, 4))])
    result = fold_checked(b.model(h))
    assert op_counts(result.model) == {"Gemm": 1}
    assert init_shapes(result.model, only(result.model, "Gemm")) == [(4, 6), (4,)]


def test_matmul_bias_then_scale_keeps_one_add():
    """MatMul -> Add(b) -> Mul(s) on [B, T, F]: W scaled, one Add(s·b) left."""
    b = GraphBuilder()
    h = b.op("Add", [b.matmul(b.input([2, 5, 6]), 6, 4), b.const(shape=(4,))])
    result = fold_checked(b.model(b.op("Mul", [h, b.const(shape=(4,))])))
    assert op_counts(result.model) == {"MatMul": 1, "Add": 1}
    assert init_shapes(result.model, only(result.model, "Add")) == [(4,)]


def test_matmul_with_lone_bias_is_left_alone():
    b = GraphBuilder()
    model = b.model(b.op("Add", [b.matmul(b.input([2, 6]), 6, 4), b.const(shape=(4,))]))
    graph = from_proto(model)
    result = FoldAffinePass()(graph)
    assert not result.modified and op_counts(to_proto(graph)) == {"MatMul": 1, "Add": 1}
    assert to_proto(graph).SerializeToString() == model.SerializeToString()


def test_chain_through_transpose_to_channels_last():
    b = GraphBuilder()
    h = b.op("Transpose", [b.conv(b.input([1, 3, 6, 6]), 3, 4)], perm=[0, 2, 3, 1])
    result = fold_checked(b.model(b.op("Mul", [h, b.const(shape=(4,))])))
    assert op_counts(result.model) == {"Conv": 1, "Transpose": 1}


def test_mul_add_after_unfoldable_batchnorm_fold_into_it():
    b = GraphBuilder()
    x = b.input([1, 4, 5, 5])
    h = b.bn(b.op("Concat", [x, x], axis=1), 8)
    h = b.op("Add", [b.op("Mul", [h, b.const(shape=(8, 1, 1))]), b.const(shape=(8, 1, 1))])
    result = fold_checked(b.model(b.op("Relu", [h])))
    assert op_counts(result.model) == {"Concat": 1, "BatchNormalization": 1, "Relu": 1}
    bn = only(result.model, "BatchNormalization")
    assert {f.into for f in result.folded} == {(bn.name,)}


def test_intermediate_with_two_readers_stops_the_chain():
    b = GraphBuilder()
    h = b.op("Mul", [b.conv(b.input([1, 3, 6, 6]), 3, 4), b.const(shape=(4, 1, 1))])
    model = b.model(b.op("Add", [h, b.const(shape=(4, 1, 1))]), h)
    result = fold_checked(model)
    assert op_counts(result.model) == {"Conv": 1, "Add": 1}  # the Mul folded, the Add must stay


def test_affine_pass_is_idempotent():
    graph = from_proto(_conv_then([("Mul", (4, 1, 1), 0), ("Add", (4, 1, 1), 0)]))
    first = FoldAffinePass()(graph)
    frozen = to_proto(graph).SerializeToString()
    second = FoldAffinePass()(graph)
    assert first.modified and not second.modified and to_proto(graph).SerializeToString() == frozen
