"""CleanupPass: Identity, dead nodes, unused initializers, stale value_info — outputs unchanged."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from graphprune.graph import subgraph_reads
from graphprune.graph.model import from_proto, to_proto
from graphprune.passes.cleanup import CleanupPass
from tests.helpers.fold import GraphBuilder, assert_fold_exact, op_counts


def _clean(model: onnx.ModelProto):
    """(pass result, cleaned ModelProto): the pass runs on the editable graph of ``model``, which
    it returns edited in place; the outputs are unchanged and ``model`` itself is untouched."""
    before = model.SerializeToString()
    graph = from_proto(model)
    result = CleanupPass()(graph)
    assert result.model is graph
    cleaned = to_proto(graph)
    onnx.checker.check_model(cleaned)
    assert_fold_exact(model, cleaned, seeds=(0,), atol=0.0)
    assert model.SerializeToString() == before
    return result, cleaned


def test_identity_in_the_middle_is_bypassed():
    b = GraphBuilder()
    h = b.op("Identity", [b.op("Relu", [b.input([2, 3])])])
    model = b.model(b.op("Sigmoid", [h]), b.op("Tanh", [h]))
    result, model = _clean(model)
    assert result.modified and op_counts(model) == {"Relu": 1, "Sigmoid": 1, "Tanh": 1}
    relu = model.graph.node[0]
    assert [n.input[0] for n in model.graph.node[1:]] == [relu.output[0]] * 2


def test_identity_producing_a_graph_output_renames_its_producer():
    b = GraphBuilder()
    h = b.op("Relu", [b.input([2, 3])])
    model = b.model(b.op("Identity", [h], outputs=["y"]), b.op("Tanh", [h]))
    _, model = _clean(model)
    assert op_counts(model) == {"Relu": 1, "Tanh": 1}
    assert model.graph.node[0].output[0] == "y" and model.graph.node[1].input[0] == "y"
    assert [o.name for o in model.graph.output] == ["y", model.graph.node[1].output[0]]


def test_identity_from_graph_input_to_graph_output_stays():
    b = GraphBuilder()
    model = b.model(b.op("Identity", [b.input([2, 3])], outputs=["y"]))
    result, model = _clean(model)
    assert not result.modified and op_counts(model) == {"Identity": 1}


def test_dead_chain_and_its_initializers_go_graph_inputs_stay():
    b = GraphBuilder()
    x = b.input([2, 3])
    b.input([4], name="unused_input")
    dead = b.op("Mul", [b.op("Relu", [x]), b.const(shape=(3,), name="dead_weight")])
    b.op("Exp", [dead])
    b.const(shape=(5,), name="orphan")
    model = b.model(b.op("Sigmoid", [x]))
    model.graph.value_info.append(helper.make_tensor_value_info(dead, onnx.TensorProto.FLOAT, [2, 3]))
    result, model = _clean(model)
    assert op_counts(model) == {"Sigmoid": 1}
    assert [t.name for t in model.graph.initializer] == []
    assert [i.name for i in model.graph.input] == ["x", "unused_input"]
    assert len(model.graph.value_info) == 0
    assert result.notes == ["removed 3 dead nodes", "removed 2 unused initializers",
                            "removed 1 stale value_info entries"]


def test_initializer_declared_as_input_goes_with_its_declaration():
    b = GraphBuilder()
    model = b.model(b.op("Relu", [b.input([2, 3])]))
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.ones(3, np.float32), "legacy"))
    model.graph.input.append(helper.make_tensor_value_info("legacy", onnx.TensorProto.FLOAT, [3]))
    _, model = _clean(model)
    assert [i.name for i in model.graph.input] == ["x"] and len(model.graph.initializer) == 0


def _if_model() -> onnx.ModelProto:
    """An If whose branches read the outer initializer ``w`` and the outer tensor ``h``."""
    branch = helper.make_graph([helper.make_node("Add", ["h", "w"], ["out"])], "then", [],
                               [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [2, 3])])
    other = helper.make_graph([helper.make_node("Sub", ["h", "w"], ["out2"])], "else", [],
                              [helper.make_tensor_value_info("out2", onnx.TensorProto.FLOAT, [2, 3])])
    b = GraphBuilder()
    x = b.input([2, 3])
    b.op("Identity", [b.op("Relu", [x])], outputs=["h"])
    b.const(np.ones(3), name="w")
    cond = b.input([], name="cond", elem_type=onnx.TensorProto.BOOL)
    return b.model(b.op("If", [cond], then_branch=branch, else_branch=other))


def test_names_read_by_subgraphs_are_kept():
    model = _if_model()
    assert subgraph_reads(model.graph) >= {"h", "w"}
    graph = from_proto(model)
    result = CleanupPass()(graph)
    assert not result.modified
    assert to_proto(graph).SerializeToString() == model.SerializeToString()
    assert op_counts(model) == {"Relu": 1, "Identity": 1, "If": 1}
    assert [t.name for t in model.graph.initializer] == ["w"]


def test_second_cleanup_changes_nothing():
    b = GraphBuilder()
    b.op("Exp", [b.input([2, 3])])
    model = b.model(b.op("Identity", [b.op("Relu", ["x"])]))
    result, model = _clean(model)
    assert result.modified
    graph = from_proto(model)
    assert not CleanupPass()(graph).modified and to_proto(graph).SerializeToString() == model.SerializeToString()
