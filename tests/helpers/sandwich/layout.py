"""Sandwich cases of pooling and reductions, Resize and Pad, Flatten/Reshape and layout ops."""
from __future__ import annotations

import numpy as np

from .base import Case, Pruned, Sandwich
from .linear import add_gemm, add_matmul, blocks_follow, equal_positions


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
        y, tw, _ = add_gemm(s, r, 8, 4)
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
        y, w = add_matmul(s, f, (128, 4))
        feature_axis = 0
    else:
        y, w, _ = add_gemm(s, f, 128, 4)
        feature_axis = 1
    b.output(y, "y")
    s.expect(hw, 8, head=(hw, 0, 4), w_k=(w, feature_axis, 64))
    s.check(lambda p: blocks_follow(p, (hw, 0), (w, feature_axis), 16))
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
    s.check(lambda p: equal_positions(p, (hw, 0), (tw, 1)))
    return s.case()


def transpose_nhwc() -> Case:
    """NHWC model: Transpose in, Conv, Transpose out, per-channel Mul [8], MatMul W[8,6], back to NCHW."""
    s = Sandwich("nhwc", channels_last=True)
    b = s.b
    h, hw = s.head(8, x=b.transpose(s.x, [0, 3, 1, 2]))
    t = b.transpose(h, [0, 2, 3, 1])
    k = b.uniform("k", (8,), 0.5, 1.5)
    y, w = add_matmul(s, b.mul(t, k), (8, 6))
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
