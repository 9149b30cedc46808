"""The rules behind attention heads: factored reshapes, shape provenance, attention ops.

Each test builds a small graph, runs one node's rule and checks what it says against the op's
definition: which parts of which axes are the same positions, which spaces are barriers, and
which attributes or constants follow the kept positions.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphprune.analysis.evaluate import evaluate_rule
from graphprune.graph.index import GraphIndex
from graphprune.rules import DEFAULT_RULES
from graphprune.rules.base import CONSUMER, HEADS, OPERAND, PRODUCER, QUERY_GROUP, Space
from graphprune.rules.factors import dim_factor, refine
from graphprune.rules.shapevalue import ShapeValues
from tests.helpers.rule_graphs import MS, graph, ints, tensor



def floats(name, shape, seed=0):
    return onnx.numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), name)


def rule(index: GraphIndex, name: str):
    return evaluate_rule(DEFAULT_RULES, index, index.nodes[name], ShapeValues(index))


def pairs(res):
    return {(str(lk.a), str(lk.b)) for lk in res.links}


# --------------------------------------------------------------------------- factors of a segment
def test_dim_factor_reads_symbolic_products():
    assert dim_factor(8) == (8, ())
    assert dim_factor("batch") == (1, ("batch",))
    assert dim_factor("4*batch") == (4, ("batch",))
    assert dim_factor("batch + 1") == (1, ("batch + 1",))  # an expression: one opaque symbol
    assert dim_factor(None) is None


def test_refine_cuts_both_shapes_into_common_atoms():
    spans, ins, outs = refine([32], [4, 8])
    assert spans == [(1, 8), (8, 32)]                     # the atoms 8 (inner) and 4
    assert ins == [[((1, 8), 1), ((8, 32), 8)]]           # the input axis holds both: strides 1 and 8
    assert outs == [[((8, 32), 1)], [((1, 8), 1)]]        # each output axis one
    spans, ins, outs = refine(["batch", 32], ["4*batch", 8])
    assert spans == [(1, 8), (8, 32)] and outs[0] == [((8, 32), 1)]  # heads: the inner 4 of 4*batch
    assert refine([2, 3], [3, 2]) is None                 # an interleaving reshape has no atoms
    assert refine(["batch", 4], [4, "batch"]) is None     # a symbol must lead both shapes


def test_split_into_heads_links_each_factor_and_rewrites_both_sizes():
    index = graph([helper.make_node("MatMul", ["x", "w"], ["q"], name="mm"),
                   helper.make_node("Reshape", ["q", "shape"], ["y"], name="split")],
                  [tensor("x", ["batch", 5, 32])], [tensor("y", ["batch", 5, 4, 8])],
                  [floats("w", (32, 32)), ints("shape", [0, 0, 4, 8])])
    res = rule(index, "split")
    (factoring,) = res.factorings
    assert pairs(factoring.factored) == {("q[axis 2, 4 parts of stride 8]", "y[axis 2]"),
                                         ("q[axis 2, 8 parts of stride 1]", "y[axis 3]")}
    assert {f.what for f in factoring.factored.fixups} == {"Reshape target size of y[axis 2]",
                                                           "Reshape target size of y[axis 3]"}
    assert len(factoring.plain.choices) == 1  # kept whole: one of the two factors carries the channels


def test_heads_folded_into_the_batch_are_the_inner_part_of_that_axis():
    """torch's MultiheadAttention: [T, B, 32] -> Reshape [T, -1, 8] -> [T, 4*B, 8]."""
    index = graph([helper.make_node("Reshape", ["x", "shape"], ["y"], name="fold")],
                  [tensor("x", [5, "batch", 32])], [tensor("y", [5, "4*batch", 8])], [ints("shape", [5, -1, 8])])
    (factoring,) = rule(index, "fold").factorings
    assert pairs(factoring.factored) >= {("x[axis 2, 4 parts of stride 8]", "y[axis 1, 4 parts of stride 1]"),
                                         ("x[axis 2, 8 parts of stride 1]", "y[axis 2]")}
    assert Space("y", 1) in factoring.factored.reasons  # the batch positions themselves are not channels


# --------------------------------------------------------------------------- shape provenance
def shape_pattern_index(extra_nodes, extra_inits, outputs):
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "one"], ["g"], axis=0, name="gather"),
             helper.make_node("Unsqueeze", ["g", "zero"], ["u"], name="unsq")] + extra_nodes
    inits = [ints("one", 1), ints("zero", [0])] + extra_inits
    return graph(nodes, [tensor("x", ["batch", 4, 5, 8])], outputs, inits, opset=17)


def test_a_size_times_a_literal_is_a_scaled_copy_whose_literal_can_be_rewritten():
    index = shape_pattern_index([helper.make_node("Mul", ["u", "rep"], ["heads"], name="mul")],
                                [ints("rep", [2])], [tensor("heads", [1], TensorProto.INT64)])
    (entry,) = ShapeValues(index).value("heads")
    assert entry.is_scaled and entry.value == 8 and entry.dim_source == ("x", 1)
    assert entry.source[3][:2] == ("const", "rep")


def test_class_token_sizes_through_constant_of_shape_equal_where():
    """``expand(n, -1, -1)`` exported: Where(Equal(sizes, -1), ones, sizes) is [batch, 1, 1]."""
    one = helper.make_tensor("value", TensorProto.INT64, [1], [1])
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "zero"], ["b"], axis=0, name="gather"),
             helper.make_node("Unsqueeze", ["b", "axes"], ["bu"], name="unsq"),
             helper.make_node("Concat", ["bu", "m1", "m1"], ["sizes"], axis=0, name="concat"),
             helper.make_node("ConstantOfShape", ["three"], ["ones"], value=one, name="cos"),
             helper.make_node("Mul", ["ones", "m1"], ["minus"], name="mul"),
             helper.make_node("Equal", ["sizes", "minus"], ["eq"], name="eq"),
             helper.make_node("Where", ["eq", "ones", "sizes"], ["target"], name="where"),
             helper.make_node("Expand", ["token", "target"], ["y"], name="expand")]
    index = graph(nodes, [tensor("x", ["batch", 16, 32])], [tensor("y", ["batch", 1, 32])],
                  [ints("zero", 0), ints("axes", [0]), ints("m1", [-1]), ints("three", [3]),
                   floats("token", (1, 1, 32))], opset=17)
    entries = ShapeValues(index).value("target")
    assert [e.value for e in entries[1:]] == [1, 1] and entries[0].is_dim and entries[0].dim_source == ("x", 0)
    res = rule(index, "expand")
    assert ("token[axis 2]", "y[axis 2]") in pairs(res) and not res.reasons  # the channels pass


# --------------------------------------------------------------------------- attention ops
def test_onnx_attention_3d_gqa_parts_links_markers_and_fixups():
    """4 query heads over 2 key/value heads of 8 dims: query head j reads key/value head j // 2."""
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], q_num_heads=4, kv_num_heads=2, name="att")
    index = graph([node], [tensor("q", [2, 5, 32]), tensor("k", [2, 5, 16]), tensor("v", [2, 5, 16])],
                  [tensor("y", [2, 5, 32])])
    res = rule(index, "att")
    q_kv, q_group, q_dim = Space("q", 2, (16, 2)), Space("q", 2, (8, 2)), Space("q", 2, (1, 8))
    k_kv, k_dim = Space("k", 2, (8, 2)), Space("k", 2, (1, 8))
    roles = {(lk.a, lk.b): lk.role for lk in res.links}
    assert (q_kv, k_kv) in roles and (q_group, Space("y", 2, (8, 2))) in roles
    assert roles[(q_dim, k_dim)] == CONSUMER  # scores contract the head dims of Q and K
    assert res.heads[q_kv] == HEADS and res.heads[q_group] == QUERY_GROUP
    assert {f.what.split(" of ")[0] for f in res.fixups} == {"q_num_heads", "kv_num_heads", "scale"}


@pytest.mark.parametrize("interleaved,expected", [(0, [(0, 4), (1, 5), (2, 6), (3, 7)]),
                                                  (1, [(0, 1), (2, 3), (4, 5), (6, 7)])])
def test_rotary_embedding_keeps_rotated_pairs_and_cache_columns(interleaved, expected):
    node = helper.make_node("RotaryEmbedding", ["x", "cos", "sin", "pos"], ["y"], interleaved=interleaved,
                            name="rope")
    index = graph([node], [tensor("x", [2, 4, 5, 8]), tensor("pos", [2, 5], TensorProto.INT64)],
                  [tensor("y", [2, 4, 5, 8])], [floats("cos", (16, 4)), floats("sin", (16, 4), 1)])
    res = rule(index, "rope")
    (self_link,) = [lk for lk in res.links if lk.a == lk.b == Space("x", 3)]
    assert [tuple(p) for p in self_link.pairs] == expected
    (cache,) = [lk for lk in res.links if lk.a == Space("cos", 1)]
    assert sorted(map(tuple, cache.pairs)) == sorted([(i, a) for i, (a, _) in enumerate(expected)]
                                                     + [(i, b) for i, (_, b) in enumerate(expected)])


def test_skip_layer_norm_blocks_the_hidden_axis_and_passes_the_others():
    node = helper.make_node("SkipLayerNormalization", ["x", "skip", "gamma", "beta"], ["y", "", "", "sum"],
                            domain=MS, name="sln")
    index = graph([node], [tensor("x", [2, 5, 32]), tensor("skip", [2, 5, 32])],
                  [tensor("y", [2, 5, 32]), tensor("sum", [2, 5, 32])],
                  [floats("gamma", (32,)), floats("beta", (32,), 1)], opset=17, ms=True)
    res = rule(index, "sln")
    assert {s for s in res.reasons} == {Space(t, 2) for t in ("x", "skip", "y", "sum")}
    assert all("normalizes over axis 2 (the hidden axis)" in r for r in res.reasons.values())
    assert {("x[axis 0]", "y[axis 0]"), ("x[axis 1]", "sum[axis 1]")} <= pairs(res)


@pytest.mark.parametrize("op", ["FastGelu", "BiasGelu"])
def test_gelu_bias_is_a_producer_slice_of_the_last_axis(op):
    node = helper.make_node(op, ["x", "bias"], ["y"], domain=MS, name="gelu")
    index = graph([node], [tensor("x", [2, 5, 64])], [tensor("y", [2, 5, 64])], [floats("bias", (64,))],
                  opset=17, ms=True)
    (bias,) = [lk for lk in rule(index, "gelu").links if lk.a == Space("bias", 0)]
    assert bias.b == Space("y", 2) and bias.role == PRODUCER and bias.tag == "bias"


def test_packed_attention_splits_its_weight_into_chunk_heads_and_dims():
    """com.microsoft.Attention: weight [32, 3*32], 4 heads of 8: the Q|K|V chunk is kept."""
    node = helper.make_node("Attention", ["x", "w", "b"], ["y"], num_heads=4, domain=MS, name="att")
    index = graph([node], [tensor("x", [2, 5, 32])], [tensor("y", [2, 5, 32])],
                  [floats("w", (32, 96)), floats("b", (96,), 1)], opset=17, ms=True)
    res = rule(index, "att")
    assert "packed in one weight" in res.reasons[Space("w", 1, (32, 3))]
    roles = {}
    for lk in res.links:
        roles.setdefault((lk.a, lk.b), set()).add(lk.role)
    assert roles[(Space("w", 1, (8, 4)), Space("y", 2, (8, 4)))] == {PRODUCER, OPERAND}
    assert roles[(Space("w", 1, (1, 8)), Space("y", 2, (1, 8)))] == {PRODUCER, OPERAND}


# --------------------------------------------------------------------------- repeated key/value heads
def test_tile_of_heads_separates_the_copy_index():
    """Tile [1, 2, 1, 1] of 4 heads: output head t*4 + i is head i; t is the copy."""
    index = graph([helper.make_node("Tile", ["x", "reps"], ["y"], name="tile")], [tensor("x", [2, 4, 5, 8])],
                  [tensor("y", [2, 8, 5, 8])], [ints("reps", [1, 2, 1, 1])], opset=17)
    (factoring,) = rule(index, "tile").factorings
    assert pairs(factoring.factored) == {("x[axis 1]", "y[axis 1, 4 parts of stride 1]")}
    assert factoring.factored.heads == {Space("y", 1, (4, 2)): QUERY_GROUP}
    assert "repeats axis 1" in next(iter(factoring.plain.reasons.values()))


def test_gather_repeat_interleave_separates_the_copy_index():
    index = graph([helper.make_node("Gather", ["x", "idx"], ["y"], axis=1, name="gather")],
                  [tensor("x", [2, 4, 5, 8])], [tensor("y", [2, 8, 5, 8])], [ints("idx", np.repeat(np.arange(4), 2))],
                  opset=17)
    (factoring,) = rule(index, "gather").factorings
    assert pairs(factoring.factored) >= {("x[axis 1]", "y[axis 1, 4 parts of stride 2]")}
    assert factoring.factored.heads == {Space("y", 1, (1, 2)): QUERY_GROUP}
