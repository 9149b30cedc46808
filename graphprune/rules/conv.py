"""Conv and ConvTranspose: dense, depthwise (with multiplier) and grouped.

Conv weight is ``[C_out, C_in/g, k...]``; ConvTranspose weight is ``[C_in, C_out/g, k...]``.

* dense (g == 1): weight output axis ↔ output channels (producer), weight input axis ↔ input
  channels (consumer);
* depthwise-like (one input channel per group): input channel c ↔ output channels of group c;
  pruning removes whole groups and ``group`` becomes the kept input channel count;
* grouped: the same in-group positions are removed from every group (so every group keeps the
  same count and ``group`` stays): positions c and c + k·(C/g) are tied.
"""
from __future__ import annotations

import numpy as np

from .base import CONSUMER, PRODUCER, FixUp, RuleContext, RuleResult, Space, block_pairs, register


def _group_fixup(node: str, x: Space):
    def apply(editor, kept):
        editor.set_attr(node, "group", int(len(kept(x))))
    return FixUp(node, (x,), apply, "group = kept input channels")


def _tie_pairs(total: int, width: int) -> np.ndarray:
    """Tie position p to p mod width (same in-group index in every group)."""
    p = np.arange(total, dtype=np.int64)
    return np.stack([p, p % width], axis=1)


def _spread_pairs(groups: int, width: int) -> np.ndarray:
    """Weight in-group index j ↔ positions j + k*width for every group k."""
    j = np.tile(np.arange(width, dtype=np.int64), groups)
    p = np.arange(groups * width, dtype=np.int64)
    return np.stack([j, p], axis=1)


def _spatial_reasons(res: RuleResult, ctx: RuleContext, x: str, y: str, what: str) -> None:
    for t in (x, y):
        rank = ctx.rank(t)
        for ax in range(2, rank or 0):
            res.barrier(Space(t, ax), f"{what} mixes spatial axis {ax} of {t}")


def _common(ctx: RuleContext, res: RuleResult):
    """What Conv and ConvTranspose share: batch passes, spatial axes mix, bias follows the output
    channels. Returns (x, w, y, weight shape, group) or None when the weight shape is unknown."""
    x, w, b, y = ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(0)
    wshape = ctx.shape(w)
    if wshape is None or len(wshape) < 3 or None in wshape[:2]:
        res.barrier(Space(y, 1), f"{ctx.node.op_type} {ctx.name}: weight {w} has no static shape")
        return None
    res.link(Space(x, 0), Space(y, 0))
    _spatial_reasons(res, ctx, x, y, f"{ctx.node.op_type} {ctx.name}")
    if b:
        res.link(Space(b, 0), Space(y, 1), role=PRODUCER, tag="bias")
    return x, w, y, wshape, int(ctx.attr("group", 1))


@register("Conv")
def conv_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    common = _common(ctx, res)
    if common is None:
        return res
    x, w, y, wshape, g = common
    c_out, cin_g = wshape[0], wshape[1]
    res.link(Space(w, 0), Space(y, 1), role=PRODUCER, tag="weight")
    if g == 1:
        res.link(Space(w, 1), Space(x, 1), role=CONSUMER, tag="weight")
    elif cin_g == 1:
        res.link(Space(x, 1), Space(y, 1), block_pairs(g, c_out // g))
        res.fixups.append(_group_fixup(ctx.name, Space(x, 1)))
    else:
        cout_g = c_out // g
        res.link(Space(y, 1), Space(y, 1), _tie_pairs(c_out, cout_g))
        res.link(Space(w, 1), Space(x, 1), _spread_pairs(g, cin_g), role=CONSUMER, tag="weight")
    return res


@register("ConvTranspose")
def conv_transpose_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    common = _common(ctx, res)
    if common is None:
        return res
    x, w, y, wshape, g = common
    c_in, cout_g = wshape[0], wshape[1]
    cin_g = c_in // g
    res.link(Space(w, 0), Space(x, 1), role=CONSUMER, tag="weight")
    if g == 1:
        res.link(Space(w, 1), Space(y, 1), role=PRODUCER, tag="weight")
    elif cin_g == 1:
        res.link(Space(x, 1), Space(y, 1), block_pairs(g, cout_g))
        res.explained.add(Space(w, 1))
        res.fixups.append(_group_fixup(ctx.name, Space(x, 1)))
    else:
        res.link(Space(x, 1), Space(x, 1), _tie_pairs(c_in, cin_g))
        res.link(Space(w, 1), Space(y, 1), _spread_pairs(g, cout_g), role=PRODUCER, tag="weight")
    # an explicit output_shape attribute names spatial sizes only; nothing to fix
    return res
