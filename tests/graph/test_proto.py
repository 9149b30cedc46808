"""graph/proto.py: the weight-less copy shape inference reads, whether or not it has weights to leave out."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphprune.graph.model import from_proto, to_proto
from graphprune.graph.proto import weightless_copy
from tests.helpers.models import model as make_model


def _matmuls(width: int) -> onnx.ModelProto:
    """x[2, 64] -> MatMul(w1[64, width]) -> Reshape(shape) -> MatMul(w2[width, 3]) -> y; a float weight
    of more than 4,096 elements (width 80: 5,120) is one a weight-less copy keeps without its bytes."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
             helper.make_node("Reshape", ["h", "shape"], ["r"], name="reshape"),
             helper.make_node("MatMul", ["r", "w2"], ["y"], name="mm2")]
    weights = {"w1": rng.standard_normal((64, width)).astype(np.float32), "shape": np.array([2, width], np.int64),
               "w2": rng.standard_normal((width, 3)).astype(np.float32)}
    return make_model(nodes, [("x", TensorProto.FLOAT, [2, 64])], [("y", TensorProto.FLOAT, [2, 3])], weights)


@pytest.mark.parametrize("width", [8, 80])
def test_a_weightless_copy_is_the_serialized_skeleton(width):
    """With no weight to leave out (width 8) the copy is the whole model; with one (width 80) that
    weight keeps name, type and dims but no bytes. Either way: the bytes of serializing the graph
    read from the model as a skeleton, and the model itself is left as it was."""
    model = _matmuls(width)
    before = model.SerializeToString()
    light = weightless_copy(model)
    assert light.SerializeToString() == to_proto(from_proto(model), tensors="skeleton").SerializeToString()
    assert model.SerializeToString() == before
    w1 = next(t for t in light.graph.initializer if t.name == "w1")
    assert list(w1.dims) == [64, width] and w1.data_type == TensorProto.FLOAT
    assert (len(w1.raw_data) == 64 * width * 4) == (width == 8)
    if width == 8:
        assert light.SerializeToString() == before
    kept = {t.name: onnx.numpy_helper.to_array(t) for t in light.graph.initializer if t.name != "w1"}
    np.testing.assert_array_equal(kept["shape"], [2, width])
    assert kept["w2"].shape == (width, 3)
