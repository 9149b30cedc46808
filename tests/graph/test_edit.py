"""graph/edit.py: the conventions that keep written models stable, and links kept by onnx-ir."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphprune.graph import edit
from graphprune.graph.model import from_proto, to_proto
from tests.helpers import robust as rm
from tests.helpers.onnxrt import random_feeds, run


def _initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def test_an_attribute_set_again_moves_to_the_end():
    model = rm.small_cnn()
    conv = model.graph.node[0]
    conv.attribute.extend([helper.make_attribute("group", 1), helper.make_attribute("strides", [1, 1])])
    graph = from_proto(model)
    node = next(iter(graph.graph))
    assert list(node.attributes) == ["pads", "group", "strides"]
    edit.set_attribute(node, "group", 1)
    edit.set_attribute(node, "dilations", [1, 1])
    written = to_proto(graph).graph.node[0]
    assert [a.name for a in written.attribute] == ["pads", "strides", "group", "dilations"]
    assert helper.get_attribute_value(written.attribute[2]) == 1
    assert edit.delete_attribute(node, "strides") and not edit.delete_attribute(node, "strides")
    assert [a.name for a in to_proto(graph).graph.node[0].attribute] == ["pads", "group", "dilations"]


def test_a_rewritten_initializer_keeps_its_place_doc_string_and_metadata():
    model = rm.rich_model()
    target = model.graph.initializer[1]
    target.metadata_props.add(key="origin", value="exporter")
    names = [t.name for t in model.graph.initializer]
    graph = from_proto(model)
    new = np.arange(np.prod(target.dims), dtype=np.float32).reshape(target.dims)
    edit.write_initializer(graph.graph.initializers[target.name], new)
    written = to_proto(graph)
    assert [t.name for t in written.graph.initializer] == names
    tensor = written.graph.initializer[1]
    assert tensor.doc_string == target.doc_string == f"weight {target.name}"
    assert {p.key: p.value for p in tensor.metadata_props} == {"origin": "exporter"}
    np.testing.assert_array_equal(numpy_helper.to_array(tensor), new)
    assert [t.SerializeToString() for i, t in enumerate(written.graph.initializer) if i != 1] == \
        [t.SerializeToString() for i, t in enumerate(model.graph.initializer) if i != 1]


def test_a_new_initializer_goes_last_and_is_a_graph_input_below_ir4():
    old = rm.initializers_as_inputs()
    assert old.ir_version < 4
    graph = from_proto(old)
    edit.add_initializer(graph, "extra", np.ones(3, np.float32))
    written = to_proto(graph)
    assert written.graph.initializer[-1].name == "extra" and written.graph.input[-1].name == "extra"
    assert written.graph.input[-1].type.tensor_type.elem_type == TensorProto.FLOAT
    assert [d.dim_value for d in written.graph.input[-1].type.tensor_type.shape.dim] == [3]
    onnx.checker.check_model(written)
    modern = from_proto(rm.small_cnn())
    edit.add_initializer(modern, "extra", np.ones(3, np.float32))
    written = to_proto(modern)
    assert written.graph.initializer[-1].name == "extra"
    assert "extra" not in {i.name for i in written.graph.input}


def test_removed_initializers_take_their_input_declaration_along():
    graph = from_proto(rm.initializers_as_inputs())
    declared = [v.name for v in graph.graph.inputs]
    name = next(n for n in graph.graph.initializers if n in declared)
    assert edit.remove_initializers(graph, {name, "no-such-initializer"}) == 1
    assert name not in graph.graph.initializers and name not in [v.name for v in graph.graph.inputs]
    assert edit.remove_initializers(graph, set()) == 0


def test_replacing_a_graph_output_keeps_its_declaration():
    """``r = Relu(x)``, ``y = Identity(r)``: the Relu's output replaces graph output ``y`` (and takes
    its name); the output's declared type, shape and doc string stay as the model wrote them."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Identity", ["r"], ["y"], name="id")]
    model = rm.make(nodes, [rm.image()], [rm.image("y")], [])
    model.graph.output[0].doc_string = "the output"
    graph = from_proto(model)
    relu, identity = list(graph.graph)
    edit.replace_value(identity.outputs[0], relu.outputs[0])
    edit.remove_nodes(graph.graph, [identity])
    written = to_proto(graph)
    assert written.graph.output[0].SerializeToString() == model.graph.output[0].SerializeToString()
    assert [n.output[0] for n in written.graph.node] == ["y"]
    onnx.checker.check_model(written, full_check=True)
    feeds = random_feeds(model)
    np.testing.assert_array_equal(run(written, feeds)["y"], run(model, feeds)["y"])


def test_fresh_names_avoid_every_name_of_the_graph():
    graph = from_proto(rm.small_cnn())
    names = edit.Names(graph.graph)
    assert names.fresh("w1") == "w1_1" and names.fresh("w1") == "w1_2"
    assert names.fresh("a1") == "a1_1" and names.fresh("x") == "x_1" and names.fresh("new") == "new"
    assert names.fresh("new") == "new_1"


def test_set_input_extends_optional_inputs():
    graph = from_proto(rm.small_cnn())
    conv4 = next(n for n in graph.graph if n.name == "c4")
    assert len(conv4.inputs) == 2
    bias = edit.add_initializer(graph, "b4", np.zeros(4, np.float32))
    assert list(bias.uses()) == []
    edit.set_input(conv4, 2, bias)
    assert [v.name for v in conv4.inputs] == ["r2", "w4", "b4"]
    assert [(u.node, u.idx) for u in bias.uses()] == [(conv4, 2)]
