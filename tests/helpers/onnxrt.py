"""Running models in onnxruntime: sessions without graph optimizations, seeded feeds, comparisons."""
from __future__ import annotations

import os

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort

_NP = {
    onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.FLOAT16: np.float16, onnx.TensorProto.INT64: np.int64,
    onnx.TensorProto.INT32: np.int32, onnx.TensorProto.UINT8: np.uint8, onnx.TensorProto.INT8: np.int8,
    onnx.TensorProto.BOOL: np.bool_,
}


def as_proto(model: onnx.ModelProto | ir.Model) -> onnx.ModelProto:
    """``model`` as a ModelProto (an editable graph is written out; a ModelProto is returned as is)."""
    if isinstance(model, ir.Model):
        from graphprune.graph.model import to_proto

        return to_proto(model)
    return model


def session(model: onnx.ModelProto | ir.Model | bytes | str) -> ort.InferenceSession:
    model = as_proto(model) if isinstance(model, ir.Model) else model
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 2
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def random_feeds(model: onnx.ModelProto | ir.Model, seed: int = 0, dynamic: int = 1) -> dict[str, np.ndarray]:
    """Seeded random inputs for every real graph input (symbolic dims become ``dynamic``)."""
    model = as_proto(model)
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else dynamic for d in tt.shape.dim]
        dtype = _NP[tt.elem_type]
        if np.issubdtype(dtype, np.floating):
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            feeds[vi.name] = rng.integers(0, 2, shape).astype(bool)
        else:
            feeds[vi.name] = rng.integers(0, 10, shape).astype(dtype)
    return feeds


def run(model: onnx.ModelProto | ir.Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    sess = session(model)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def assert_outputs_close(a: dict, b: dict, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys(), f"output names differ: {sorted(a)} vs {sorted(b)}"
    for name in a:
        assert a[name].shape == b[name].shape, f"{name}: shape {a[name].shape} vs {b[name].shape}"
        np.testing.assert_allclose(b[name], a[name], rtol=rtol, atol=atol, err_msg=f"output {name}")


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a-b| / max |a| (0 when both are zero)."""
    den = float(np.abs(a).max()) if a.size else 0.0
    num = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0
    return num / den if den > 0 else num


os.environ.setdefault("OMP_NUM_THREADS", "2")
