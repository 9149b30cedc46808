"""ONNX attention ops (opset 23): Attention, RotaryEmbedding, RMSNormalization; and
SimplifiedLayerNormalization, which onnxruntime registers in the ONNX domain.

``Attention`` takes Q/K/V as ``[B, heads, S, D]`` or ``[B, S, heads * D]`` (with ``q_num_heads``
and ``kv_num_heads``); its heads and head dims are linked as :mod:`.heads` describes, the head
counts of the 3-D form and the default score scale (``1/sqrt(D)``, which pruning D would change)
follow the kept heads and dims. ``RotaryEmbedding`` keeps rotated dim pairs together and slices
its cos/sin caches.
"""
from __future__ import annotations

from .base import RuleContext, RuleResult, Space, register
from .heads import (count_fixup, explain_all, head_axes, link_heads, link_rotary, rotary_dim_fixup, scale_fixup)
from .reduction import norm_rule


def _layout(ctx: RuleContext, tensor: str, heads: int | None):
    """(heads, head dim, heads axis or None) of an attention operand, or None when unknown."""
    shape = ctx.shape(tensor)
    if shape is None or len(shape) not in (3, 4):
        return None
    if len(shape) == 4:
        return (shape[1], shape[3], 1) if isinstance(shape[1], int) and isinstance(shape[3], int) else None
    if not heads or not isinstance(shape[2], int) or shape[2] % heads:
        return None
    return heads, shape[2] // heads, None


def _block(res: RuleResult, ctx: RuleContext, why: str) -> RuleResult:
    for t in ctx.inputs[:3] + ctx.outputs[:1]:
        for ax in range(ctx.rank(t) or 0):
            res.barrier(Space(t, ax), why)
    return res


@register("Attention", since=23)
def attention_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    q, k, v, y = ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(0)
    q_heads, kv_heads = ctx.attr("q_num_heads"), ctx.attr("kv_num_heads")
    lq, lk, lv = _layout(ctx, q, q_heads), _layout(ctx, k, kv_heads), _layout(ctx, v, kv_heads)
    if None in (lq, lk, lv) or ctx.rank(y) != ctx.rank(q):
        return _block(res, ctx, f"Attention {ctx.name}: head layout of its inputs is unknown")
    if ctx.input(4) or ctx.input(5):
        return _block(res, ctx, f"Attention {ctx.name}: its key/value cache (past_key, past_value) keeps heads")
    (hq, d, ax), (hkv, _, _), (_, dv, _) = lq, lk, lv
    if hq % hkv:
        return _block(res, ctx, f"Attention {ctx.name}: {hq} query heads do not group over {hkv} key/value heads")
    group = hq // hkv
    dim_axis = ctx.rank(q) - 1
    axes = [head_axes(t, ax, dim_axis, hkv, group if t in (q, y) else 1, dv if t in (v, y) else d)
            for t in (q, k, v, y)]
    link_heads(res, *axes)
    seq_axis = 2 if ax is not None else 1
    for a, b in ((q, k), (k, v), (q, y)):
        res.link(Space(a, 0), Space(b, 0))
    res.link(Space(q, seq_axis), Space(y, seq_axis))
    res.link(Space(k, seq_axis), Space(v, seq_axis))
    mask = ctx.input(3)
    mask_shape = ctx.shape(mask)
    if mask and mask_shape is not None and len(mask_shape) == 4 and mask_shape[1] != 1:
        res.barrier(axes[0].kv or axes[0].group, f"Attention {ctx.name}: its mask has one row per head")
    explain_all(res, ctx, [mask] + [o for o in ctx.outputs[1:] if o])
    if ax is None:
        res.fixups.append(count_fixup(ctx.name, "q_num_heads", (axes[0].kv, axes[0].group)))
        res.fixups.append(count_fixup(ctx.name, "kv_num_heads", (axes[1].kv,)))
    scale = scale_fixup(ctx, axes[0].dim, d)
    if scale is not None:
        res.fixups.append(scale)
    for out in ctx.outputs[1:]:
        if out and ctx.used(out):
            res.barrier(axes[0].kv or axes[0].group, f"Attention {ctx.name}: its output {out} is read (heads kept)")
    return res


@register("RotaryEmbedding", since=23)
def rotary_embedding_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    x, cos, sin, y = ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(0)
    shape = ctx.shape(x)
    layout = _layout(ctx, x, ctx.attr("num_heads"))
    if shape is None or layout is None:
        return _block(res, ctx, f"RotaryEmbedding {ctx.name}: head layout of its input is unknown")
    heads, d, ax = layout
    axes = head_axes(x, ax, len(shape) - 1, heads, 1, d)
    out_axes = head_axes(y, ax, len(shape) - 1, heads, 1, d)
    for a in range(len(shape) - 1):
        if a != ax:
            res.link(Space(x, a), Space(y, a))
    for a, b in ((axes.kv, out_axes.kv), (axes.dim, out_axes.dim)):
        if a is not None:
            res.link(a, b)
    rotary = int(ctx.attr("rotary_embedding_dim", 0) or 0) or d
    if axes.dim is not None:
        link_rotary(res, ctx, axes.dim, (cos, sin), rotary, bool(ctx.attr("interleaved", 0)))
        if rotary != d:
            res.fixups.append(rotary_dim_fixup(ctx.name, axes.dim, rotary))
    if ax is None and axes.kv is not None:
        res.fixups.append(count_fixup(ctx.name, "num_heads", (axes.kv,)))
    explain_all(res, ctx, [ctx.input(3)])
    return res


@register("RMSNormalization", since=23)
def rms_normalization_rule(ctx: RuleContext) -> RuleResult:
    return norm_rule(ctx, "RMSNormalization")


@register("SimplifiedLayerNormalization")
@register("SimplifiedLayerNormalization", domain="com.microsoft")
def simplified_layer_norm_rule(ctx: RuleContext) -> RuleResult:
    """onnxruntime's RMS norm (``x / sqrt(mean(x^2) + eps) * scale`` over the axes from ``axis``)."""
    return norm_rule(ctx, "SimplifiedLayerNormalization")
