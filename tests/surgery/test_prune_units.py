"""Unit tests of the core pieces: reshape segments, shape provenance, size taint, copy-on-write
constants, constant lifting, external data, and the zoo across opsets and dynamic batch."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphprune.analysis.shapevalue import ShapeValues
from graphprune.core import analyze_model, apply_decision, as_model, decide, prepare
from graphprune.graph import GraphIndex
from graphprune.rules.reshape import align_segments, segment_pairs
from models.zoo import build
from tests.helpers.onnxrt import random_feeds, run
from tests.helpers.oracle import ORACLE_RTOL, group_of, kept_count, pruning_oracle_check

RNG = np.random.default_rng(0)


def _w(name, shape, scale=0.3):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def _model(nodes, inits, inputs, outputs, opset=17):
    graph = helper.make_graph(nodes, "t", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


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


# --------------------------------------------------------------------------- provenance and taint
def test_shape_values_track_literals_and_dims():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 3, 3])
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
        helper.make_node("Concat", ["n", "m1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "i0"),
             numpy_helper.from_array(np.array([-1], np.int64), "m1")]
    m = _model(nodes, inits, [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    entries = ShapeValues(GraphIndex(prepare(m))).value("shape")
    assert [e.value for e in entries] == [None, -1]
    assert entries[0].source == ("dim", "x", 0) and entries[0].deps == frozenset({("x", 0)})
    assert entries[1].source[:3] == ("const", "m1", 0) and entries[1].deps == frozenset()


def _conv_then(nodes_after, inits_after, out_name="y", out_shape=None):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    nodes = [helper.make_node("Conv", ["x", "w1"], ["h"], name="conv1", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["h"], ["r"], name="relu1")] + nodes_after
    inits = [_w("w1", (8, 3, 3, 3))] + inits_after
    return _model(nodes, inits, [x], [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)])


def test_channel_count_used_as_data_blocks_the_group():
    nodes = [helper.make_node("Shape", ["r"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "one"], ["c"], axis=0, name="gather"),
             helper.make_node("Cast", ["c"], ["cf"], to=TensorProto.FLOAT, name="cast"),
             helper.make_node("Div", ["r", "cf"], ["d"], name="div_by_channels"),
             helper.make_node("Conv", ["d", "w2"], ["y"], name="conv2")]
    m = prepare(_conv_then(nodes, [numpy_helper.from_array(np.array(1, np.int64), "one"), _w("w2", (4, 8, 1, 1))]))
    a = analyze_model(m)
    g = group_of(a, "w1", 0)
    assert g.blocked
    assert any("div_by_channels uses the size of r[axis 1] as data" in b.reason for b in g.barriers)


def test_channel_count_copied_into_reshape_is_followed():
    # flatten written as Reshape(r, [Shape(r)[0], -1]) with a dynamic-batch-style computed shape
    nodes = [helper.make_node("Shape", ["r"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
             helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["r", "shape"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "ax0"),
             numpy_helper.from_array(np.array([-1], np.int64), "m1"), _w("fc", (5, 8 * 64))]
    model = _conv_then(nodes, inits, out_shape=[1, 5])
    res = pruning_oracle_check(model, 0.5)
    assert res.max_rel_error <= ORACLE_RTOL and res.output_shapes_equal
    assert kept_count(res.pruned, "w1", 0) == 4
    assert kept_count(res.pruned, "fc", 1) == 4 * 64


# --------------------------------------------------------------------------- copy-on-write constants
def test_shared_reshape_constant_is_copied_when_uses_disagree():
    """Two flatten-like reshapes share one shape constant; only one branch is pruned."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["a"], name="conv_a"),
        helper.make_node("Reshape", ["a", "shape"], ["ra"], name="reshape_a"),
        helper.make_node("Reshape", ["x2", "shape"], ["rb"], name="reshape_b"),
        helper.make_node("Concat", ["ra", "rb"], ["cat"], axis=1, name="cat"),
        helper.make_node("Reshape", ["cat", "shape3"], ["y"], name="reshape_out"),
        helper.make_node("Conv", ["y", "wc"], ["z"], name="conv_c"),
    ]
    x2 = helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 8, 4, 4])
    inits = [_w("wa", (8, 3, 1, 1)), _w("wc", (2, 16, 1, 1)),
             numpy_helper.from_array(np.array([1, 8, 16], np.int64), "shape"),
             numpy_helper.from_array(np.array([1, 16, 4, 4], np.int64), "shape3")]
    m = _model(nodes, inits, [x, x2], [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 2, 4, 4])])
    res = pruning_oracle_check(m, 0.5)
    # conv_a's channels join x2's (a graph input) through the concat: that group is blocked,
    # so nothing changes and the shared constant keeps one copy
    assert res.removed_slots == 0
    assert [t.name for t in res.pruned.graph.initializer].count("shape") == 1


def test_editor_copies_a_shared_constant_for_diverging_uses():
    from graphprune.surgery.editor import ModelEditor

    nodes = [helper.make_node("Reshape", ["x", "shape"], ["a"], name="r1"),
             helper.make_node("Reshape", ["x", "shape"], ["b"], name="r2")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    m = _model(nodes, [numpy_helper.from_array(np.array([2, 8], np.int64), "shape")], [x],
               [helper.make_tensor_value_info("a", TensorProto.FLOAT, None),
                helper.make_tensor_value_info("b", TensorProto.FLOAT, None)])
    ed = ModelEditor(m)
    ed.patch_constant(("const", "shape", 1, "r1", 1), 6)
    ed.finalize()
    inits = {t.name: numpy_helper.to_array(t).tolist() for t in m.graph.initializer}
    r1, r2 = m.graph.node
    assert inits["shape"] == [2, 8] and r2.input[1] == "shape"
    assert r1.input[1] != "shape" and inits[r1.input[1]] == [2, 6]


# --------------------------------------------------------------------------- exporters' constants
def test_weights_in_constant_nodes_are_lifted_and_pruned():
    """Paddle/spox style: weights live in Constant nodes, one computed by Cast of a constant."""
    w1 = (RNG.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float16)
    w2 = (RNG.standard_normal((4, 8, 1, 1)) * 0.3).astype(np.float32)
    nodes = [helper.make_node("Constant", [], ["w1h"], value=numpy_helper.from_array(w1, "w1h")),
             helper.make_node("Cast", ["w1h"], ["w1"], to=TensorProto.FLOAT),
             helper.make_node("Constant", [], ["w2"], value=numpy_helper.from_array(w2, "w2")),
             helper.make_node("Conv", ["x", "w1"], ["h"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["y"])]
    m = _model(nodes, [], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])])
    res = pruning_oracle_check(m, 0.5)
    assert not any(n.op_type in ("Constant", "Cast") for n in res.pruned.graph.node)
    assert kept_count(res.pruned, "w1", 0) == 4 and kept_count(res.pruned, "w2", 1) == 4
    assert res.max_rel_error <= ORACLE_RTOL


def test_constant_of_shape_weights_are_lifted():
    nodes = [helper.make_node("ConstantOfShape", ["s1"], ["w1"],
                              value=numpy_helper.from_array(np.array([0.1], np.float32), "v")),
             helper.make_node("Conv", ["x", "w1"], ["h"]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["y"])]
    inits = [numpy_helper.from_array(np.array([6, 3, 1, 1], np.int64), "s1"), _w("w2", (2, 6, 1, 1))]
    m = _model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])])
    prepared = prepare(as_model(m))
    assert "w1" in {t.name for t in prepared.graph.initializer}
    g = group_of(analyze_model(prepared), "w1", 0)
    assert g.prunable and g.n_slots == 6


def test_external_data_model_prunes(tmp_path):
    model = build("resnet18", opset=17)
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.onnx.data", size_threshold=256)
    assert (tmp_path / "ext.onnx.data").stat().st_size > 100_000
    res = pruning_oracle_check(str(path), 0.5)
    assert res.max_rel_error <= ORACLE_RTOL and res.params_after < res.params_before


def test_node_names_are_made_unique():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="n"), helper.make_node("Relu", ["a"], ["b"], name="n"),
             helper.make_node("Relu", ["b"], ["c"])]
    m = _model(nodes, [], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
               [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 2])])
    names = [n.name for n in prepare(m).graph.node]
    assert names[0] == "n" and len(set(names)) == 3 and all(names)


# --------------------------------------------------------------------------- opsets and dynamic batch
OPSET_CASES = [(name, opset) for opset in (9, 11, 13, 18, 21)
               for name in ("resnet18", "mobilenetv3", "shufflenetv2", "vgg_reshape", "unet", "yolo_neck",
                            "opzoo_a", "opzoo_b", "nhwc", "resnext")]


@pytest.mark.parametrize("name,opset", OPSET_CASES, ids=[f"{n}-opset{o}" for n, o in OPSET_CASES])
def test_zoo_across_opsets_with_dynamic_batch(name, opset):
    model = build(name, opset=opset, batch="N")
    res = pruning_oracle_check(model, 0.5)
    assert res.output_shapes_equal and res.max_rel_error <= ORACLE_RTOL
    assert res.removed_slots > 0 and res.params_after < res.params_before
    # the batch stays symbolic and every output keeps its declared shape
    inp = res.pruned.graph.input[0].type.tensor_type.shape.dim[0]
    assert inp.dim_param == "N"
    orig = {o.name: o.type for o in model.graph.output}
    assert {o.name: o.type for o in res.pruned.graph.output} == orig


def test_pruned_model_runs_at_batch_three():
    model = build("mobilenetv2", opset=13, batch="N")
    res = pruning_oracle_check(model, 0.4)
    out = run(res.pruned, random_feeds(res.pruned, dynamic=3))
    assert next(iter(out.values())).shape[0] == 3


def test_decide_rejects_bad_ratio():
    from graphprune.errors import UsageError

    a = analyze_model(prepare(build("resnet18")))
    for bad in (-0.1, 1.0, 1.5, float("nan")):
        with pytest.raises(UsageError, match="--ratio must be in"):
            decide(a, ratio=bad)


def test_ratio_floor_and_one_slot_kept():
    m = prepare(build("resnet18"))
    a = analyze_model(m)
    d = decide(a, ratio=0.3)
    for g in a.prunable_groups:
        assert len(d.removed.get(g.id, ())) == int(np.floor(0.3 * g.n_slots))
    d = decide(a, ratio=0.999)
    for g in a.prunable_groups:
        assert len(d.removed[g.id]) <= g.n_slots - 1
    apply_decision(m, a, d)
    onnx.checker.check_model(m, full_check=True)


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


def test_attention_head_dimensions_prune_consistently():
    """Q and K share their contracted head dimension, V and the output projection theirs; the
    position j of every head goes together (the reshape into heads ties j, j+8, j+16, j+24)."""
    res = pruning_oracle_check(_attention_model(), 0.5)
    assert res.max_rel_error <= ORACLE_RTOL and res.output_shapes_equal
    qk, vo = group_of(res.analysis, "Wq", 1), group_of(res.analysis, "Wv", 1)
    assert qk.prunable and qk.n_slots == 8 and group_of(res.analysis, "Wk", 1) is qk
    assert vo.prunable and vo.n_slots == 8 and group_of(res.analysis, "Wo", 0) is vo
    consts = {t.name: numpy_helper.to_array(t).tolist() for t in res.pruned.graph.initializer}
    assert consts["s4"] == [1, 16, 4, 4] and consts["s3"] == [1, 16, 16]
    assert kept_count(res.pruned, "Wq", 1) == kept_count(res.pruned, "Wk", 1) == 16
    assert kept_count(res.pruned, "Wo", 0) == 16 and kept_count(res.pruned, "bq", 0) == 16
