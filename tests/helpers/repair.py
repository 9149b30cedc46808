"""Small hand-made models, seeded data and a runner for the repair tests (no test here)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def make_model(nodes, initializers: dict, x_shape, y_shape, opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "repair", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def feeds(model: onnx.ModelProto, count: int, seed: int, *, mean: float = 0.0) -> list[dict]:
    """Seeded normal samples for the model's one input (static shape)."""
    rng = np.random.default_rng(seed)
    vi = model.graph.input[0]
    shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    return [{vi.name: (rng.standard_normal(shape) + mean).astype(np.float32)} for _ in range(count)]


def run(model: onnx.ModelProto, samples: list[dict], tensor: str = "y") -> np.ndarray:
    """``tensor`` of ``model`` on every sample (stacked on a new axis 0); ORT optimizations off."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    if tensor not in {o.name for o in probe.graph.output}:
        probe.graph.output.append(helper.make_empty_tensor_value_info(tensor))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return np.stack([session.run([tensor], s)[0] for s in samples]).astype(np.float64)


def relative_rms(reference: np.ndarray, candidate: np.ndarray) -> float:
    return float(np.sqrt(np.mean((candidate - reference) ** 2) / np.mean(reference ** 2)))


def channel_stats(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of every position of ``axis`` (of one sample) over all other axes."""
    rows = np.moveaxis(values, axis + 1, 0).reshape(values.shape[axis + 1], -1)
    return rows.mean(axis=1), rows.std(axis=1)


def initializer(model: onnx.ModelProto, name: str) -> np.ndarray:
    return numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == name))
