"""Sandwich models for the rule tests: ``x → Conv(3→C) [→ BN → Relu] → OP → Conv(C'→D) → y``.

Every builder returns a :class:`Case`: the model, what the analysis must find for the groups it
names (hand-computed slot count, or the exact barrier reason of a group that must block), what
pruning at ratio 0.5 must keep (initializer axis sizes) and checks of the attributes and
constants that must follow the kept channels. The arithmetic is in the comments next to each
expectation. ``C = 8`` and a 3×8×8 input unless a builder says otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper

from graphprune.graph import get_attr
from models.builder import GraphBuilder

INT_MAX = 2**63 - 1


# --------------------------------------------------------------------------- expectations
@dataclass(frozen=True)
class Expect:
    """What the group holding ``(weight, axis)`` must look like."""

    weight: str
    axis: int = 0
    slots: int | None = None      # prunable with this many slots
    blocked: str | None = None    # blocked, with this exact reason among its barriers
    kept: dict = field(default_factory=dict)  # {(initializer, axis): size after pruning at 0.5}


class Pruned:
    """The model before (normalized) and after pruning at 0.5, with readers for the checks."""

    def __init__(self, original: onnx.ModelProto, pruned: onnx.ModelProto):
        self.original, self.pruned = original, pruned

    @staticmethod
    def _init(model, name) -> np.ndarray:
        return next(onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.name == name)

    def node(self, name: str) -> onnx.NodeProto:
        return next(n for n in self.pruned.graph.node if n.name == name)

    def attr(self, node: str, name: str):
        return get_attr(self.node(node), name)

    def const_input(self, node: str, index: int) -> list:
        return self._init(self.pruned, self.node(node).input[index]).reshape(-1).tolist()

    def kept_positions(self, initializer: str, axis: int) -> list[int]:
        """Original positions of ``initializer`` along ``axis`` that survived (other axes unpruned)."""
        before = np.moveaxis(self._init(self.original, initializer), axis, 0)
        after = np.moveaxis(self._init(self.pruned, initializer), axis, 0)
        before = before.reshape(before.shape[0], -1)
        out = []
        for row in after.reshape(after.shape[0], -1):
            (match,) = np.nonzero((before == row).all(axis=1))
            assert match.size == 1, f"{initializer}: a kept slice matches {match.size} original slices"
            out.append(int(match[0]))
        return out


@dataclass
class Case:
    model: onnx.ModelProto
    expects: list[Expect]
    checks: list[Callable[[Pruned], None]]


class Sandwich:
    """A GraphBuilder plus the expectations of the case being built."""

    def __init__(self, name: str, *, opset: int = 17, batch=1, hw: int = 8, channels_last: bool = False):
        self.b = GraphBuilder(name, opset=opset, batch=batch)
        self.x = self.b.input("x", [hw, hw, 3] if channels_last else [3, hw, hw])
        self.expects: list[Expect] = []
        self.checks: list[Callable[[Pruned], None]] = []

    @property
    def last(self) -> str:
        """Name of the last node added."""
        return self.b.nodes[-1].name

    def conv(self, x: str, cin: int, cout: int, k: int = 3, **kw) -> tuple[str, str]:
        y = self.b.conv(x, cin, cout, k, **kw)
        return y, self.b.nodes[-1].input[1]

    def head(self, c: int = 8, *, bn: bool = True, act: str | None = "relu", x: str | None = None,
             cin: int = 3, stride: int = 1) -> tuple[str, str]:
        """Conv(cin→c) [→ BN] [→ act]; returns (output, conv weight)."""
        y, w = self.conv(self.x if x is None else x, cin, c, 3, stride=stride)
        if bn:
            y = self.b.batchnorm(y, c)
        return self.b.act(y, act), w

    def tail(self, x: str, cin: int, out: str = "y", d: int = 4, k: int = 1) -> str:
        """Conv(cin→d) as graph output ``out``; returns its weight."""
        y, w = self.conv(x, cin, d, k)
        self.b.output(y, out)
        return w

    def expect(self, weight: str, slots: int | None = None, blocked: str | None = None, axis: int = 0,
               **kept) -> None:
        """The group of ``(weight, axis)``; ``kept`` items are ``label=(initializer, axis, size)``."""
        self.expects.append(Expect(weight, axis, slots, blocked, {(t, a): n for t, a, n in kept.values()}))

    def check(self, fn: Callable[[Pruned], None]) -> None:
        self.checks.append(fn)

    def check_attr(self, node: str, name: str, value) -> None:
        def fn(p: Pruned):
            got = p.attr(node, name)
            assert got == value, f"{node}.{name} = {got}, expected {value}"
        self.check(fn)

    def check_const(self, node: str, index: int, value: list) -> None:
        def fn(p: Pruned):
            got = p.const_input(node, index)
            assert got == value, f"{node} input {index} = {got}, expected {value}"
        self.check(fn)

    def case(self) -> Case:
        """The model with inferred value_info for every intermediate (as exporters write it), so
        the checker's strict inference also verifies the declared shapes surgery rewrites."""
        model = self.b.finish()
        typed = onnx.shape_inference.infer_shapes(model)
        model.graph.value_info.extend(typed.graph.value_info)
        return Case(model, self.expects, self.checks)

    def pre(self) -> str:
        """A prunable stage in front of a blocking op: Conv(3→6) → BN → Relu (6 slots, 3 kept)."""
        h, w = self.head(6)
        self.expect(w, slots=6, w=(w, 0, 3))
        return h


# --------------------------------------------------------------------------- Conv / ConvTranspose
def conv_dense() -> Case:
    s = Sandwich("conv_dense")
    h, hw = s.head(8)
    m, mw = s.conv(h, 8, 6)
    tw = s.tail(s.b.act(m, "relu"), 6)
    s.expect(hw, 8, head=(hw, 0, 4), mid=(mw, 1, 4))
    s.expect(mw, 6, mid=(mw, 0, 3), tail=(tw, 1, 3))
    return s.case()


def conv_depthwise(mult: int) -> Case:
    """Input channel c feeds outputs c·m .. c·m+m-1: one slot per input channel; group = kept."""
    s = Sandwich(f"conv_dw{mult}")
    h, hw = s.head(8)
    d, dw = s.conv(h, 8, 8 * mult, groups=8, bias=True)
    node, db = s.last, s.b.nodes[-1].input[2]
    tw = s.tail(s.b.act(d, "relu"), 8 * mult)
    s.expect(hw, 8, head=(hw, 0, 4), dw=(dw, 0, 4 * mult), dw_in=(dw, 1, 1), bias=(db, 0, 4 * mult),
             tail=(tw, 1, 4 * mult))
    s.check_attr(node, "group", 4)
    s.check(lambda p: _blocks_follow(p, (hw, 0), (tw, 1), mult))
    return s.case()


def _same_in_every_group(p: Pruned, init: str, axis: int, groups: int, width: int) -> None:
    kept = p.kept_positions(init, axis)
    per_group = [sorted(k - g * width for k in kept if g * width <= k < (g + 1) * width) for g in range(groups)]
    assert all(pg == per_group[0] for pg in per_group), f"{init}: groups keep different positions {per_group}"


def conv_grouped() -> Case:
    """group=2, 8→12, weight [12, 4]: input c and c+4 feed in-group index c mod 4 (4 slots);
    output j and j+6 are tied the same way (6 slots), so every group keeps the same count."""
    s = Sandwich("conv_grouped")
    h, hw = s.head(8)
    g, gw = s.conv(h, 8, 12, groups=2, bias=True)
    node, gb = s.last, s.b.nodes[-1].input[2]
    tw = s.tail(s.b.act(g, "relu"), 12)
    s.expect(hw, 4, head=(hw, 0, 4), g_in=(gw, 1, 2))
    s.expect(gw, 6, g_out=(gw, 0, 6), g_bias=(gb, 0, 6), tail=(tw, 1, 6))
    s.check_attr(node, "group", 2)
    s.check(lambda p: _same_in_every_group(p, hw, 0, 2, 4))
    s.check(lambda p: _same_in_every_group(p, tw, 1, 2, 6))
    return s.case()


def conv_transpose(kind: str) -> Case:
    """ConvTranspose weight [C_in, C_out/g, k, k]."""
    s = Sandwich(f"convT_{kind}")
    h, hw = s.head(8)
    groups, cout = {"dense": (1, 6), "grouped": (2, 12), "depthwise": (8, 8), "depthwise2": (8, 16)}[kind]
    t = s.b.conv_transpose(h, 8, cout, groups=groups)
    node = s.b.nodes[-1]
    tw_, tb = node.input[1], node.input[2]
    w = s.tail(s.b.act(t, "relu"), cout)
    if kind == "dense":  # 8 input slots; 6 output slots
        s.expect(hw, 8, head=(hw, 0, 4), ct_in=(tw_, 0, 4))
        s.expect(tb, 6, ct_out=(tw_, 1, 3), bias=(tb, 0, 3), tail=(w, 1, 3))
    elif kind == "grouped":  # inputs c, c+4 tied (4 slots); outputs j, j+6 tied (6 slots)
        s.expect(hw, 4, head=(hw, 0, 4), ct_in=(tw_, 0, 4))
        s.expect(tb, 6, ct_out=(tw_, 1, 3), bias=(tb, 0, 6), tail=(w, 1, 6))
        s.check_attr(node.name, "group", 2)
        s.check(lambda p: _same_in_every_group(p, hw, 0, 2, 4))
        s.check(lambda p: _same_in_every_group(p, w, 1, 2, 6))
    else:  # one input channel per group -> cout/8 output channels: 8 slots, group = kept
        m = cout // 8
        s.expect(hw, 8, head=(hw, 0, 4), ct_in=(tw_, 0, 4), ct_out=(tw_, 1, m), bias=(tb, 0, 4 * m),
                 tail=(w, 1, 4 * m))
        s.check_attr(node.name, "group", 4)
        s.check(lambda p: _blocks_follow(p, (hw, 0), (w, 1), m))
    return s.case()


def _blocks_follow(p: Pruned, small: tuple, big: tuple, width: int) -> None:
    """Big-side positions kept = width consecutive positions per kept small-side position."""
    ks = p.kept_positions(*small)
    assert p.kept_positions(*big) == [c * width + j for c in ks for j in range(width)]


# --------------------------------------------------------------------------- normalizations, PRelu
def batchnorm() -> Case:
    s = Sandwich("bn")
    h, hw = s.head(8, bn=False, act=None)
    y = s.b.batchnorm(h, 8)
    params = list(s.b.nodes[-1].input[1:])
    tw = s.tail(y, 8)
    s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 4), **{f"p{i}": (p, 0, 4) for i, p in enumerate(params)})
    return s.case()


def instancenorm() -> Case:
    s = Sandwich("in")
    h, hw = s.head(8, bn=False, act=None)
    y = s.b.instance_norm(h, 8)
    scale, bias = s.b.nodes[-1].input[1:]
    tw = s.tail(s.b.act(y, "relu"), 8)
    s.expect(hw, 8, head=(hw, 0, 4), scale=(scale, 0, 4), bias=(bias, 0, 4), tail=(tw, 1, 4))
    return s.case()


def prelu() -> Case:
    s = Sandwich("prelu")
    h, hw = s.head(8, act=None)
    y = s.b.prelu(h, 8)
    slope = s.b.nodes[-1].input[1]
    tw = s.tail(y, 8)
    s.expect(hw, 8, head=(hw, 0, 4), slope=(slope, 0, 4), tail=(tw, 1, 4))
    return s.case()


# --------------------------------------------------------------------------- Gemm / MatMul
def _gemm(s: Sandwich, x: str, fin: int, fout: int, ta: int = 0, tb: int = 1, bias: bool = True):
    b = s.b
    name = b.fresh("Gemm")
    w = b.normal(f"{name}.weight", (fout, fin) if tb else (fin, fout), math.sqrt(1.0 / fin))
    c = b.normal(f"{name}.bias", (fout,), 0.1) if bias else None
    y = b.node("Gemm", [x, w] + ([c] if c else []), name=name, transA=ta, transB=tb)
    return y, w, c


def _pooled(s: Sandwich, c: int = 8) -> tuple[str, str]:
    """Conv(3→c) → BN → Relu → GlobalAveragePool → Flatten: [N, c] features."""
    h, hw = s.head(c)
    return s.b.flatten(s.b.node("GlobalAveragePool", [h])), hw


def gemm(ta: int, tb: int, bias: bool) -> Case:
    """8 input features (head slots 8, weight k-axis 8→4); 6 outputs (3 kept)."""
    s = Sandwich(f"gemm_{ta}{tb}{int(bias)}")
    f, hw = _pooled(s)
    if ta:
        f = s.b.transpose(f, [1, 0])  # A is [K, M]
    y, w, c = _gemm(s, f, 8, 6, ta, tb, bias)
    y2, w2, _ = _gemm(s, s.b.act(y, "relu"), 6, 4)
    s.b.output(y2, "y")
    s.expect(hw, 8, head=(hw, 0, 4), w_k=(w, 1 if tb else 0, 4))
    out = dict(w_n=(w, 0 if tb else 1, 3), next=(w2, 1, 3))
    if bias:
        out["bias"] = (c, 0, 3)
    s.expect(w, 6, axis=0 if tb else 1, **out)
    return s.case()


def _matmul(s: Sandwich, a: str, shape: tuple, left: bool = False) -> tuple[str, str]:
    w = s.b.normal(s.b.fresh("W"), shape, math.sqrt(1.0 / shape[1 if left else 0]))
    return s.b.node("MatMul", [w, a] if left else [a, w]), w


def matmul_right() -> Case:
    s = Sandwich("matmul_right")
    f, hw = _pooled(s)
    y, w = _matmul(s, f, (8, 6))
    bias = s.b.normal("mm.bias", (6,), 0.1)
    y2, w2, _ = _gemm(s, s.b.act(s.b.add(y, bias), "relu"), 6, 4)
    s.b.output(y2, "y")
    s.expect(hw, 8, head=(hw, 0, 4), w_k=(w, 0, 4))
    s.expect(w, 6, axis=1, w_n=(w, 1, 3), bias=(bias, 0, 3), next=(w2, 1, 3))
    return s.case()


def matmul_left() -> Case:
    """W[6, 8] @ X[N, 8, 64]: channels are X's row axis; Reshape constants follow."""
    s = Sandwich("matmul_left")
    h, hw = s.head(8)
    r = s.b.reshape(h, [0, 8, -1])
    r1 = s.last
    y, w = _matmul(s, r, (6, 8), left=True)
    back = s.b.reshape(y, [0, 6, 8, 8])
    r2 = s.last
    tw = s.tail(s.b.act(back, "relu"), 6)
    s.expect(hw, 8, head=(hw, 0, 4), w_k=(w, 1, 4))
    s.expect(w, 6, w_n=(w, 0, 3), tail=(tw, 1, 3))
    s.check_const(r1, 1, [0, 4, -1])
    s.check_const(r2, 1, [0, 3, 8, 8])
    return s.case()


def matmul_activations() -> Case:
    """Aᵀ·B contracts the channel axes of two convs: one group of 8 slots holding both convs."""
    s = Sandwich("matmul_act")
    a, aw = s.head(8)
    b, bw = s.head(8, act="sigmoid")
    at = s.b.transpose(s.b.reshape(a, [0, 8, 64]), [0, 2, 1])
    ra = s.b.nodes[-2].name
    bb = s.b.reshape(b, [0, 8, 64])
    rb = s.last
    s.b.output(s.b.node("MatMul", [at, bb]), "y")
    s.expect(aw, 8, a=(aw, 0, 4), b=(bw, 0, 4))
    s.check_const(ra, 1, [0, 4, 64])
    s.check_const(rb, 1, [0, 4, 64])
    s.check(lambda p: _equal_positions(p, (aw, 0), (bw, 0)))
    return s.case()


def _equal_positions(p: Pruned, *spaces) -> None:
    kept = [p.kept_positions(t, a) for t, a in spaces]
    assert all(k == kept[0] for k in kept), f"{spaces} keep different positions: {kept}"


# --------------------------------------------------------------------------- elementwise
#: (op, opset, attrs): attribute values, or "inputs" for Clip bounds given as inputs
UNARY = [
    ("Relu", 17, {}), ("LeakyRelu", 17, {"alpha": 0.1}), ("Sigmoid", 17, {}),
    ("HardSigmoid", 17, {"alpha": 0.2, "beta": 0.5}), ("HardSwish", 17, {}), ("Tanh", 17, {}),
    ("Clip", 9, {"min": -0.5, "max": 1.5}), ("Clip", 13, "inputs"), ("Clip", 11, "min-only"),
    ("Elu", 17, {"alpha": 0.7}), ("Selu", 17, {}), ("Softplus", 17, {}), ("Mish", 18, {}),
    ("Gelu", 20, {}), ("Erf", 17, {}), ("Sqrt", 17, {}), ("Identity", 17, {}),
    ("Dropout", 9, {"ratio": 0.3}), ("Dropout", 13, "inputs"), ("Cast", 17, {}),
]


def unary(op: str, opset: int, attrs) -> Case:
    s = Sandwich(f"{op}{opset}", opset=opset)
    h, hw = s.head(8, act="relu" if op == "Sqrt" else None)  # Sqrt on non-negative values
    if attrs == "inputs":
        bounds = [s.b.scalar(-0.5), s.b.scalar(1.5)] if op == "Clip" else [s.b.scalar(0.3)]
        y = s.b.node(op, [h, *bounds])
    elif attrs == "min-only":
        y = s.b.node(op, [h, s.b.scalar(-0.5)])
    elif op == "Cast":
        y = s.b.cast(s.b.cast(h, TensorProto.DOUBLE), TensorProto.FLOAT)
    else:
        y = s.b.node(op, [h], **attrs)
    tw = s.tail(y, 8)
    s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 4))
    return s.case()


BINARY = ("Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Sum")


def binary_const(op: str, const_first: bool) -> Case:
    """OP(x, k) or OP(k, x) with k [C,1,1]: k follows the channels. x in (0,1) keeps Div/Pow finite."""
    s = Sandwich(f"{op}_const")
    h, hw = s.head(8, act="sigmoid")
    k = s.b.channel_const(8, 0.5, 1.5)
    y = s.b.node(op, [k, h] if const_first else [h, k])
    tw = s.tail(y, 8)
    s.expect(hw, 8, head=(hw, 0, 4), k=(k, 0, 4), tail=(tw, 1, 4))
    return s.case()


def binary_activations(op: str) -> Case:
    """OP(relu(conv a), sigmoid(conv b)): both convs' output channels are one group of 8 slots."""
    s = Sandwich(f"{op}_act")
    a, aw = s.head(8)
    b, bw = s.head(8, act="sigmoid")
    tw = s.tail(s.b.node(op, [a, b]), 8)
    s.expect(aw, 8, a=(aw, 0, 4), b=(bw, 0, 4), tail=(tw, 1, 4))
    s.check(lambda p: _equal_positions(p, (aw, 0), (bw, 0), (tw, 1)))
    return s.case()


def residual() -> Case:
    """h + BN(Conv(h)): the inner conv's input and output axes are both in h's group."""
    s = Sandwich("residual")
    h, hw = s.head(8)
    m, mw = s.conv(h, 8, 8)
    tw = s.tail(s.b.act(s.b.add(h, s.b.batchnorm(m, 8)), "relu"), 8)
    s.expect(hw, 8, head=(hw, 0, 4), mid_out=(mw, 0, 4), mid_in=(mw, 1, 4), tail=(tw, 1, 4))
    return s.case()


def silu() -> Case:
    s = Sandwich("silu")
    h, hw = s.head(8, act="silu")
    tw = s.tail(h, 8)
    s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 4))
    return s.case()


def squeeze_excite() -> Case:
    """x * sigmoid(Conv(relu(Conv(GAP(x))))) with gate [N,C,1,1]; the squeeze width (4) is its own group."""
    s = Sandwich("se")
    h, hw = s.head(8)
    g = s.b.conv(s.b.node("GlobalAveragePool", [h]), 8, 4, 1, bias=True)
    rw, rb = s.b.nodes[-1].input[1:]
    g = s.b.conv(s.b.act(g, "relu"), 4, 8, 1, bias=True)
    ew, eb = s.b.nodes[-1].input[1:]
    tw = s.tail(s.b.mul(h, s.b.act(g, "sigmoid")), 8)
    s.expect(hw, 8, head=(hw, 0, 4), r_in=(rw, 1, 4), e_out=(ew, 0, 4), e_bias=(eb, 0, 4), tail=(tw, 1, 4))
    s.expect(rw, 4, r_out=(rw, 0, 2), r_bias=(rb, 0, 2), e_in=(ew, 1, 2))
    return s.case()


# --------------------------------------------------------------------------- Concat / Split / Slice / Gather
def concat_channels() -> Case:
    """[a(8) ; b(6)] on axis 1: one group of 14 slots; the tail keeps a's kept and 8 + b's kept."""
    s = Sandwich("concat_c")
    a, aw = s.head(8)
    b, bw = s.head(6)
    tw = s.tail(s.b.concat([a, b], axis=1), 14)
    s.expect(aw, 14, tail=(tw, 1, 7))

    def fn(p: Pruned):
        ka, kb = p.kept_positions(aw, 0), p.kept_positions(bw, 0)
        assert len(ka) + len(kb) == 7 and ka and kb
        assert p.kept_positions(tw, 1) == ka + [8 + k for k in kb]
    s.check(fn)
    return s.case()


def concat_spatial() -> Case:
    """Concat on H: channels of both inputs are the same channels (8 slots)."""
    s = Sandwich("concat_h")
    a, aw = s.head(8)
    b, bw = s.head(8)
    tw = s.tail(s.b.concat([a, b], axis=2), 8)
    s.expect(aw, 8, a=(aw, 0, 4), b=(bw, 0, 4), tail=(tw, 1, 4))
    s.check(lambda p: _equal_positions(p, (aw, 0), (bw, 0), (tw, 1)))
    return s.case()


def _parts_follow(p: Pruned, head: str, tails: list[str], bounds: list[tuple[int, int]], sizes: list[int]) -> None:
    """Each part keeps exactly the head's kept positions in its range, renumbered from 0."""
    kept = p.kept_positions(head, 0)
    for tw, (lo, hi), size in zip(tails, bounds, sizes):
        part = [k - lo for k in kept if lo <= k < hi]
        assert p.kept_positions(tw, 1) == part, f"{tw}: kept {p.kept_positions(tw, 1)}, expected {part}"
        assert size == len(part)


def split(form: str) -> Case:
    """Split 8 channels into [3, 5] ([4, 4] for the equal forms): 8 slots; sizes follow the kept counts."""
    opset, sizes = {"attr": (11, [3, 5]), "input": (13, [3, 5]), "num_outputs": (18, [4, 4]),
                    "default": (13, [4, 4])}[form]
    s = Sandwich(f"split_{form}", opset=opset)
    h, hw = s.head(8)
    if form == "default":
        parts = s.b.node("Split", [h], n_out=2, axis=1)
    else:
        parts = s.b.split(h, sizes)
    node = s.last
    tails = [s.tail(pt, n, f"y{i}") for i, (pt, n) in enumerate(zip(parts, sizes))]
    s.expect(hw, 8, head=(hw, 0, 4))
    bounds = [(0, sizes[0]), (sizes[0], 8)]

    def fn(p: Pruned):
        got = p.attr(node, "split") if opset < 13 else p.const_input(node, 1)
        assert sum(got) == 4 and p.attr(node, "num_outputs") is None
        _parts_follow(p, hw, tails, bounds, got)
    s.check(fn)
    return s.case()


def _sliced(kept: list[int], lo: int, hi: int) -> tuple[int, int, list[int]]:
    """New (start, end) of a slice [lo, hi) after pruning, and the kept positions inside, renumbered."""
    start = sum(k < lo for k in kept)
    inside = [k - lo for k in kept if lo <= k < hi]
    return start, start + len(inside), inside


def slice_channels(form: str) -> Case:
    """Slice channels [lo, hi) of 8: 8 slots; starts/ends become (#kept < lo, + #kept in range)."""
    opset, start, end, lo, hi = {"attr9": (9, 2, 7, 2, 7), "inputs": (13, 2, 7, 2, 7),
                                 "neg_intmax": (13, -6, INT_MAX, 2, 8), "neg_end": (13, 1, -1, 1, 7)}[form]
    s = Sandwich(f"slice_{form}", opset=opset)
    h, hw = s.head(8)
    y = s.b.slice(h, start, end)
    node = s.last
    tw = s.tail(y, hi - lo)
    s.expect(hw, 8, head=(hw, 0, 4))

    def fn(p: Pruned):
        start, end, inside = _sliced(p.kept_positions(hw, 0), lo, hi)
        got = (p.attr(node, "starts")[0], p.attr(node, "ends")[0]) if opset < 10 else (
            p.const_input(node, 1)[0], p.const_input(node, 2)[0])
        assert got == (start, end), f"Slice bounds {got}"
        assert p.kept_positions(tw, 1) == inside
    s.check(fn)
    return s.case()


def gather_split() -> Case:
    """Gather [0,1,2,3] and [6,4,5] on axis 1 (channel 7 unused): 8 slots; indices renumbered."""
    s = Sandwich("gather")
    h, hw = s.head(8)
    index_sets = ([0, 1, 2, 3], [6, 4, 5])
    nodes, tails = [], []
    for i, idx in enumerate(index_sets):
        y = s.b.node("Gather", [h, s.b.ints(idx)], axis=1)
        nodes.append(s.last)
        tails.append(s.tail(y, len(idx), f"y{i}"))
    s.expect(hw, 8, head=(hw, 0, 4))

    def fn(p: Pruned):
        kept = p.kept_positions(hw, 0)
        for node, tw, idx in zip(nodes, tails, index_sets):
            rows = [i for i, c in enumerate(idx) if c in kept]
            assert p.kept_positions(tw, 1) == rows
            assert p.const_input(node, 1) == [kept.index(idx[i]) for i in rows]
    s.check(fn)
    return s.case()


# --------------------------------------------------------------------------- pooling and reductions
POOLS = ("MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool")


def pool(op: str) -> Case:
    s = Sandwich(op)
    h, hw = s.head(8)
    window = {} if op.startswith("Global") else {"kernel_shape": [2, 2], "strides": [2, 2]}
    tw = s.tail(s.b.node(op, [h], **window), 8)
    s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 4))
    return s.case()


def reduce(op: str, keepdims: int, form: str) -> Case:
    """Reduce over H, W: channels pass (8 slots). keepdims=0 feeds a Gemm, 1 a 1×1 Conv."""
    opset = 18 if form == "input" else (11 if op == "ReduceSum" else 13)
    s = Sandwich(f"{op}{keepdims}{form}", opset=opset)
    h, hw = s.head(8)
    axes = [-2, -1] if op == "ReduceMax" else [2, 3]
    r = s.b.reduce(op, h, axes, bool(keepdims))
    if keepdims:
        tw = s.tail(r, 8)
    else:
        y, tw, _ = _gemm(s, r, 8, 4)
        s.b.output(y, "y")
    s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 4))
    return s.case()


# --------------------------------------------------------------------------- Resize / Pad
def resize(form: str) -> Case:
    opset = {"upsample9": 9, "scales11": 11, "scales13": 13, "linear13": 13, "sizes11": 11, "sizes13": 13,
             "sizes18": 18}[form]
    s = Sandwich(f"resize_{form}", opset=opset)
    h, hw = s.head(8)
    if form in ("sizes11", "sizes13"):  # full sizes [N, C, H, W]: entry 1 names the channels and must follow
        roi, scales = (s.b.const(np.zeros(0)), s.b.const(np.zeros(0))) if opset == 11 else ("", "")
        y = s.b.node("Resize", [h, roi, scales, s.b.ints([1, 8, 16, 16])], mode="nearest")
        s.check_const(s.last, 3, [1, 4, 16, 16])
    else:
        y = s.b.resize(h, 2, "linear" if form == "linear13" else "nearest",
                       sizes_hw=[16, 16] if form == "sizes18" else None)
    tw = s.tail(y, 8)
    s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 4))
    return s.case()


def pad(form: str) -> Case:
    opset = {"attr9": 9, "input13": 13, "axes18": 18, "reflect13": 13, "crop13": 13}[form]
    s = Sandwich(f"pad_{form}", opset=opset)
    h, hw = s.head(8)
    pads = [-1, 0, -2, 1] if form == "crop13" else [1, 0, 1, 2]
    y = s.b.pad(h, pads, mode="reflect" if form == "reflect13" else "constant", value=0.5)
    tw = s.tail(y, 8)
    s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 4))
    return s.case()


# --------------------------------------------------------------------------- Flatten / Reshape / layout
def flatten_into(form: str) -> Case:
    """8 channels of 4×4 flattened to 128 features: channel c ↦ features 16c .. 16c+15 (8 slots, 64 kept)."""
    batch = "N" if form in ("computed", "flatten_N") else 1
    s = Sandwich(f"flat_{form}", batch=batch)
    h, hw = s.head(8, stride=2)
    b = s.b
    if form.startswith("flatten"):
        f = b.flatten(h)
    elif form == "reshape_const":
        f = b.reshape(h, [1, 128])
        s.check_const(s.last, 1, [1, 64])
    elif form == "reshape_zero":
        f = b.reshape(h, [0, -1])
    else:  # Concat(Shape(h)[0], -1) with a symbolic batch
        n = b.node("Gather", [b.node("Shape", [h]), b.ints([0])], axis=0)
        f = b.node("Reshape", [h, b.concat([n, b.ints([-1])], axis=0)])
    if form == "reshape_zero":
        y, w = _matmul(s, f, (128, 4))
        feature_axis = 0
    else:
        y, w, _ = _gemm(s, f, 128, 4)
        feature_axis = 1
    b.output(y, "y")
    s.expect(hw, 8, head=(hw, 0, 4), w_k=(w, feature_axis, 64))
    s.check(lambda p: _blocks_follow(p, (hw, 0), (w, feature_axis), 16))
    return s.case()


def reshape_3d(form: str, opset: int = 17) -> Case:
    """[N,8,8,8] → [N,8,64] → Softmax over the 64 positions → [N,8,8,8]: 8 slots.

    The channel entry of each target shape follows: a literal is rewritten, ``0`` and ``-1``
    adapt by themselves, ``Shape(h)[1]`` follows h at run time.
    """
    s = Sandwich(f"reshape3d_{form}", opset=opset)
    b = s.b
    h, hw = s.head(8)
    shape = {"const": [1, 8, 64], "zero": [0, 0, -1], "minus": [1, -1, 64]}.get(form)
    if shape is None:  # Concat(Shape(h)[0:2], [-1])
        dims = b.node("Slice", [b.node("Shape", [h]), b.ints([0]), b.ints([2])])
        r = b.node("Reshape", [h, b.concat([dims, b.ints([-1])], axis=0)])
    else:
        r = b.reshape(h, shape)
    node = s.last
    back = b.reshape(b.node("Softmax", [r], axis=-1), [0, -1, 8, 8])
    tw = s.tail(back, 8)
    s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 4))
    if shape is not None:
        s.check_const(node, 1, [1, 4, 64] if form == "const" else shape)
    s.check(lambda p: _equal_positions(p, (hw, 0), (tw, 1)))
    return s.case()


def transpose_nhwc() -> Case:
    """NHWC model: Transpose in, Conv, Transpose out, per-channel Mul [8], MatMul W[8,6], back to NCHW."""
    s = Sandwich("nhwc", channels_last=True)
    b = s.b
    h, hw = s.head(8, x=b.transpose(s.x, [0, 3, 1, 2]))
    t = b.transpose(h, [0, 2, 3, 1])
    k = b.uniform("k", (8,), 0.5, 1.5)
    y, w = _matmul(s, b.mul(t, k), (8, 6))
    tw = s.tail(b.transpose(b.act(y, "relu"), [0, 3, 1, 2]), 6)
    s.expect(hw, 8, head=(hw, 0, 4), k=(k, 0, 4), w_k=(w, 0, 4))
    s.expect(w, 6, axis=1, w_n=(w, 1, 3), tail=(tw, 1, 3))
    return s.case()


def squeeze_unsqueeze(opset: int) -> Case:
    """GAP → Squeeze [2,3] → [N,8] → Unsqueeze [2,3] → 1×1 Conv (attributes < 13, inputs ≥ 13)."""
    s = Sandwich(f"squeeze{opset}", opset=opset)
    h, hw = s.head(8)
    y = s.b.unsqueeze(s.b.squeeze(s.b.node("GlobalAveragePool", [h]), [2, 3]), [2, 3])
    tw = s.tail(y, 8)
    s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 4))
    return s.case()


def channel_shuffle() -> Case:
    """[N,8,H,W] → [N,2,4,H,W] → swap → [N,4,2,H,W] → [N,8,H,W]: c and c+4 share a slot (C/g = 4).

    Output channel 2j+g comes from input channel 4g+j, so slot j is input {j, j+4} and output {2j, 2j+1}.
    """
    s = Sandwich("shuffle")
    h, hw = s.head(8)
    r = s.b.reshape(h, [1, 2, 4, 8, 8])
    r1 = s.last
    r = s.b.reshape(s.b.transpose(r, [0, 2, 1, 3, 4]), [1, 8, 8, 8])
    r2 = s.last
    tw = s.tail(r, 8)
    s.expect(hw, 4, head=(hw, 0, 4), tail=(tw, 1, 4))
    s.check_const(r1, 1, [1, 2, 2, 8, 8])
    s.check_const(r2, 1, [1, 4, 8, 8])

    def fn(p: Pruned):
        js = [k for k in p.kept_positions(hw, 0) if k < 4]
        assert p.kept_positions(hw, 0) == js + [j + 4 for j in js]
        assert p.kept_positions(tw, 1) == [c for j in js for c in (2 * j, 2 * j + 1)]
    s.check(fn)
    return s.case()


def depth_space(op: str, mode: str, opset: int = 13) -> Case:
    """4 small-side channels, each tied to block²=4 big-side channels: 4 slots."""
    s = Sandwich(f"{op}{mode}", opset=opset)
    d2s = op == "DepthToSpace"
    h, hw = s.head(16 if d2s else 4)
    y = s.b.node(op, [h], blocksize=2, mode=mode if d2s and opset >= 11 else None)
    tw = s.tail(y, 4 if d2s else 16)
    if d2s:
        s.expect(hw, 4, head=(hw, 0, 8), tail=(tw, 1, 2))
    else:
        s.expect(hw, 4, head=(hw, 0, 2), tail=(tw, 1, 8))
    small, big = (tw, hw) if d2s else (hw, tw)

    def fn(p: Pruned):
        axis_small, axis_big = (1, 0) if d2s else (0, 1)
        ks = p.kept_positions(small, axis_small)
        want = sorted(c * 4 + k if mode == "CRD" else k * 4 + c for c in ks for k in range(4))
        assert p.kept_positions(big, axis_big) == want
    s.check(fn)
    return s.case()


def softmax(op: str, opset: int, axis: int | None, channels_last: bool = False) -> Case:
    """opset ≥ 13 normalizes over ``axis`` only; < 13 over every axis from ``axis`` (default 1) on.

    ``channels_last`` applies it to [N, H, W, C]: then channels are axis 3, mixed by an opset-11
    softmax over axis 2 but not by an opset-13 one.
    """
    s = Sandwich(f"{op}{opset}", opset=opset)
    h, hw = s.head(8, x=s.pre(), cin=6)
    b = s.b
    y = b.node(op, [b.transpose(h, [0, 2, 3, 1]) if channels_last else h], axis=axis)
    node = s.last
    tw = s.tail(b.transpose(y, [0, 3, 1, 2]) if channels_last else y, 8)
    axis = axis if axis is not None else (-1 if opset >= 13 else 1)
    channel = 3 if channels_last else 1
    mixed = {axis % 4} if opset >= 13 else set(range(axis % 4, 4))
    if channel in mixed:
        s.expect(hw, blocked=f"{op} {node} normalizes over axis {channel}")
    else:
        s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 4))
    return s.case()


# --------------------------------------------------------------------------- ops that must block
def blocked(kind: str) -> Case:
    """A prunable Conv(3→6) stage, then Conv(6→8) → OP → tail: the 8-channel group must block."""
    s = Sandwich(f"blocked_{kind}", opset=13)
    b = s.b
    h, hw = s.head(8, x=s.pre(), cin=6)
    cout = 8
    if kind == "reduce_channels":
        y = b.reduce("ReduceMean", h, [1], True)
        why, cout = "ReduceMean {} reduces over axis 1", 1
    elif kind == "lrn":
        y = b.node("LRN", [h], size=3)
        why = "LRN {} normalizes across neighbouring channels"
    elif kind == "pad_channels":
        y = b.node("Pad", [h, b.ints([0, 1, 0, 0, 0, 1, 0, 0])])
        why, cout = "Pad {} pads axis 1", 10
    elif kind == "slice_step2":
        y = b.node("Slice", [h, b.ints([0]), b.ints([8]), b.ints([1]), b.ints([2])])
        why, cout = "Slice {}: step 2 on axis 1 is not supported for pruning", 4
    elif kind == "gather_scalar":
        y = b.node("Gather", [h, b.const(np.int64(2), np.int64)], axis=1)
        why, cout = "Gather {} selects positions of axis 1 with a scalar or multi-D index", 1
    elif kind == "maxpool_indices":
        y, idx = b.node("MaxPool", [h], n_out=2, kernel_shape=[2, 2], strides=[2, 2])
        why = "MaxPool {}: its Indices output encodes channel positions"
    else:  # graph_output
        y = b.node("Identity", [h])
        why = "features is a graph output"
    s.expect(hw, blocked=why.format(s.last))
    if kind == "gather_scalar":
        y = b.unsqueeze(y, [1])
    if kind == "maxpool_indices":
        b.output(idx, "indices")
    if kind == "graph_output":
        b.output(h, "features")
    s.tail(y, cout)
    return s.case()


def foreign_domain() -> Case:
    """com.microsoft.Gelu between two convs: that group blocks naming the node; the first still prunes."""
    s = Sandwich("foreign")
    h, hw = s.head(8, x=s.pre(), cin=6)
    y = s.b.node("Relu", [h])  # becomes com.microsoft.Gelu once the output shapes are typed
    node = s.last
    s.tail(y, 8)
    s.expect(hw, blocked=f"com.microsoft.Gelu node {node}: no rule for this op")
    case = s.case()
    gelu = next(n for n in case.model.graph.node if n.name == node)
    gelu.op_type, gelu.domain = "Gelu", "com.microsoft"
    case.model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return case


def if_node() -> Case:
    """An If whose branches read the conv output: that group blocks; groups before and after still prune."""
    s = Sandwich("if")
    b = s.b
    h, hw = s.head(8, x=s.pre(), cin=6)
    cond = "cond"
    b.inputs.append(helper.make_tensor_value_info(cond, TensorProto.BOOL, []))
    branch_out = helper.make_tensor_value_info("branch", TensorProto.FLOAT, None)
    then_g = helper.make_graph([helper.make_node("Relu", [h], ["branch"])], "then", [], [branch_out])
    else_g = helper.make_graph([helper.make_node("Sigmoid", [h], ["branch"])], "else", [], [branch_out])
    y = b.node("If", [cond], then_branch=then_g, else_branch=else_g)
    node = s.last
    c, cw = s.conv(y, 8, 6)
    tw = s.tail(b.act(c, "relu"), 6)
    s.expect(hw, blocked=f"If node {node}: subgraph ops are barriers")
    s.expect(cw, 6, c=(cw, 0, 3), tail=(tw, 1, 3))
    return s.case()


def shared_weight() -> Case:
    """One weight read by two Convs (x and -x): both outputs are one group; both tails keep the same positions."""
    s = Sandwich("shared")
    b = s.b
    a, w = s.conv(s.x, 3, 8)
    attrs = {a.name: helper.get_attribute_value(a) for a in b.nodes[-1].attribute}
    c = b.node("Conv", [b.node("Neg", [s.x]), w], **attrs)
    t0 = s.tail(b.act(a, "relu"), 8, "y0")
    t1 = s.tail(b.act(c, "relu"), 8, "y1")
    s.expect(w, 8, w=(w, 0, 4), t0=(t0, 1, 4), t1=(t1, 1, 4))
    s.check(lambda p: _equal_positions(p, (t0, 1), (t1, 1)))
    s.check(lambda p: _count_initializers(p, w, 1))
    return s.case()


def _count_initializers(p: Pruned, prefix: str, n: int) -> None:
    names = [t.name for t in p.pruned.graph.initializer if t.name.startswith(prefix)]
    assert len(names) == n, f"initializers named {prefix}*: {names}"


def concat_twice() -> Case:
    """Concat(h, h): channel c is output c and 8 + c (8 slots, 16 tail inputs → 8)."""
    s = Sandwich("concat_twice")
    h, hw = s.head(8)
    tw = s.tail(s.b.concat([h, h], axis=1), 16)
    s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 8))

    def fn(p: Pruned):
        k = p.kept_positions(hw, 0)
        assert p.kept_positions(tw, 1) == k + [8 + c for c in k]
    s.check(fn)
    return s.case()


def split_concat_swap() -> Case:
    """Split [3, 5] then Concat(second, first): the tail sees the halves swapped."""
    s = Sandwich("split_swap", opset=13)
    h, hw = s.head(8)
    a, c = s.b.split(h, [3, 5])
    tw = s.tail(s.b.concat([c, a], axis=1), 8)
    s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 4))

    def fn(p: Pruned):
        k = p.kept_positions(hw, 0)
        assert p.kept_positions(tw, 1) == [c - 3 for c in k if c >= 3] + [c + 5 for c in k if c < 3]
    s.check(fn)
    return s.case()


def slice_shared_bounds() -> Case:
    """Two Slices of two different groups read the same starts/ends constants: each gets its own bounds."""
    s = Sandwich("slice_shared", opset=13)
    b = s.b
    h0, w0 = s.head(8)
    h1, w1 = s.head(8)
    bounds = [b.ints([2]), b.ints([7]), b.ints([1])]
    nodes, tails = [], []
    for i, h in enumerate((h0, h1)):
        y = b.node("Slice", [h, *bounds])
        nodes.append(s.last)
        tails.append(s.tail(y, 5, f"y{i}"))
    s.expect(w0, 8, head=(w0, 0, 4))
    s.expect(w1, 8, head=(w1, 0, 4))

    def fn(p: Pruned):
        for node, w, tw in zip(nodes, (w0, w1), tails):
            start, end, inside = _sliced(p.kept_positions(w, 0), 2, 7)
            assert (p.const_input(node, 1), p.const_input(node, 2)) == ([start], [end])
            assert p.kept_positions(tw, 1) == inside
    s.check(fn)
    return s.case()


def gather_negative() -> Case:
    """Gather [-1, -3, 0] on axis 1: rewritten indices are the ranks of the kept channels."""
    s = Sandwich("gather_neg")
    h, hw = s.head(8)
    idx = [-1, -3, 0]
    y = s.b.node("Gather", [h, s.b.ints(idx)], axis=1)
    node = s.last
    tw = s.tail(y, 3)
    s.expect(hw, 8, head=(hw, 0, 4))

    def fn(p: Pruned):
        k = p.kept_positions(hw, 0)
        rows = [i for i, c in enumerate(idx) if c % 8 in k]
        assert p.kept_positions(tw, 1) == rows
        assert p.const_input(node, 1) == [k.index(idx[i] % 8) for i in rows]
    s.check(fn)
    return s.case()


def sum_three() -> Case:
    """Sum(a, b, k[C,1,1]): two convs and the constant in one group of 8 slots."""
    s = Sandwich("sum3")
    a, aw = s.head(8)
    c, cw = s.head(8)
    k = s.b.channel_const(8, 0.5, 1.5)
    tw = s.tail(s.b.node("Sum", [a, c, k]), 8)
    s.expect(aw, 8, a=(aw, 0, 4), c=(cw, 0, 4), k=(k, 0, 4), tail=(tw, 1, 4))
    return s.case()


def channel_const_4d() -> Case:
    """Mul by a [1, C, 1, 1] constant: its axis 1 follows the channels."""
    s = Sandwich("mul4d")
    h, hw = s.head(8)
    k = s.b.uniform("k4", (1, 8, 1, 1), 0.5, 1.5)
    tw = s.tail(s.b.mul(h, k), 8)
    s.expect(hw, 8, head=(hw, 0, 4), k=(k, 1, 4), tail=(tw, 1, 4))
    return s.case()


def conv1d() -> Case:
    """Conv1d (rank 3) dense then depthwise: 8 slots through both."""
    s = Sandwich("conv1d")
    b = s.b
    s.x = "x1d"
    b.inputs[0] = helper.make_tensor_value_info("x1d", TensorProto.FLOAT, [1, 3, 16])
    w0 = b.normal("c1.weight", (8, 3, 3), 0.3)
    h = b.node("Relu", [b.node("Conv", [s.x, w0], kernel_shape=[3], pads=[1, 1])])
    wd = b.normal("dw1.weight", (8, 1, 3), 0.5)
    d = b.node("Conv", [h, wd], kernel_shape=[3], pads=[1, 1], group=8)
    node = s.last
    w1 = b.normal("c2.weight", (4, 8, 1), 0.3)
    b.output(b.node("Conv", [d, w1], kernel_shape=[1]), "y")
    s.expect(w0, 8, head=(w0, 0, 4), dw=(wd, 0, 4), tail=(w1, 1, 4))
    s.check_attr(node, "group", 4)
    return s.case()


def groupnorm_export() -> Case:
    """GroupNorm as exported before opset 18: Reshape [1, G=4, -1] → InstanceNorm → Reshape back → affine.

    Whole groups can go (InstanceNorm normalizes each group on its own): channel c is in slot c // 2,
    so 4 slots; pruning at 0.5 keeps two groups (4 channels) and rewrites both target shapes.
    """
    s = Sandwich("gn_export", opset=13)
    b = s.b
    h, hw = s.head(8, bn=False, act=None)
    r = b.reshape(h, [1, 4, -1])
    r1 = s.last
    scale, shift = b.uniform("gn.scale", (4,), 0.5, 1.5), b.uniform("gn.shift", (4,), -0.5, 0.5)
    g = b.reshape(b.node("InstanceNormalization", [r, scale, shift], epsilon=1e-5), [1, 8, 8, 8])
    r2 = s.last
    gamma, beta = b.channel_const(8, 0.5, 1.5), b.channel_const(8, -0.5, 0.5)
    tw = s.tail(b.act(b.add(b.mul(g, gamma), beta), "relu"), 8)
    s.expect(hw, 4, head=(hw, 0, 4), scale=(scale, 0, 2), shift=(shift, 0, 2), gamma=(gamma, 0, 4),
             beta=(beta, 0, 4), tail=(tw, 1, 4))
    s.check_const(r1, 1, [1, 2, -1])
    s.check_const(r2, 1, [1, 4, 8, 8])
    s.check(lambda p: _whole_groups(p, hw, 2))
    return s.case()


def _whole_groups(p: Pruned, init: str, width: int) -> None:
    kept = p.kept_positions(init, 0)
    groups = sorted({k // width for k in kept})
    assert kept == [g * width + j for g in groups for j in range(width)], f"{init}: kept {kept}"


def slice_two_axes() -> Case:
    """Slice axes [2, 1] (channel entry second): only element 1 of starts/ends is rewritten."""
    s = Sandwich("slice_2ax", opset=13)
    b = s.b
    h, hw = s.head(8)
    y = b.node("Slice", [h, b.ints([1, 2]), b.ints([7, 7]), b.ints([2, -3])])
    node = s.last
    tw = s.tail(y, 5)
    s.expect(hw, 8, head=(hw, 0, 4))

    def fn(p: Pruned):
        start, end, inside = _sliced(p.kept_positions(hw, 0), 2, 7)
        assert (p.const_input(node, 1), p.const_input(node, 2)) == ([1, start], [7, end])
        assert p.kept_positions(tw, 1) == inside
    s.check(fn)
    return s.case()


def slice_chain() -> Case:
    """Slice [1:7] then [1:5] of that: channels 2..5 reach the tail; both bounds follow."""
    s = Sandwich("slice_chain", opset=13)
    h, hw = s.head(8)
    y1 = s.b.slice(h, 1, 7)
    n1 = s.last
    y2 = s.b.slice(y1, 1, 5)
    n2 = s.last
    tw = s.tail(y2, 4)
    s.expect(hw, 8, head=(hw, 0, 4))

    def fn(p: Pruned):
        s1, e1, mid = _sliced(p.kept_positions(hw, 0), 1, 7)  # mid: kept positions of the first output
        s2, e2, inner = _sliced(mid, 1, 5)
        assert (p.const_input(n1, 1), p.const_input(n1, 2)) == ([s1], [e1])
        assert (p.const_input(n2, 1), p.const_input(n2, 2)) == ([s2], [e2])
        assert p.kept_positions(tw, 1) == inner
    s.check(fn)
    return s.case()


def resize_sizes_axes() -> Case:
    """Resize-18 sizes [C, H, W] with axes [1, 2, 3]: entry 0 names the channels and must follow."""
    s = Sandwich("resize_axes", opset=18)
    h, hw = s.head(8)
    y = s.b.node("Resize", [h, "", "", s.b.ints([8, 16, 16])], mode="nearest", axes=[1, 2, 3])
    s.check_const(s.last, 3, [4, 16, 16])
    tw = s.tail(y, 8)
    s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 4))
    return s.case()


def shared_channel_const() -> Case:
    """One [C,1,1] constant multiplies two different convs: their channels become one group."""
    s = Sandwich("shared_k")
    a, aw = s.head(8)
    c, cw = s.head(8)
    k = s.b.channel_const(8, 0.5, 1.5)
    t0 = s.tail(s.b.mul(a, k), 8, "y0")
    t1 = s.tail(s.b.mul(c, k), 8, "y1")
    s.expect(aw, 8, a=(aw, 0, 4), c=(cw, 0, 4), k=(k, 0, 4), t0=(t0, 1, 4), t1=(t1, 1, 4))
    s.check(lambda p: _equal_positions(p, (aw, 0), (cw, 0), (t0, 1), (t1, 1)))
    return s.case()


def negative_axes() -> Case:
    """Split axis -3 into [5, 3], Gather axis -3 of the first part, Concat axis -3 with the second."""
    s = Sandwich("neg_axes", opset=13)
    b = s.b
    h, hw = s.head(8)
    p0, p1 = b.node("Split", [h, b.ints([5, 3])], n_out=2, axis=-3)
    g = b.node("Gather", [p0, b.ints([4, 0, 2])], axis=-3)
    tw = s.tail(b.concat([g, p1], axis=-3), 6)
    s.expect(hw, 8, head=(hw, 0, 4))

    def fn(p: Pruned):
        k = p.kept_positions(hw, 0)
        rows = [i for i, c in enumerate([4, 0, 2]) if c in k] + [3 + c - 5 for c in k if c >= 5]
        assert p.kept_positions(tw, 1) == rows
    s.check(fn)
    return s.case()


# --------------------------------------------------------------------------- the case table
def _table() -> dict[str, Callable[[], Case]]:
    t: dict[str, Callable[[], Case]] = {
        "conv-dense": conv_dense, "conv-depthwise": partial(conv_depthwise, 1),
        "conv-depthwise-mult2": partial(conv_depthwise, 2), "conv-grouped": conv_grouped,
        "batchnorm": batchnorm, "instancenorm": instancenorm, "prelu": prelu,
        "matmul-const-right": matmul_right, "matmul-const-left": matmul_left,
        "matmul-activations": matmul_activations, "residual-add": residual, "silu": silu,
        "squeeze-excite": squeeze_excite, "concat-channels": concat_channels, "concat-spatial": concat_spatial,
        "gather-split": gather_split, "transpose-nhwc": transpose_nhwc, "channel-shuffle": channel_shuffle,
        "foreign-domain": foreign_domain, "if-node": if_node, "shared-weight": shared_weight,
        "concat-same-input-twice": concat_twice, "split-concat-swapped": split_concat_swap,
        "slice-shared-bounds": slice_shared_bounds, "gather-negative": gather_negative, "sum-three": sum_three,
        "mul-const-1c11": channel_const_4d, "conv1d": conv1d, "groupnorm-export": groupnorm_export,
        "DepthToSpace-opset9": partial(depth_space, "DepthToSpace", "DCR", 9),
        "slice-two-axes": slice_two_axes, "slice-chain": slice_chain, "resize-sizes18-axes": resize_sizes_axes,
        "shared-channel-const": shared_channel_const, "negative-axes": negative_axes,
    }
    t.update({f"convtranspose-{k}": partial(conv_transpose, k)
              for k in ("dense", "grouped", "depthwise", "depthwise2")})
    t.update({f"gemm-tA{a}-tB{b}-{'C' if c else 'noC'}": partial(gemm, a, b, c)
              for a in (0, 1) for b in (0, 1) for c in (True, False)})
    for op, opset, attrs in UNARY:
        form = attrs if isinstance(attrs, str) else "attrs"
        t[f"unary-{op}-opset{opset}" + (f"-{form}" if op in ("Clip", "Dropout") else "")] = partial(
            unary, op, opset, attrs)
    t.update({f"{op}-const-{'first' if f else 'second'}": partial(binary_const, op, f)
              for op in BINARY for f in (False, True)})
    t.update({f"{op}-activations": partial(binary_activations, op) for op in BINARY})
    t.update({f"split-{f}": partial(split, f) for f in ("attr", "input", "num_outputs", "default")})
    t.update({f"slice-{f}": partial(slice_channels, f) for f in ("attr9", "inputs", "neg_intmax", "neg_end")})
    t.update({f"pool-{op}": partial(pool, op) for op in POOLS})
    t.update({f"{op}-keepdims{k}-{f}": partial(reduce, op, k, f)
              for op in ("ReduceMean", "ReduceMax", "ReduceSum") for k in (0, 1) for f in ("attr", "input")})
    t.update({f"resize-{f}": partial(resize, f)
              for f in ("upsample9", "scales11", "scales13", "linear13", "sizes11", "sizes13", "sizes18")})
    t.update({f"pad-{f}": partial(pad, f) for f in ("attr9", "input13", "axes18", "reflect13", "crop13")})
    t.update({f"reshape-3d-{f}": partial(reshape_3d, f) for f in ("const", "zero", "minus", "shape")})
    t["reshape-3d-shape-opset13"] = partial(reshape_3d, "shape", 13)
    t.update({f"flatten-{f}": partial(flatten_into, f)
              for f in ("flatten", "flatten_N", "reshape_const", "reshape_zero", "computed")})
    t.update({f"squeeze-unsqueeze-opset{o}": partial(squeeze_unsqueeze, o) for o in (11, 13)})
    t.update({f"{op}-{m}": partial(depth_space, op, m)
              for op, m in (("DepthToSpace", "DCR"), ("DepthToSpace", "CRD"), ("SpaceToDepth", "DCR"))})
    t.update({f"{op}-opset{o}-axis{a}": partial(softmax, op, o, a)
              for op, o, a in (("Softmax", 13, None), ("Softmax", 13, 1), ("Softmax", 9, None),
                               ("Softmax", 11, 2), ("Softmax", 9, 3), ("LogSoftmax", 13, 2),
                               ("LogSoftmax", 11, 1))})
    t.update({f"{op}-opset{o}-axis{a}-nhwc": partial(softmax, op, o, a, True)
              for op, o, a in (("Softmax", 11, 2), ("Softmax", 13, 2), ("Softmax", 13, None),
                               ("LogSoftmax", 9, 3))})
    t.update({f"blocked-{k}": partial(blocked, k)
              for k in ("reduce_channels", "lrn", "pad_channels", "slice_step2", "gather_scalar",
                        "maxpool_indices", "graph_output")})
    return t


CASES = _table()
