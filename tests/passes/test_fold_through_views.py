"""BatchNorm folds into its consumers through the views the rules can follow (issue 9)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphprune.api import fold
from models.transformers.registry import build_transformer


def _run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


@pytest.mark.parametrize("style", ["torchscript", "dynamo"])
def test_vit_with_batchnorm_between_transposes_folds_every_batchnorm_exactly(style):
    model = build_transformer("vit_bn", style=style)
    assert sum(n.op_type == "BatchNormalization" for n in model.graph.node) == 5
    result = fold(model)
    assert result.batchnorm_before == 5 and result.batchnorm_after == 0 and not result.skipped
    folded = result.model
    assert not any(n.op_type == "BatchNormalization" for n in folded.graph.node)
    rng = np.random.default_rng(0)
    image = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    name = model.graph.input[0].name
    (want,), (got,) = _run(model, {name: image}), _run(folded, {name: image})
    assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))


def _bn_transpose_matmul(shift: float) -> onnx.ModelProto:
    """x[1, 6, 4] -> BN over the 6 channels -> Transpose to [1, 4, 6] -> MatMul W[6, 3] (no bias).
    The BN's shift β − μ·γ/σ is ``shift`` on every channel (mean 0, beta = shift)."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in (
        ("gamma", rng.uniform(0.5, 2.0, 6)), ("beta", np.full(6, shift)), ("mean", np.zeros(6)),
        ("var", rng.uniform(0.5, 2.0, 6)), ("W", rng.standard_normal((6, 3))))]
    nodes = [helper.make_node("BatchNormalization", ["x", "gamma", "beta", "mean", "var"], ["b"], name="bn"),
             helper.make_node("Transpose", ["b"], ["t"], perm=[0, 2, 1], name="tr"),
             helper.make_node("MatMul", ["t", "W"], ["y"], name="mm")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("shift, adds", [(0.0, 0), (0.3, 1)])
def test_batchnorm_through_transpose_into_matmul(shift, adds):
    model = _bn_transpose_matmul(shift)
    result = fold(model)
    assert result.batchnorm_after == 0
    assert [f.direction for f in result.folded] == ["consumers"] and result.folded[0].into == ("mm",)
    ops = [n.op_type for n in result.model.graph.node]
    assert ops == ["Transpose", "MatMul"] + ["Add"] * adds   # the shift's t·W needs an Add after the MatMul
    x = np.random.default_rng(2).standard_normal((1, 6, 4)).astype(np.float32)
    (want,), (got,) = _run(model, {"x": x}), _run(result.model, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_batchnorm_before_a_reshape_that_splits_its_channels_stays_with_the_reason():
    model = _bn_transpose_matmul(0.3)
    shape = numpy_helper.from_array(np.array([1, 2, 3, 4], dtype=np.int64), "shape")
    model.graph.initializer.append(shape)
    model.graph.node[1].CopyFrom(helper.make_node("Reshape", ["b", "shape"], ["t"], name="split"))
    model.graph.node[2].CopyFrom(helper.make_node("ReduceSum", ["t"], ["y"], name="sum", keepdims=0))
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, None))
    result = fold(model)
    assert result.batchnorm_after == 1
    (node, reason), = result.skipped
    assert node == "bn" and "not into its consumers" in reason
