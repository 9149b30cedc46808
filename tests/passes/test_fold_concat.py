"""A BatchNorm after a Concat of convolutions folds into each producer (issue 10)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from graphprune.api import fold


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]


def _model(shared_input: bool = False) -> onnx.ModelProto:
    """x -> Conv a (3->4), Conv b (3->2, no bias) -> Concat (6) -> BN -> Relu -> y; with
    ``shared_input`` conv a's output also feeds y2 (so it cannot change)."""
    rng = np.random.default_rng(0)
    arr = {"wa": rng.standard_normal((4, 3, 3, 3)), "ba": rng.standard_normal(4), "wb": rng.standard_normal((2, 3, 1, 1)),
           "gamma": rng.uniform(0.5, 2, 6), "beta": rng.standard_normal(6), "mean": rng.standard_normal(6),
           "var": rng.uniform(0.5, 2, 6)}
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in arr.items()]
    nodes = [helper.make_node("Conv", ["x", "wa", "ba"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "wb"], ["b"], name="conv_b"),
             helper.make_node("Concat", ["a", "b"], ["c"], name="cat", axis=1),
             helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["n"], name="bn"),
             helper.make_node("Relu", ["n"], ["y"], name="relu")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 5, 5])]
    if shared_input:
        nodes.append(helper.make_node("Sigmoid", ["a"], ["y2"], name="side"))
        outputs.append(helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 4, 5, 5]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 5])],
                              outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_batchnorm_after_concat_splits_into_each_producer_exactly():
    model = _model()
    result = fold(model)
    assert result.batchnorm_after == 0 and not result.skipped
    (record,) = [f for f in result.folded if f.op_type == "BatchNormalization"]
    assert record.into == ("conv_a", "conv_b") and record.direction == "producer"
    folded = result.model
    assert [n.op_type for n in folded.graph.node] == ["Conv", "Conv", "Concat", "Relu"]
    assert list(folded.graph.node[1].input) == ["x", "wb", "wb_bias"]  # a new bias, named after the weight
    x = np.random.default_rng(1).standard_normal((1, 3, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(_run(folded, x), _run(model, x), rtol=1e-5, atol=1e-5)


def test_batchnorm_after_concat_stays_when_a_producer_output_has_another_reader():
    result = fold(_model(shared_input=True))
    assert result.batchnorm_after == 1
    (name, reason), = result.skipped
    assert name == "bn" and "not through a Concat" in reason and "'a'" in reason
