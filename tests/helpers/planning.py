"""Small hand-made models and data for the importance, calibration, compensation and planning tests,
and the shortcuts the unit tests take through the pipeline: a normalized editable graph, its
analysis, and a ratio decision with a weight-only criterion."""
from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
from onnx import TensorProto, helper, numpy_helper

from graphprune.analysis.builder import analyze
from graphprune.graph import GraphIndex
from graphprune.passes.normalize import normalize
from graphprune.pipeline.load import load
from graphprune.rules.base import Space


def _model(nodes, inits, x_shape, y_shape, opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                              [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def conv_chain(w1, w2, b1=None, b2=None, *, hw: int = 4, pad: int = 0, act: str | None = "Relu",
               bn: dict | None = None) -> onnx.ModelProto:
    """x -> Conv(w1, b1) [-> BatchNormalization(bn)] [-> act] -> Conv(w2, b2) -> y (weights as given)."""
    w1, w2 = np.asarray(w1, np.float32), np.asarray(w2, np.float32)
    k1, k2 = w1.shape[2], w2.shape[2]
    inits = {"w1": w1, "w2": w2}
    conv1 = ["x", "w1"] + (["b1"] if b1 is not None else [])
    conv2_in = "h"
    nodes = [helper.make_node("Conv", conv1, ["h"], name="conv1", pads=[pad] * 4)]
    if b1 is not None:
        inits["b1"] = b1
    if bn is not None:
        inits.update({f"bn_{k}": v for k, v in bn.items()})
        nodes.append(helper.make_node("BatchNormalization", ["h", "bn_scale", "bn_bias", "bn_mean", "bn_var"],
                                      ["hb"], name="bn"))
        conv2_in = "hb"
    if act:
        nodes.append(helper.make_node(act, [conv2_in], ["a"], name="act"))
        conv2_in = "a"
    conv2 = [conv2_in, "w2"] + (["b2"] if b2 is not None else [])
    if b2 is not None:
        inits["b2"] = b2
    nodes.append(helper.make_node("Conv", conv2, ["y"], name="conv2", pads=[pad] * 4))
    h1 = hw - k1 + 1 + 2 * pad
    h2 = h1 - k2 + 1 + 2 * pad
    return _model(nodes, inits, [1, w1.shape[1], hw, hw], [1, w2.shape[0], h2, h2])


def dense_chain(w1, b1, w2, *, batch: int = 1) -> onnx.ModelProto:
    """x [batch, F] -> Gemm(w1 [H, F], b1, transB) -> Relu -> MatMul(w2 [H, O]) -> y."""
    w1, w2 = np.asarray(w1, np.float32), np.asarray(w2, np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["a"], name="act"),
             helper.make_node("MatMul", ["a", "w2"], ["y"], name="fc2")]
    return _model(nodes, {"w1": w1, "b1": b1, "w2": w2}, [batch, w1.shape[1]], [batch, w2.shape[1]])


def normalized(model) -> ir.Model:
    """The editable graph of ``model`` (a path or a ModelProto, never modified), normalized."""
    graph = load(model).editable()
    normalize(graph)
    return graph


def analyze_graph(graph: ir.Model, rules=None):
    """The analysis of an already-normalized editable graph."""
    return analyze(GraphIndex(graph)) if rules is None else analyze(GraphIndex(graph), rules=rules)


def analysed(model):
    """(normalized editable graph, its analysis) of ``model`` (which is never modified)."""
    graph = normalized(model)
    return graph, analyze_graph(graph)


def decide(analysis, *, ratio: float, importance: str = "l2", exclude: tuple = (), seed: int = 0):
    """The same ratio in every prunable group with a weight-only criterion: the planner with the
    pipeline's default options (options validated as :class:`graphprune.pipeline.Options` does)."""
    from graphprune.importance import make_importance
    from graphprune.pipeline import Options
    from graphprune.planning.planner import Planner

    options = Options(ratio=ratio, importance=importance, exclude=tuple(exclude), seed=seed).plan_options
    scorer = make_importance(importance, seed=seed, aggregate=options.aggregate)
    return Planner(analysis, scorer, options).decide()


def group_with(analysis, tensor: str, axis: int):
    gid = analysis.space_group[Space(tensor, axis)]
    return next(g for g in analysis.groups if g.id == gid)


def feed_list(model: onnx.ModelProto, count: int, seed: int = 0, scale: float = 1.0) -> list[dict]:
    """Seeded normal feeds for a one-input float model with a static shape."""
    rng = np.random.default_rng(seed)
    vi = model.graph.input[0]
    shape = [d.dim_value or 1 for d in vi.type.tensor_type.shape.dim]
    return [{vi.name: (rng.standard_normal(shape) * scale).astype(np.float32)} for _ in range(count)]


def save_npz(path, feeds: list[dict]) -> str:
    np.savez(path, **{k: np.stack([f[k] for f in feeds]) for k in feeds[0]})
    return str(path)
