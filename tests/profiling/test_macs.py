"""MAC formulas, one hand-computed case per op family (see graphprune/profiling/macs.py)."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from graphprune.profiling import profile
from graphprune.profiling.macs import supported_ops
from tests.helpers.models import model, single_node

F = TensorProto.FLOAT


def _w(*shape):
    return np.ones(shape, np.float32)


def _macs(op, x_shape, weights=(), extra_inputs=(), **attrs):
    """MACs of one node reading x (and weights as initializers); the output shape is inferred."""
    inputs = [("x", F, list(x_shape)), *extra_inputs]
    m = single_node(op, inputs, [("y", F, None)], dict(weights), **attrs)
    return profile(m).node("node").macs


CASES = {
    # Conv: numel(Y) * C/g * kh * kw (+ numel(Y) bias). Y = 1x6x5x5 = 150
    "conv grouped strided with bias": (("Conv", (1, 4, 10, 10), {"w": _w(6, 2, 3, 3), "b": _w(6)}),
                                       dict(group=2, strides=[2, 2], pads=[1, 1, 1, 1]), 150 * 2 * 9 + 150),
    "conv dilated without bias": (("Conv", (1, 4, 10, 10), {"w": _w(6, 4, 3, 3)}), dict(dilations=[2, 2]),
                                  6 * 6 * 6 * 4 * 9),
    "conv depthwise": (("Conv", (1, 4, 8, 8), {"w": _w(4, 1, 3, 3)}), dict(group=4, pads=[1, 1, 1, 1]),
                       4 * 8 * 8 * 9),
    "conv 1d": (("Conv", (2, 3, 20), {"w": _w(5, 3, 4)}), {}, 2 * 5 * 17 * 3 * 4),
    # ConvTranspose stride 2 = kernel 2: every output pixel gets one tap per input channel:
    # numel(Y) * C_in = 72 * 4, which is numel(X) * M/g * k = 36 * 2 * 4
    "conv transpose 2x2 stride 2": (("ConvTranspose", (1, 4, 3, 3), {"w": _w(4, 2, 2, 2)}), dict(strides=[2, 2]),
                                    72 * 4),
    "conv transpose grouped with bias": (("ConvTranspose", (1, 4, 5, 5), {"w": _w(4, 1, 3, 3), "b": _w(2)}),
                                         dict(group=2), 100 * 1 * 9 + 2 * 7 * 7),
    # Gemm: M * N * K (+ M * N for C)
    "gemm with C": (("Gemm", (3, 5), {"b": _w(5, 7), "c": _w(7)}), {}, 3 * 7 * 5 + 21),
    "gemm transA transB": (("Gemm", (5, 3), {"b": _w(7, 5)}), dict(transA=1, transB=1), 3 * 7 * 5),
    # MatMul: numel(Y) * K with broadcast batch dims: Y = 2x3x4x6
    "matmul batched broadcast": (("MatMul", (2, 1, 4, 5), {"b": _w(3, 5, 6)}), {}, 2 * 3 * 4 * 6 * 5),
    "matmul vector": (("MatMul", (5,), {"b": _w(5, 6)}), {}, 6 * 5),
    # pooling: numel(Y) * window taps; global pooling: numel(X)
    "maxpool 3x3 stride 2": (("MaxPool", (1, 2, 8, 8), {}), dict(kernel_shape=[3, 3], strides=[2, 2],
                                                                 pads=[1, 1, 1, 1]), 2 * 4 * 4 * 9),
    "averagepool 2x2": (("AveragePool", (1, 2, 8, 8), {}), dict(kernel_shape=[2, 2], strides=[2, 2]), 2 * 16 * 4),
    "global average pool": (("GlobalAveragePool", (1, 3, 4, 5), {}), {}, 60),
    "reduce mean": (("ReduceMean", (2, 3, 4), {}), dict(keepdims=0), 24),
    # element-wise: numel(Y) * (inputs - 1)
    "add broadcast": (("Add", (1, 3, 4, 4), {"b": _w(3, 1, 1)}), {}, 48),
    "sum of three": (("Sum", (2, 5), {"b": _w(2, 5), "c": _w(5)}), {}, 2 * 10),
    "relu": (("Relu", (2, 3, 4), {}), {}, 24),
    "sigmoid": (("Sigmoid", (2, 3, 4), {}), {}, 24),
    "batchnorm": (("BatchNormalization", (1, 3, 4, 4), {"s": _w(3), "b": _w(3), "m": _w(3), "v": _w(3)}), {}, 48),
    "layernorm": (("LayerNormalization", (2, 4, 8), {"s": _w(8), "b": _w(8)}), dict(axis=-1), 4 * 64),
    "softmax": (("Softmax", (2, 10), {}), {}, 3 * 20),
    "lrn": (("LRN", (1, 4, 3, 3), {}), dict(size=3), 36 * 4),
    "reshape": (("Reshape", (2, 3, 4), {"s": np.array([6, 4], np.int64)}), {}, 0),
    "transpose": (("Transpose", (2, 3, 4), {}), dict(perm=[2, 0, 1]), 0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hand_computed_macs(case):
    (op, x_shape, weights), attrs, expected = CASES[case]
    assert _macs(op, x_shape, weights, **attrs) == expected


def _resize(mode):
    f = F
    roi, scales = np.zeros(0, np.float32), np.array([1, 1, 2, 2], np.float32)
    return single_node("Resize", [("x", f, [1, 1, 2, 2])], [("y", f, None)], {"roi": roi, "scales": scales},
                       mode=mode)


@pytest.mark.parametrize("mode,expected", [("nearest", 0), ("linear", 16 * 4), ("cubic", 16 * 16)])
def test_resize_counts_interpolation_taps(mode, expected):
    assert profile(_resize(mode)).node("node").macs == expected


def _conv_transpose_loops(x, w, groups, stride):
    """A direct ConvTranspose (no padding): returns the output and the number of products it made."""
    _, cin, h, wd = x.shape
    _, per_group, k, _ = w.shape
    y = np.zeros((1, per_group * groups, (h - 1) * stride + k, (wd - 1) * stride + k), np.float64)
    products = 0
    for c in range(cin):
        group = c // (cin // groups)
        for m in range(per_group):
            for i in range(h):
                for j in range(wd):
                    patch = x[0, c, i, j] * w[c, m]
                    y[0, group * per_group + m, i * stride:i * stride + k, j * stride:j * stride + k] += patch
                    products += patch.size
    return y, products


def test_conv_transpose_formula_matches_a_direct_implementation():
    from tests.helpers.onnxrt import run

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 4, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    m = single_node("ConvTranspose", [("x", F, [1, 4, 4, 5])], [("y", F, None)], {"w": w}, group=2, strides=[2, 2])
    expected, products = _conv_transpose_loops(x, w, groups=2, stride=2)
    np.testing.assert_allclose(run(m, {"x": x})["y"], expected, rtol=1e-5, atol=1e-5)   # the loop is right
    assert profile(m).node("node").macs == products == 4 * 20 * 3 * 9


def test_unknown_ops_are_listed_not_guessed():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Mystery", ["r"], ["y"], name="odd", domain="com.example")]
    m = model(nodes, [("x", F, [1, 4])], [("y", F, [1, 4])])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    p = profile(m)
    assert p.node("relu").macs == 4 and p.node("odd").macs is None
    assert p.uncounted == {"Mystery": 1} and p.total_macs == 4
    assert "MACs not counted (no formula or unknown shape): Mystery (1 nodes)" in p.summary_lines()


def test_every_documented_family_has_a_formula():
    for op in ("Conv", "ConvTranspose", "Gemm", "MatMul", "MaxPool", "AveragePool", "GlobalAveragePool", "Add",
               "Mul", "Relu", "Clip", "HardSwish", "BatchNormalization", "LayerNormalization",
               "InstanceNormalization", "Softmax", "Resize", "Concat"):
        assert op in supported_ops()
