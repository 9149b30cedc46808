"""Shape provenance and size taint: where a shape tensor's entries come from, and a channel count
used as data blocks its group while one copied into a Reshape shape is followed."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from graphprune.rules.shapevalue import ShapeValues
from graphprune.graph import GraphIndex
from tests.helpers.models import graph_model as _model
from tests.helpers.models import random_weight
from tests.helpers.oracle import ORACLE_RTOL, group_of, kept_count, pruning_oracle_check
from tests.helpers.planning import analysed, normalized

RNG = np.random.default_rng(0)


def _w(name, shape, scale=0.3):
    return random_weight(name, shape, RNG, scale)


def _reshape_by_own_dim(nodes_before: list, data: str, axis: int):
    """x[N, 4, 3, 3] -> nodes_before -> Reshape(data, Concat(Shape(data)[axis], -1)) -> y."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 3, 3])
    nodes = nodes_before + [
        helper.make_node("Shape", [data], ["s"]),
        helper.make_node("Gather", ["s", "i"], ["n"], axis=0),
        helper.make_node("Concat", ["n", "m1"], ["shape"], axis=0),
        helper.make_node("Reshape", [data, "shape"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.array([axis], np.int64), "i"),
             numpy_helper.from_array(np.array([-1], np.int64), "m1")]
    return _model(nodes, inits, [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])


def test_shape_values_track_literals_and_dims():
    entries = ShapeValues(GraphIndex(normalized(_reshape_by_own_dim([], "x", 0)))).value("shape")
    assert [e.value for e in entries] == [None, -1]
    assert entries[0].source == ("dim", "x", 0) and entries[0].deps == frozenset({("x", 0)})
    assert entries[1].source[:3] == ("const", "m1", 0) and entries[1].deps == frozenset()


def test_shape_values_do_not_walk_above_a_shape_node():
    """A Shape node reads only its input's shape: the evaluator never visits the data path above it
    (on a deep graph that walk went through every earlier node)."""
    chain = [helper.make_node("Relu", ["x" if k == 0 else f"r{k - 1}"], [f"r{k}"]) for k in range(6)]
    index = GraphIndex(normalized(_reshape_by_own_dim(chain, "r5", 1)))
    asked = []
    node_of = index.node_of
    index.node_of = lambda tensor: asked.append(tensor) or node_of(tensor)
    entries = ShapeValues(index).value("shape")
    assert [e.value for e in entries] == [4, -1]
    assert entries[0].source == ("dim", "r5", 1) and entries[0].deps == frozenset({("r5", 1)})
    assert set(asked) == {"shape", "n", "s"}  # nothing of the Relu chain


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
    _, a = analysed(_conv_then(nodes, [numpy_helper.from_array(np.array(1, np.int64), "one"), _w("w2", (4, 8, 1, 1))]))
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


def test_a_constant_read_twice_names_each_use_and_is_read_once():
    """Entries of one initializer read by two nodes name the use they were asked for (surgery rewrites
    that use's copy); the initializer's elements are read from the graph once, not per use."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["a"], name="r1"),
             helper.make_node("Reshape", ["x", "shape"], ["b"], name="r2")]
    inits = [numpy_helper.from_array(np.array([3, 4], np.int64), "shape"), _w("w", [6])]
    index = GraphIndex(normalized(_model(nodes, inits, [x], [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                                                             for n in "ab"])))
    read = []
    values = ShapeValues(index)
    read_ints = values._read_ints
    values._read_ints = lambda name: read.append(name) or read_ints(name)
    first = values.input_value(index.nodes["r1"], 1)
    second = values.input_value(index.nodes["r2"], 1)
    plain = values.value("shape")
    assert [e.value for e in first] == [e.value for e in second] == [e.value for e in plain] == [3, 4]
    assert [e.source for e in first] == [("const", "shape", 0, "r1", 1), ("const", "shape", 1, "r1", 1)]
    assert [e.source for e in second] == [("const", "shape", 0, "r2", 1), ("const", "shape", 1, "r2", 1)]
    assert [e.source for e in plain] == [None, None]
    assert values.value("w") is None and values.value("w") is None  # a float weight has no entries
    assert read == ["shape", "w"]


def test_each_tensor_above_a_shape_vector_is_looked_up_once_and_unread_axes_are_not_read():
    """Two sizes of one Shape node, each through Gather and Unsqueeze, into a Concat (a diamond): the
    evaluator looks every tensor's producer up once (a tensor with inputs left to compute becomes a
    plan on the stack, not a second lookup) and never reads the Unsqueeze axes its value ignores."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 3])
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["n0"], axis=0),
             helper.make_node("Gather", ["s", "i2"], ["n2"], axis=0),
             helper.make_node("Unsqueeze", ["n0", "ax"], ["u0"]),
             helper.make_node("Unsqueeze", ["n2", "ax"], ["u2"]),
             helper.make_node("Concat", ["u2", "u0", "m1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"])]
    inits = [numpy_helper.from_array(np.array(v, np.int64), name)
             for name, v in (("i0", 0), ("i2", 2), ("ax", [0]), ("m1", [-1]))]
    index = GraphIndex(normalized(_model(nodes, inits, [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])))
    asked, read = [], []
    node_of = index.node_of
    index.node_of = lambda tensor: asked.append(tensor) or node_of(tensor)
    values = ShapeValues(index)
    read_ints = values._read_ints
    values._read_ints = lambda name: read.append(name) or read_ints(name)
    entries = values.value("shape")
    assert [e.value for e in entries] == [3, None, -1]
    assert [e.dim_source for e in entries[:2]] == [("x", 2), ("x", 0)]
    assert entries[2].source[:3] == ("const", "m1", 0)
    assert sorted(asked) == sorted(["shape", "u2", "u0", "n2", "n0", "s"])  # each once
    assert sorted(read) == ["i0", "i2", "m1"]  # the axes "ax" are never read


def test_small_integer_constants_read_off_their_bytes_equal_their_arrays():
    """The elements ShapeValues reads of an int64 constant held as raw bytes (unpacked from them) are
    those of its array; other constants (int32, int64_data, floats, 2-D, over 64 elements) take the
    array path, and only small integer scalars and vectors have elements."""
    arrays = {"scalar": np.array(-2, np.int64), "vector": np.array([4, -1, 2**40], np.int64),
              "empty": np.zeros(0, np.int64), "long": np.arange(65, dtype=np.int64),
              "matrix": np.ones((2, 2), np.int64), "int32": np.array([3, 5], np.int32),
              "floats": np.array([1.5], np.float32)}
    inits = [numpy_helper.from_array(a, name) for name, a in arrays.items()]
    inits.append(helper.make_tensor("listed", TensorProto.INT64, [2], [7, -8]))  # int64_data, no raw bytes
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    index = GraphIndex(normalized(_model([helper.make_node("Relu", ["x"], ["y"])], inits, [x],
                                         [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])))
    values = ShapeValues(index)
    expected = {"scalar": (-2,), "vector": (4, -1, 2**40), "empty": (), "int32": (3, 5), "listed": (7, -8)}
    for tensor in inits:
        ints = values._read_ints(tensor.name)
        assert ints == expected.get(tensor.name), tensor.name
        assert ints is None or all(type(v) is int for v in ints)
        if ints is not None:
            assert ints == tuple(numpy_helper.to_array(tensor).reshape(-1).tolist())
