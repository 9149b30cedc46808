"""graph/index.py and graph/nodes.py: the read-only, name-keyed view analysis reads the editable
graph through, and node attributes read alike from an onnx-ir node and a NodeProto."""
from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphprune.graph.index as index_module
from graphprune.graph import GraphIndex, Use, get_attr, inputs, outputs
from graphprune.graph.model import from_proto
from graphprune.graph.nodes import has_subgraph
from tests.helpers import robust as rm

ATTRIBUTES = dict(i=3, f=0.5, s="text", ints=[1, 2], floats=[0.25, 1.5], strings=["a", "b"],
                  t=numpy_helper.from_array(np.arange(3, dtype=np.float32), "t"))


def test_attributes_read_alike_from_ir_nodes_and_node_protos():
    node = helper.make_node("Custom", ["x", "", "z"], ["y"], name="n", domain="my.ops", **ATTRIBUTES)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3]) for n in "xz"],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    ir_node = next(iter(from_proto(helper.make_model(graph)).graph))
    for name in ATTRIBUTES:
        ours, theirs = get_attr(ir_node, name), get_attr(node, name)
        expected = helper.get_attribute_value(next(a for a in node.attribute if a.name == name))
        if name == "t":
            np.testing.assert_array_equal(numpy_helper.to_array(ours), numpy_helper.to_array(expected))
        else:
            assert ours == theirs == expected and type(ours) is type(expected), name
    assert get_attr(ir_node, "missing", 7) == get_attr(node, "missing", 7) == 7
    assert inputs(ir_node) == ["x", "", "z"] and outputs(ir_node) == ["y"]


def test_index_links_producers_consumers_and_subgraph_reads():
    model = rm.if_node()
    index = GraphIndex(from_proto(model))
    assert index.node_order == [n.name for n in model.graph.node]
    assert index.producer["r2"] == "relu2" and index.node_of("r2").name == "relu2"
    assert index.uses("r2") == [Use("branch", -1)]          # read only inside the If's branches
    assert index.uses("w1") == [Use("c1", 1)] and index.uses("a3") == [Use("c4", 0)]
    assert index.graph_inputs == ["x", "cond"] and index.graph_outputs == ["y"]
    assert index.is_constant("w1") and not index.is_constant("r2")
    assert index.shape("a2") == (1, 8, 8, 8) and index.elem_type("a2") == TensorProto.FLOAT
    assert index.rank("r1") == 4 and index.opset("") == 17


def test_uses_list_every_input_slot_in_node_order_and_skip_omitted_inputs():
    """A tensor read twice by one node has two uses (slot order), readers in node order; an omitted
    optional input ("") is nobody's use; a Use is a named tuple (node, index)."""
    nodes = [helper.make_node("Mul", ["x", "x"], ["sq"], name="square"),
             helper.make_node("Clip", ["sq", "", "hi"], ["c"], name="clip"),
             helper.make_node("Add", ["c", "x"], ["y"], name="add")]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "g", [value("x", TensorProto.FLOAT, [2])], [value("y", TensorProto.FLOAT, [2])],
                              initializer=[numpy_helper.from_array(np.array(1.0, np.float32), "hi")])
    index = GraphIndex(from_proto(helper.make_model(graph)))
    assert index.uses("x") == [Use("square", 0), Use("square", 1), Use("add", 1)]
    assert index.uses("hi") == [("clip", 2)] and index.uses("hi")[0].node == "clip"
    assert "" not in index.consumers and index.uses("y") == []
    assert index.producer == {"sq": "square", "c": "clip", "y": "add"}
    assert index.node_order == ["square", "clip", "add"] and index.node_pos == {"square": 0, "clip": 1, "add": 2}


def test_initializers_declared_as_inputs_are_weights_unless_strict():
    model = rm.initializers_as_inputs()
    index = GraphIndex(from_proto(model))
    declared = {i.name for i in model.graph.input} & {t.name for t in model.graph.initializer}
    assert declared and index.initializer_inputs == declared
    assert index.graph_inputs == [i.name for i in model.graph.input if i.name not in declared]
    assert GraphIndex(from_proto(model), strict_initializer_inputs=True).strict_initializer_inputs


def test_array_values_are_read_only_and_the_cache_is_bounded(monkeypatch):
    model = rm.small_cnn()
    expected = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    monkeypatch.setattr(index_module, "ARRAY_CACHE_BYTES", expected["w2"].nbytes + expected["w4"].nbytes)
    index = GraphIndex(from_proto(model))
    with pytest.raises(ValueError, match="read-only"):
        index.array("w1")[0] = 1.0
    for name in ("w1", "w2", "w4", "w2"):
        np.testing.assert_array_equal(index.array(name), expected[name])
    assert set(index._arrays) == {"w4", "w2"}                 # w1, least recently used, went out
    assert index._cached_bytes <= index_module.ARRAY_CACHE_BYTES


def test_int64_constants_read_off_the_proto_equal_onnx_irs_numpy():
    """The fast path for int64 constants with raw bytes (scalar, vector, matrix, empty) gives the
    array onnx-ir's numpy() gives; int64_data-only, external and float tensors take onnx-ir's path."""
    arrays = {"scalar": np.array(-3, dtype=np.int64), "vector": np.array([1, -1, 2**40], dtype=np.int64),
              "matrix": np.arange(6, dtype=np.int64).reshape(2, 3), "empty": np.zeros(0, dtype=np.int64),
              "floats": np.arange(3, dtype=np.float32)}
    protos = [numpy_helper.from_array(a, name) for name, a in arrays.items()]
    protos.append(helper.make_tensor("listed", TensorProto.INT64, [2], [7, -8]))  # int64_data, no raw bytes
    graph = helper.make_graph([], "g", [], [], initializer=protos)
    index = GraphIndex(from_proto(helper.make_model(graph)), shapes={})
    for proto in protos:
        tensor = index.initializers[proto.name].const_value
        fast = index_module._int64_array(tensor)
        assert (fast is None) == (proto.name in ("floats", "listed")), proto.name
        expected = tensor.numpy()
        got = index.array(proto.name)
        assert got.dtype == expected.dtype and got.shape == expected.shape, proto.name
        np.testing.assert_array_equal(got, expected)
    assert index.array("matrix").shape == (2, 3) and index.array("scalar").shape == ()
    np.testing.assert_array_equal(index.array("listed"), [7, -8])


def test_index_keeps_the_skeleton_shape_inference_ran_on():
    """The weight-less copy inference read stays on the index (cost counting reads it again);
    weights above SKELETON_KEEP_ELEMENTS keep name, type and dims but no bytes."""
    from graphprune.graph.model import SKELETON_KEEP_ELEMENTS, to_proto
    from tests.helpers.planning import conv_chain, normalized

    rng = np.random.default_rng(0)
    big = rng.standard_normal((64, 80, 1, 1))  # 5,120 elements > 4,096
    graph = normalized(conv_chain(big, rng.standard_normal((3, 64, 1, 1))))
    index = GraphIndex(graph)
    assert index.skeleton.SerializeToString() == to_proto(graph, tensors="skeleton").SerializeToString()
    w1 = next(t for t in index.skeleton.graph.initializer if t.name == "w1")
    assert big.size > SKELETON_KEEP_ELEMENTS and list(w1.dims) == [64, 80, 1, 1] and not w1.raw_data
    assert index.shape("h") == (1, 64, 4, 4)
    assert GraphIndex(graph, shapes=index.shapes).skeleton is None  # shapes given: no inference, no skeleton


def test_has_subgraph_is_true_only_for_nodes_with_graph_attributes():
    model = rm.if_node()
    nodes = {n.name: n for n in from_proto(model).graph}
    with_graph = {name for name, node in nodes.items() if has_subgraph(node)}
    assert with_graph == {n.name for n in model.graph.node if any(a.g.node or a.graphs for a in n.attribute)}
    assert with_graph == {"branch"} and len(nodes) > 1  # the Convs (attributes) and Relus (none) have none
    loose = ir.Node("", "Custom", [], attributes=[ir.AttrGraph("body", ir.Graph([], [], nodes=[])),
                                                  ir.AttrInt64("k", 2)])
    assert has_subgraph(loose) and not has_subgraph(ir.Node("", "Relu", []))
