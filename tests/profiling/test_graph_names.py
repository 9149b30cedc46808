"""``graph_names``: one read of a graph proto's names and initializer sizes, shared by the counts."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from graphprune.profiling.counts import node_params
from graphprune.profiling.tensors import graph_names
from graphprune.profiling.shapes import known_infos, tensor_infos
from tests.helpers.models import graph_model

F = TensorProto.FLOAT


def _model():
    """Conv (w 4x3x1x1, b 4) -> Clip (min omitted, max a float scalar) -> Mul by itself -> Reshape."""
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"),
             helper.make_node("Clip", ["c", "", "hi"], ["d"], name="clip"),
             helper.make_node("Mul", ["d", "d"], ["e"], name="square"),
             helper.make_node("Reshape", ["e", "shape"], ["y"], name="flat")]
    inits = [numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w"),
             numpy_helper.from_array(np.zeros(4, np.float32), "b"),
             numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
             numpy_helper.from_array(np.array([-1, 16], np.int64), "shape")]
    return graph_model(nodes, inits, [helper.make_tensor_value_info("x", F, ["n", 3, 2, 2])],
                       [helper.make_tensor_value_info("y", F, None)])


def test_names_of_every_node_and_initializer_in_graph_order():
    names = graph_names(_model())
    assert [n.name for n in names.nodes] == ["conv", "clip", "square", "flat"]
    assert names.op_types == ["Conv", "Clip", "Mul", "Reshape"] and names.domains == [""] * 4
    assert [list(i) for i in names.inputs] == [["x", "w", "b"], ["c", "", "hi"], ["d", "d"], ["e", "shape"]]
    assert [list(o) for o in names.outputs] == [["c"], ["d"], ["e"], ["y"]]
    assert names.initializers == {"w": (12, (4, 3, 1, 1), F), "b": (4, (4,), F), "hi": (1, (), F),
                                  "shape": (2, (2,), TensorProto.INT64)}
    # the omitted optional input is no tensor
    assert names.needed() == {"x", "w", "b", "c", "hi", "d", "e", "shape", "y"}
    assert names.read() == {"x", "w", "b", "c", "hi", "d", "e", "shape"}


def test_counts_read_the_names_given_as_they_read_the_proto():
    model = _model()
    names = graph_names(model)
    # every float initializer a computing node reads, once: 12 + 4 at the Conv, the scalar 6 at the Clip
    assert node_params(model) == node_params(model, None, names) == [16, 1, 0, 0]
    known = {"x": (("n", 3, 2, 2), F), "c": (("n", 4, 2, 2), F), "d": (("n", 4, 2, 2), F),
             "e": (("n", 4, 2, 2), F), "y": (("n", 16), F)}
    known.update({t.name: (tuple(t.dims), t.data_type) for t in model.graph.initializer})
    infos, inputs = known_infos(model, {"x": (2, 3, 2, 2)}, known, names)
    assert inputs == {"x": (2, 3, 2, 2)}
    assert infos["y"].shape == (2, 16) and infos["e"].shape == (2, 4, 2, 2) and infos["w"].shape == (4, 3, 1, 1)
    # the same shapes as ONNX shape inference finds for the fixed input shape
    inferred, _ = tensor_infos(model, {"x": (2, 3, 2, 2)}, names=names)
    assert {n: inferred[n] for n in names.needed()} == {n: infos[n] for n in names.needed()}
