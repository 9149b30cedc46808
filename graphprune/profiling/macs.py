"""Multiply-accumulate counts per node, one documented formula per op family.

One **MAC** is one multiply followed by one add into an accumulator. Ops that are not
multiply-adds are counted at one MAC per elementary arithmetic operation or comparison, so
that a whole model's count stays a single, comparable number. ``numel(T)`` is the element
count of tensor ``T``; X is the first input, Y the first output, W the weight.

=====================================  =========================================================
op                                      MACs
=====================================  =========================================================
Conv (W: M x C/g x k1..kn)              numel(Y) * C/g * k1*..*kn   (+ numel(Y) with a bias)
ConvTranspose (W: C x M/g x k1..kn)     numel(X) * M/g * k1*..*kn   (+ numel(Y) with a bias):
                                        every input element meets M/g*k weights
Gemm (Y: M x N, inner size K)           numel(Y) * K                (+ numel(Y) with C)
MatMul (A: ... x K)                     numel(Y) * K
MaxPool / AveragePool / LpPool          numel(Y) * k1*..*kn  (one compare or add per window tap)
GlobalAverage/Max/LpPool, Reduce*,      numel(X)  (every input element is visited once)
ArgMax/ArgMin, TopK
element-wise with n inputs (Add, Mul,   numel(Y) * (n - 1)   (Sum/Max/Min/Mean of n inputs)
Sub, Div, Pow, Max, Where, PRelu...)
unary activations and math (Relu,       numel(Y)  (one operation per element; transcendental
Sigmoid, Tanh, Clip, HardSwish, Erf...)  functions are not weighted by their instruction cost)
BatchNormalization (inference)          numel(Y)  (a per-channel scale and shift: one MAC)
Instance/Layer/Group/MVN normalization  4 * numel(Y)  (mean, variance, normalize, affine)
Softmax / LogSoftmax                    3 * numel(Y)  (exp, accumulate, scale)
LRN (size s)                            numel(Y) * (s + 1)
Resize / Upsample                       nearest: 0; linear: numel(Y) * 2^d; cubic: numel(Y) * 4^d
                                        (d = number of axes whose size changes)
data movement (Reshape, Transpose,      0
Concat, Slice, Gather, Pad, Cast...)
=====================================  =========================================================

An op without a formula yields ``None``: the profile lists it as *not counted* instead of
guessing. Adding an op is one registration below.
"""
from __future__ import annotations

from collections.abc import Callable

import onnx

from ..graph import get_attr
from .tensors import TensorInfo

Infos = dict[str, TensorInfo]
MacRule = Callable[[onnx.NodeProto, Infos], int]

_RULES: dict[str, MacRule] = {}


def mac_rule(*op_types: str):
    """Register a MAC formula for ``op_types`` (default ONNX domain)."""
    def decorate(fn: MacRule) -> MacRule:
        for op in op_types:
            _RULES[op] = fn
        return fn
    return decorate


def supported_ops() -> frozenset[str]:
    return frozenset(_RULES)


def node_macs(node: onnx.NodeProto, infos: Infos) -> int | None:
    """MACs of one node, or None when its op has no formula (or a shape is unknown)."""
    if node.domain not in ("", "ai.onnx"):
        return None
    rule = _RULES.get(node.op_type)
    if rule is None:
        return None
    try:
        return int(rule(node, infos))
    except KeyError:  # a tensor without a known shape
        return None


def _numel(infos: Infos, name: str) -> int:
    return infos[name].numel


def _shape(infos: Infos, name: str) -> tuple[int, ...]:
    return infos[name].shape


def _has(node: onnx.NodeProto, index: int) -> bool:
    return len(node.input) > index and bool(node.input[index])


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _bias(node: onnx.NodeProto, infos: Infos, index: int) -> int:
    return _numel(infos, node.output[0]) if _has(node, index) else 0


@mac_rule("Conv")
def _conv(node, infos):
    w = _shape(infos, node.input[1])
    return _numel(infos, node.output[0]) * _prod(w[1:]) + _bias(node, infos, 2)


@mac_rule("ConvTranspose")
def _conv_transpose(node, infos):
    w = _shape(infos, node.input[1])
    return _numel(infos, node.input[0]) * _prod(w[1:]) + _bias(node, infos, 2)


@mac_rule("Gemm")
def _gemm(node, infos):
    a = _shape(infos, node.input[0])
    k = a[0] if get_attr(node, "transA", 0) else a[1]
    return _numel(infos, node.output[0]) * k + _bias(node, infos, 2)


@mac_rule("MatMul", "MatMulInteger")
def _matmul(node, infos):
    a = _shape(infos, node.input[0])
    return _numel(infos, node.output[0]) * a[-1]


@mac_rule("MaxPool", "AveragePool", "LpPool")
def _pool(node, infos):
    return _numel(infos, node.output[0]) * _prod(get_attr(node, "kernel_shape", []))


@mac_rule("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "ReduceMean", "ReduceSum", "ReduceMax",
          "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum",
          "ReduceLogSumExp", "ArgMax", "ArgMin", "TopK")
def _visit_input(node, infos):
    return _numel(infos, node.input[0])


@mac_rule("Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "PRelu", "Where",
          "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor", "BitShift",
          "BitwiseAnd", "BitwiseOr", "BitwiseXor")
def _elementwise(node, infos):
    inputs = sum(1 for n in node.input if n)
    return _numel(infos, node.output[0]) * max(1, inputs - 1)


@mac_rule("Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Clip", "Elu", "Selu", "Celu",
          "Softplus", "Softsign", "ThresholdedRelu", "Gelu", "Mish", "Exp", "Log", "Sqrt", "Reciprocal", "Neg",
          "Abs", "Erf", "Floor", "Ceil", "Round", "Sign", "Not", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan",
          "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "IsNaN", "IsInf", "BitwiseNot", "Shrink",
          "BatchNormalization")
def _per_element(node, infos):
    return _numel(infos, node.output[0])


@mac_rule("InstanceNormalization", "LayerNormalization", "GroupNormalization", "MeanVarianceNormalization")
def _normalization(node, infos):
    return 4 * _numel(infos, node.output[0])


@mac_rule("Softmax", "LogSoftmax")
def _softmax(node, infos):
    return 3 * _numel(infos, node.output[0])


@mac_rule("LRN")
def _lrn(node, infos):
    return _numel(infos, node.output[0]) * (int(get_attr(node, "size", 1)) + 1)


@mac_rule("Resize", "Upsample")
def _resize(node, infos):
    mode = get_attr(node, "mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode == "nearest":
        return 0
    x, y = _shape(infos, node.input[0]), _shape(infos, node.output[0])
    changed = sum(1 for a, b in zip(x, y) if a != b)
    taps = 4 if mode == "cubic" else 2
    return _numel(infos, node.output[0]) * taps ** changed


@mac_rule("Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Gather",
          "GatherElements", "GatherND", "ScatterElements", "ScatterND", "Pad", "Identity", "Shape", "Size", "Cast",
          "CastLike", "Expand", "Tile", "DepthToSpace", "SpaceToDepth", "Constant", "ConstantOfShape", "Dropout",
          "Range", "NonZero", "OneHot", "Trilu", "EyeLike", "Compress", "ReverseSequence")
def _data_movement(node, infos):
    return 0
