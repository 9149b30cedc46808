"""Normalization: weights made by exporters' Constant/ConstantOfShape/Cast nodes are lifted to
initializers (and prune), and node names are made unique."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphprune.graph.model import to_proto
from tests.helpers.models import graph_model as _model
from tests.helpers.models import random_weight
from tests.helpers.oracle import ORACLE_RTOL, group_of, kept_count, pruning_oracle_check
from tests.helpers.planning import analysed, normalized

RNG = np.random.default_rng(0)


def _w(name, shape, scale=0.3):
    return random_weight(name, shape, RNG, scale)


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
    prepared, analysis = analysed(m)
    assert "w1" in prepared.graph.initializers
    g = group_of(analysis, "w1", 0)
    assert g.prunable and g.n_slots == 6


def test_node_names_are_made_unique():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="n"), helper.make_node("Relu", ["a"], ["b"], name="n"),
             helper.make_node("Relu", ["b"], ["c"])]
    m = _model(nodes, [], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
               [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 2])])
    names = [n.name for n in normalized(m).graph]
    assert names[0] == "n" and len(set(names)) == 3 and all(names)


def test_a_lifted_constant_that_is_a_graph_output_keeps_its_declaration():
    """The exporter declared output ``c`` with a symbolic dim and a doc string: lifting the Constant
    that makes it into an initializer does not rewrite the graph's interface."""
    value = numpy_helper.from_array(np.ones((2, 3), np.float32), "v")
    nodes = [helper.make_node("Constant", [], ["c"], value=value, name="k"),
             helper.make_node("Add", ["x", "c"], ["y"], name="add")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3]),
               helper.make_tensor_value_info("c", TensorProto.FLOAT, ["A", 3], doc_string="the constant")]
    model = _model(nodes, [], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])], outputs)
    lifted = to_proto(normalized(model))
    assert [n.op_type for n in lifted.graph.node] == ["Add"] and [t.name for t in lifted.graph.initializer] == ["c"]
    assert [o.SerializeToString() for o in lifted.graph.output] == [o.SerializeToString() for o in outputs]
    onnx.checker.check_model(lifted, full_check=True)
