"""Copy-on-write constants: a constant read by several nodes is edited in place only when every
use asks for the same change; otherwise the diverging use gets its own copy."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphprune.graph.index import GraphIndex
from graphprune.graph.model import from_proto, to_proto
from graphprune.surgery.editor import ModelEditor
from tests.helpers.models import graph_model as _model
from tests.helpers.models import random_weight
from tests.helpers.oracle import pruning_oracle_check

RNG = np.random.default_rng(0)


def _w(name, shape, scale=0.3):
    return random_weight(name, shape, RNG, scale)


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
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["a"], name="r1"),
             helper.make_node("Reshape", ["x", "shape"], ["b"], name="r2")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    m = _model(nodes, [numpy_helper.from_array(np.array([2, 8], np.int64), "shape")], [x],
               [helper.make_tensor_value_info("a", TensorProto.FLOAT, None),
                helper.make_tensor_value_info("b", TensorProto.FLOAT, None)])
    graph = from_proto(m)
    ed = ModelEditor(graph)
    ed.patch_constant(("const", "shape", 1, "r1", 1), 6)
    ed.finalize()
    edited = to_proto(graph)
    inits = {t.name: numpy_helper.to_array(t).tolist() for t in edited.graph.initializer}
    r1, r2 = edited.graph.node
    assert inits["shape"] == [2, 8] and r2.input[1] == "shape"
    assert r1.input[1] != "shape" and inits[r1.input[1]] == [2, 6]
    assert ed.touched_nodes == {"r1"}  # r1 reads the copy now; apply re-serializes only touched nodes


def _two_reshapes(extra_inits=(), ir_version=None):
    """r1 and r2 read the shape constant "shape"; "spare" is read by no node."""
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["a"], name="r1"),
             helper.make_node("Reshape", ["x", "shape"], ["b"], name="r2")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    inits = [numpy_helper.from_array(np.array([2, 8], np.int64), "shape"),
             numpy_helper.from_array(np.array([1], np.int64), "spare"), *extra_inits]
    m = _model(nodes, inits, [x], [helper.make_tensor_value_info("a", TensorProto.FLOAT, None),
                                   helper.make_tensor_value_info("b", TensorProto.FLOAT, None)])
    if ir_version is not None:
        m.ir_version = ir_version
    return m


def test_editor_drops_a_constant_its_copies_left_unread_and_keeps_one_unread_before():
    graph = from_proto(_two_reshapes())
    ed = ModelEditor(graph)
    ed.patch_constant(("const", "shape", 1, "r1", 1), 6)
    ed.patch_constant(("const", "shape", 1, "r2", 1), 4)
    ed.finalize()
    edited = to_proto(graph)
    inits = {t.name: numpy_helper.to_array(t).tolist() for t in edited.graph.initializer}
    r1, r2 = edited.graph.node
    # both uses got their own copy: "shape" is read by nobody now and goes; "spare" was unread before: kept
    assert sorted(inits) == sorted(["spare", r1.input[1], r2.input[1]]) and "shape" not in inits
    assert inits[r1.input[1]] == [2, 6] and inits[r2.input[1]] == [2, 4] and inits["spare"] == [1]


def test_editor_keeps_a_replaced_constant_still_read_elsewhere():
    graph = from_proto(_two_reshapes())
    ed = ModelEditor(graph)
    new = ed.set_input_constant("r1", 1, np.array([4, 4], np.int64))
    ed.finalize()
    edited = to_proto(graph)
    inits = {t.name: numpy_helper.to_array(t).tolist() for t in edited.graph.initializer}
    assert inits == {"shape": [2, 8], "spare": [1], new: [4, 4]}
    assert [n.input[1] for n in edited.graph.node] == [new, "shape"]


def test_editor_keeps_a_replaced_constant_declared_as_graph_input_from_ir_4_on():
    """In IR >= 4 an initializer that is also a graph input is an overridable input: part of the
    interface, kept when no node reads it any more; in IR 3 every initializer is a graph input."""
    for ir_version, kept in ((4, True), (3, False)):
        proto = _two_reshapes(ir_version=ir_version)
        proto.graph.input.append(helper.make_tensor_value_info("shape", TensorProto.INT64, [2]))
        if ir_version < 4:
            proto.graph.input.append(helper.make_tensor_value_info("spare", TensorProto.INT64, [1]))
        graph = from_proto(proto)
        ed = ModelEditor(graph)
        ed.set_input_constant("r1", 1, np.array([4, 4], np.int64))
        ed.set_input_constant("r2", 1, np.array([8, 2], np.int64))
        ed.finalize()
        edited = to_proto(graph)
        names = [t.name for t in edited.graph.initializer]
        assert ("shape" in names) is kept and "spare" in names, ir_version
        assert ("shape" in [i.name for i in edited.graph.input]) is kept, ir_version


@pytest.mark.parametrize("indexed", [False, True])
def test_editor_finds_the_readers_a_constant_still_has_through_its_index_or_a_pass(indexed):
    """Three Reshapes read "shape"; r1 is pointed at a new constant first, then r2's and r3's reads
    are patched alike: "shape" itself is written (no copy), r1 keeps its own constant."""
    proto = _two_reshapes()
    proto.graph.node.append(helper.make_node("Reshape", ["x", "shape"], ["c"], name="r3"))
    proto.graph.output.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, None))
    graph = from_proto(proto)
    ed = ModelEditor(graph, GraphIndex(graph, shapes={}) if indexed else None)
    new = ed.set_input_constant("r1", 1, np.array([4, 4], np.int64))
    ed.patch_constant(("const", "shape", 1, "r2", 1), 4)
    ed.patch_constant(("const", "shape", 1, "r3", 1), 4)
    assert ed._uses_of("shape") == [("r2", 1), ("r3", 1)]
    ed.finalize()
    edited = to_proto(graph)
    inits = {t.name: numpy_helper.to_array(t).tolist() for t in edited.graph.initializer}
    assert inits == {"shape": [2, 4], "spare": [1], new: [4, 4]}
    assert [n.input[1] for n in edited.graph.node] == [new, "shape", "shape"]
    assert ed.touched_nodes == {"r1"}
