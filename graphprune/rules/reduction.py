"""Pooling, reductions, softmax and cross-channel normalizations.

Channels pass through an op that reduces or mixes *other* axes; an axis the op mixes is never
explained (a barrier with the reason), because removing one of its positions changes the
others.
"""
from __future__ import annotations

from .base import RuleContext, RuleResult, Space, normalize_axis, pass_axes, register


@register("MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
          "MaxRoiPool", "MaxUnpool")
def pool_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    x, y = ctx.input(0), ctx.output(0)
    rank = ctx.rank(x) or ctx.rank(y)
    if rank is None or ctx.node.op_type in ("MaxRoiPool", "MaxUnpool"):
        return res
    res.link(Space(x, 0), Space(y, 0))
    indices = ctx.output(1)
    if indices and ctx.used(indices):
        res.barrier(Space(x, 1), f"{ctx.node.op_type} {ctx.name}: its Indices output encodes channel positions")
    else:
        res.link(Space(x, 1), Space(y, 1))
    for ax in range(2, rank):
        res.barrier(Space(x, ax), f"{ctx.node.op_type} pools over spatial axis {ax}")
    return res


def _reduce_axes(ctx: RuleContext, rank: int) -> list[int] | None:
    """Reduced axes from the attribute or (newer opsets) the second input; None if unknown."""
    axes = ctx.attr("axes")
    if axes is None and ctx.input(1):
        entries = ctx.shape_value(ctx.input(1))
        if entries is None or any(e.value is None for e in entries):
            return None
        axes = [e.value for e in entries]
    if not axes:
        return [] if int(ctx.attr("noop_with_empty_axes", 0)) else list(range(rank))
    return sorted(normalize_axis(int(a), rank) for a in axes)


@register("ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2",
          "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")
def reduce_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    x, y = ctx.input(0), ctx.output(0)
    rank = ctx.rank(x)
    if rank is None:
        return res
    axes = _reduce_axes(ctx, rank)
    if axes is None:
        for ax in range(rank):
            res.barrier(Space(x, ax), f"{ctx.node.op_type} {ctx.name}: reduced axes are computed at run time")
        return res
    keep = int(ctx.attr("keepdims", 1))
    why = {ax: f"{ctx.node.op_type} {ctx.name} reduces over axis {ax}" for ax in axes}
    pass_axes(res, x, y, rank, reasons=why, dropped=() if keep else set(axes))
    return res


@register("ArgMax", "ArgMin")
def arg_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    x, y = ctx.input(0), ctx.output(0)
    rank = ctx.rank(x)
    if rank is None:
        return res
    axis = normalize_axis(int(ctx.attr("axis", 0)), rank)
    keep = int(ctx.attr("keepdims", 1))
    why = {axis: f"{ctx.node.op_type} {ctx.name} returns positions along axis {axis}"}
    pass_axes(res, x, y, rank, reasons=why, dropped=() if keep else {axis})
    return res


@register("Softmax", "LogSoftmax", "Hardmax")
def softmax_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    x, y = ctx.input(0), ctx.output(0)
    rank = ctx.rank(x) or ctx.rank(y)
    if rank is None:
        return res
    if ctx.opset >= 13:
        axis = normalize_axis(int(ctx.attr("axis", -1)), rank)
        mixed = {axis}
    else:
        axis = normalize_axis(int(ctx.attr("axis", 1)), rank)
        mixed = set(range(axis, rank))
    pass_axes(res, x, y, rank, reasons={ax: f"{ctx.node.op_type} {ctx.name} normalizes over axis {ax}"
                                         for ax in mixed})
    return res


@register("LRN")
def lrn_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    x, y = ctx.input(0), ctx.output(0)
    rank = ctx.rank(x) or 4
    res.link(Space(x, 0), Space(y, 0))
    res.barrier(Space(x, 1), f"LRN {ctx.name} normalizes across neighbouring channels")
    for ax in range(2, rank):
        res.barrier(Space(x, ax), f"LRN {ctx.name} mixes spatial axis {ax}")
    return res


def norm_rule(ctx: RuleContext, what: str) -> RuleResult:
    """A normalization over the axes from ``axis`` on: those axes are barriers, the others pass."""
    res = RuleResult()
    x, y = ctx.input(0), ctx.output(0)
    rank = ctx.rank(x)
    if rank is None:
        return res
    axis = normalize_axis(int(ctx.attr("axis", -1)), rank)
    reasons = {ax: f"{what} {ctx.name} normalizes over axis {ax}" for ax in range(axis, rank)}
    pass_axes(res, x, y, rank, reasons=reasons)
    return res


@register("LayerNormalization")
def layernorm_rule(ctx: RuleContext) -> RuleResult:
    return norm_rule(ctx, "LayerNormalization")


@register("GroupNormalization")
def groupnorm_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    x, y = ctx.input(0), ctx.output(0)
    res.link(Space(x, 0), Space(y, 0))
    res.barrier(Space(x, 1), f"GroupNormalization {ctx.name} normalizes over groups of channels")
    return res


@register("Shape", "Size")
def shape_rule(ctx: RuleContext) -> RuleResult:
    """Shape/Size read only the sizes of their input; consumers of the sizes are checked by their own rules."""
    res = RuleResult()
    x = ctx.input(0)
    for ax in range(ctx.rank(x) or 0):
        res.explained.add(Space(x, ax))
    return res
