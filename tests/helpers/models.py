"""Hand-made models: small ones for the validate/profile/report tests, and a model of ready-made
protos with seeded weights for the analysis, rules and surgery tests."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # what onnxruntime reads; helper.make_model stamps the newest


def model(nodes, inputs, outputs, initializers=(), opset: int = OPSET) -> onnx.ModelProto:
    """``inputs``/``outputs``: (name, elem_type, dims) triples; ``initializers``: name -> array."""
    inits = [numpy_helper.from_array(np.asarray(a), n) for n, a in dict(initializers).items()]
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(n, t, d) for n, t, d in inputs],
        [helper.make_tensor_value_info(n, t, d) for n, t, d in outputs], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = IR_VERSION
    return m


def two_outputs(mask: np.ndarray | None = None) -> onnx.ModelProto:
    """x [2, 3] -> relu = Relu(x), out = x + mask (mask 0: the identity)."""
    mask = np.zeros((2, 3), np.float32) if mask is None else mask.astype(np.float32)
    nodes = [helper.make_node("Relu", ["x"], ["relu"], name="relu"),
             helper.make_node("Add", ["x", "mask"], ["out"], name="add")]
    f = TensorProto.FLOAT
    return model(nodes, [("x", f, [2, 3])], [("relu", f, [2, 3]), ("out", f, [2, 3])], {"mask": mask})


def logits(classes: int = 10, boost: float = 0.0, dynamic: bool = True) -> onnx.ModelProto:
    """x [N, classes] -> logits = x + boost * e_0 (boost 0: the identity)."""
    bias = np.zeros((classes,), np.float32)
    bias[0] = boost
    f = TensorProto.FLOAT
    batch = "N" if dynamic else 1
    return model([helper.make_node("Add", ["x", "bias"], ["logits"], name="add")],
                 [("x", f, [batch, classes])], [("logits", f, [batch, classes])], {"bias": bias})


def small_cnn(width: int = 8, classes: int = 10, hw: int = 16, seed: int = 0, batch="N") -> onnx.ModelProto:
    """Conv(3x3, bias) -> Relu -> MaxPool 2x2 -> GlobalAveragePool -> Flatten -> Gemm(transB)."""
    rng = np.random.default_rng(seed)
    inits = {"w1": rng.standard_normal((width, 3, 3, 3)).astype(np.float32),
             "b1": rng.standard_normal((width,)).astype(np.float32),
             "w2": rng.standard_normal((classes, width)).astype(np.float32),
             "b2": rng.standard_normal((classes,)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], transB=1, name="fc")]
    f = TensorProto.FLOAT
    return model(nodes, [("x", f, [batch, 3, hw, hw])], [("y", f, [batch, classes])], inits)


def single_node(op: str, inputs, outputs, initializers=(), **attrs) -> onnx.ModelProto:
    """One node named ``node``; ``inputs``/``outputs`` as for :func:`model`, weights as initializers."""
    names = [n for n, _, _ in inputs] + list(dict(initializers))
    node = helper.make_node(op, names, [n for n, _, _ in outputs], name="node", **attrs)
    return model([node], inputs, outputs, initializers)


def save(m: onnx.ModelProto, path) -> str:
    onnx.save_model(m, str(path))
    return str(path)


def random_weight(name: str, shape, rng: np.random.Generator, scale: float = 0.3) -> onnx.TensorProto:
    """A float32 initializer of seeded normal values times ``scale``."""
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def graph_model(nodes, inits, inputs, outputs, opset: int = OPSET) -> onnx.ModelProto:
    """A model of ready-made protos: ``inits`` TensorProtos, ``inputs``/``outputs`` ValueInfoProtos."""
    graph = helper.make_graph(nodes, "t", inputs, outputs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = IR_VERSION
    return m


def priors_model(count: int = 192) -> onnx.ModelProto:
    """x [1, 2, H, W] -> [1, H*W, 2] times constant priors [1, count, 2]: runs only when H * W = ``count``.

    192 = 12 x 16 is no square: the height:width 3:4 search finds H = 12, W = 16."""
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"], name="flat"),
             helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1], name="last"),
             helper.make_node("Mul", ["t", "priors"], ["y"], name="priors_mul")]
    inits = {"shape": np.array([1, 2, -1], np.int64),
             "priors": np.random.default_rng(1).uniform(0.5, 1.0, (1, count, 2)).astype(np.float32)}
    return model(nodes, [("x", TensorProto.FLOAT, [1, 2, "H", "W"])], [("y", TensorProto.FLOAT, [1, count, 2])],
                 inits)
