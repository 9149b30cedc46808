"""Sandwich cases of ops that must block, and of the edge cases found in real exports."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from .base import Case, Pruned, Sandwich
from .elementwise import sliced
from .linear import equal_positions


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
    """com.microsoft.Gelu (onnxruntime's contrib op, elementwise per its documentation) between two
    convs: its rule passes the channels through, so the group prunes like any activation's (ops
    without a rule, of any domain, block with their name: tests/analysis/test_unusual_models.py)."""
    s = Sandwich("foreign")
    h, hw = s.head(8, x=s.pre(), cin=6)
    y = s.b.node("Relu", [h])  # becomes com.microsoft.Gelu once the output shapes are typed
    node = s.last
    tw = s.tail(y, 8)
    s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 4))
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
    s.check(lambda p: equal_positions(p, (t0, 1), (t1, 1)))
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
            start, end, inside = sliced(p.kept_positions(w, 0), 2, 7)
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
        start, end, inside = sliced(p.kept_positions(hw, 0), 2, 7)
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
        s1, e1, mid = sliced(p.kept_positions(hw, 0), 1, 7)  # mid: kept positions of the first output
        s2, e2, inner = sliced(mid, 1, 5)
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
    s.check(lambda p: equal_positions(p, (aw, 0), (cw, 0), (t0, 1), (t1, 1)))
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
