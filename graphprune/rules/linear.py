"""Gemm and MatMul (constant or activation operands).

The contracted axis of both operands holds the same positions (removing position k from both
removes exactly its term of the sum: a consumer slice). Non-contracted axes pass to the output.
"""
from __future__ import annotations

from .base import CONSUMER, HEADS, PRODUCER, RuleContext, RuleResult, Space, register
from .elementwise import broadcast_links


@register("Gemm")
def gemm_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    a, b, c, y = ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(0)
    ta, tb = int(ctx.attr("transA", 0)), int(ctx.attr("transB", 0))
    a_m, a_k = (1, 0) if ta else (0, 1)
    b_k, b_n = (1, 0) if tb else (0, 1)
    res.link(Space(a, a_k), Space(b, b_k), role=CONSUMER, tag="weight")
    res.link(Space(a, a_m), Space(y, 0), role=PRODUCER, tag="weight")
    res.link(Space(b, b_n), Space(y, 1), role=PRODUCER, tag="weight")
    if c:
        broadcast_links(ctx, res, [c], y, role=PRODUCER, tag="bias")
    return res


@register("MatMul")
def matmul_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    a, b, y = ctx.input(0), ctx.input(1), ctx.output(0)
    ra, rb, ry = ctx.rank(a), ctx.rank(b), ctx.rank(y)
    if ra is None or rb is None or ry is None:
        return res
    if ra < 2 or rb < 2:
        for t, r in ((a, ra), (b, rb)):
            for ax in range(r):
                res.barrier(Space(t, ax), f"MatMul {ctx.name}: 1-D operand {t} is not supported")
        return res
    res.link(Space(a, ra - 1), Space(b, rb - 2), role=CONSUMER, tag="weight")
    res.link(Space(a, ra - 2), Space(y, ry - 2), role=PRODUCER, tag="weight")
    res.link(Space(b, rb - 1), Space(y, ry - 1), role=PRODUCER, tag="weight")
    yshape = ctx.shape(y)
    for t, r in ((a, ra), (b, rb)):
        shape = ctx.shape(t)
        for ax in range(r - 2):
            oax = ax + (ry - r)
            if shape[ax] == yshape[oax] or None in (shape[ax], yshape[oax]):
                res.link(Space(t, ax), Space(y, oax))
    if not ctx.is_constant(a) and not ctx.is_constant(b):
        # a batched product of two activations (attention scores, probabilities times values):
        # its batch axes hold independent attention heads
        for oax in range(ry - 2):
            if isinstance(yshape[oax], int) and yshape[oax] > 1:
                res.heads[Space(y, oax)] = HEADS
    return res
