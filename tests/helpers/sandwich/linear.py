"""Sandwich cases of Conv/ConvTranspose, per-channel normalizations and PRelu, Gemm and MatMul."""
from __future__ import annotations

import math


from .base import Case, Pruned, Sandwich


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
    s.check(lambda p: blocks_follow(p, (hw, 0), (tw, 1), mult))
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
        s.check(lambda p: blocks_follow(p, (hw, 0), (w, 1), m))
    return s.case()


def blocks_follow(p: Pruned, small: tuple, big: tuple, width: int) -> None:
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
def add_gemm(s: Sandwich, x: str, fin: int, fout: int, ta: int = 0, tb: int = 1, bias: bool = True):
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
    y, w, c = add_gemm(s, f, 8, 6, ta, tb, bias)
    y2, w2, _ = add_gemm(s, s.b.act(y, "relu"), 6, 4)
    s.b.output(y2, "y")
    s.expect(hw, 8, head=(hw, 0, 4), w_k=(w, 1 if tb else 0, 4))
    out = dict(w_n=(w, 0 if tb else 1, 3), next=(w2, 1, 3))
    if bias:
        out["bias"] = (c, 0, 3)
    s.expect(w, 6, axis=0 if tb else 1, **out)
    return s.case()


def add_matmul(s: Sandwich, a: str, shape: tuple, left: bool = False) -> tuple[str, str]:
    w = s.b.normal(s.b.fresh("W"), shape, math.sqrt(1.0 / shape[1 if left else 0]))
    return s.b.node("MatMul", [w, a] if left else [a, w]), w


def matmul_right() -> Case:
    s = Sandwich("matmul_right")
    f, hw = _pooled(s)
    y, w = add_matmul(s, f, (8, 6))
    bias = s.b.normal("mm.bias", (6,), 0.1)
    y2, w2, _ = add_gemm(s, s.b.act(s.b.add(y, bias), "relu"), 6, 4)
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
    y, w = add_matmul(s, r, (6, 8), left=True)
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
    s.check(lambda p: equal_positions(p, (aw, 0), (bw, 0)))
    return s.case()


def equal_positions(p: Pruned, *spaces) -> None:
    kept = [p.kept_positions(t, a) for t, a in spaces]
    assert all(k == kept[0] for k in kept), f"{spaces} keep different positions: {kept}"
