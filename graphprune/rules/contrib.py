"""onnxruntime's fused transformer ops (domain ``com.microsoft``), from its ContribOperators
documentation.

* ``FastGelu`` / ``BiasGelu``: GELU of ``x + bias`` with a per-channel bias on the last axis.
* ``SkipLayerNormalization`` / ``SkipSimplifiedLayerNormalization``: a (RMS) LayerNorm of
  ``input + skip (+ bias)`` over the hidden axis: that axis is a barrier (its statistics mix every
  channel), the others pass to every output.
* ``EmbedLayerNormalization``: word + position + segment embeddings, LayerNorm over the hidden
  axis: a barrier there.
* ``MultiHeadAttention`` (Q/K/V ``[B, S, heads * D]``, optional packed bias ``[3E]``) and
  ``GroupQueryAttention`` (``num_heads`` query heads over ``kv_num_heads`` key/value heads, rotary
  embedding inside with ``do_rotary``): heads and head dims as :mod:`.heads` describes, with
  ``num_heads``/``kv_num_heads`` and the default scale following the kept ones.
  GroupQueryAttention's head dims stay (onnxruntime runs head sizes that are multiples of 8 only).
* ``Attention``: one packed ``[E_in, 3E]`` Q/K/V weight; heads and head dims are parts of the
  weight's output axis (the same dims in Q, K and V), ``num_heads`` follows.

Inputs a rule does not model (key/value caches, packed Q/K/V without separate key and value,
per-head biases) make the heads and dims barriers that name them.
"""
from __future__ import annotations

import numpy as np

from .base import (CONSUMER, HEADS, OPERAND, PRODUCER, FixUp, RuleContext, RuleResult, Space, identity_all, offset_pairs,
                   register)
from .heads import count_fixup, explain_all, factor_spaces, head_axes, link_heads, link_rotary, scale_fixup

MS = "com.microsoft"


@register("FastGelu", "BiasGelu", domain=MS)
def bias_gelu_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    x, bias, y = ctx.input(0), ctx.input(1), ctx.output(0)
    rank = ctx.rank(x)
    if rank is None:
        return res
    identity_all(res, x, y, rank)
    if bias:
        res.link(Space(bias, 0), Space(y, rank - 1), role=PRODUCER, tag="bias")
    return res


@register("Gelu", "QuickGelu", domain=MS)
def contrib_unary_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    rank = ctx.rank(ctx.input(0))
    if rank is not None:
        identity_all(res, ctx.input(0), ctx.output(0), rank)
    return res


@register("SkipLayerNormalization", "SkipSimplifiedLayerNormalization", domain=MS)
def skip_layer_norm_rule(ctx: RuleContext) -> RuleResult:
    """Outputs: the normalized sum, mean and inverse std (statistics, last axis 1), and the sum."""
    res = RuleResult()
    x, skip = ctx.input(0), ctx.input(1)
    rank = ctx.rank(x)
    if rank is None:
        return res
    why = f"{ctx.node.op_type} {ctx.name} normalizes over axis {rank - 1} (the hidden axis)"
    tensors = [t for t in [skip, ctx.output(0), ctx.output(3)] if t]
    for t in [x] + tensors:
        res.barrier(Space(t, rank - 1), why)
    for t in tensors:
        if ctx.rank(t) == rank:
            identity_all(res, x, t, rank - 1)
    for stat in (ctx.output(1), ctx.output(2)):
        if stat and ctx.used(stat):
            identity_all(res, x, stat, min(rank, ctx.rank(stat) or 0) - 1)
    return res


@register("EmbedLayerNormalization", domain=MS)
def embed_layer_norm_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    why = f"EmbedLayerNormalization {ctx.name} normalizes over the hidden axis"
    out = ctx.output(0)
    if ctx.rank(out):
        res.barrier(Space(out, ctx.rank(out) - 1), why)
    for i in (2, 3, 4, 5, 6):
        t = ctx.input(i)
        if t and ctx.rank(t):
            res.barrier(Space(t, ctx.rank(t) - 1), why)
    return res


def _hidden_heads(ctx: RuleContext, tensor: str, heads: int):
    shape = ctx.shape(tensor)
    if shape is None or len(shape) != 3 or not isinstance(shape[2], int) or not heads or shape[2] % heads:
        return None
    return shape[2] // heads


def _blocked(ctx: RuleContext, why: str) -> RuleResult:
    res = RuleResult()
    for t in [ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(0)]:
        for ax in range(ctx.rank(t) or 0 if t else 0):
            res.barrier(Space(t, ax), f"{ctx.node.op_type} {ctx.name}: {why}")
    return res


def _unmodelled(ctx: RuleContext, names: dict) -> str | None:
    """The first optional input/output the rule does not model, named, or None."""
    for index, what in names.items():
        name = ctx.input(index) if index >= 0 else ctx.output(-index)
        if name and (index >= 0 or ctx.used(name)):
            return what
    return None


def _attention3d(res: RuleResult, ctx: RuleContext, heads: int, kv_heads: int, dims: tuple[int, int]):
    """Q, K, V, output ``[B, S, heads * D]``: heads and dims linked; batch and sequence axes too."""
    q, k, v, y = ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(0)
    d, dv = dims
    group = heads // kv_heads
    axes = [head_axes(t, None, 2, kv_heads, group if t in (q, y) else 1, dv if t in (v, y) else d)
            for t in (q, k, v, y)]
    link_heads(res, *axes)
    for a, b in ((q, k), (k, v), (q, y)):
        res.link(Space(a, 0), Space(b, 0))
    res.link(Space(q, 1), Space(y, 1))
    res.link(Space(k, 1), Space(v, 1))
    return axes


@register("MultiHeadAttention", domain=MS)
def multi_head_attention_rule(ctx: RuleContext) -> RuleResult:
    heads = int(ctx.attr("num_heads", 0))
    q, k, v, bias = ctx.input(0), ctx.input(1), ctx.input(2), ctx.input(3)
    dims = [_hidden_heads(ctx, t, heads) if t else None for t in (q, k, v)]
    if None in dims or dims[0] != dims[1]:
        return _blocked(ctx, "query, key and value are not [batch, sequence, heads * head_dim] (packed or cached)")
    other = _unmodelled(ctx, {5: "attention_bias", 6: "past_key", 7: "past_value", -1: "present_key",
                              -2: "present_value", -3: "qk"})
    if other:
        return _blocked(ctx, f"its {other} is not modelled")
    res = RuleResult()
    axes = _attention3d(res, ctx, heads, heads, (dims[0], dims[2]))
    if bias:  # added to Q, K, V inside the op: the Q and K parts are operands of their product
        offset = 0
        for t, role in ((q, OPERAND), (k, OPERAND), (v, PRODUCER)):
            size = ctx.shape(t)[2]
            res.link(Space(bias, 0), Space(t, 2), offset_pairs(size, offset)[:, ::-1].copy(), role=role, tag="bias")
            offset += size
    explain_all(res, ctx, [ctx.input(4)])
    res.fixups.append(count_fixup(ctx.name, "num_heads", (axes[0].kv,)))
    scale = scale_fixup(ctx, axes[0].dim, dims[0])
    if scale is not None:
        res.fixups.append(scale)
    return res


@register("GroupQueryAttention", domain=MS)
def group_query_attention_rule(ctx: RuleContext) -> RuleResult:
    heads, kv_heads = int(ctx.attr("num_heads", 0)), int(ctx.attr("kv_num_heads", 0))
    q, k, v = ctx.input(0), ctx.input(1), ctx.input(2)
    if not k or not v:
        return _blocked(ctx, "query, key and value are packed in one input")
    dims = [_hidden_heads(ctx, t, n) for t, n in ((q, heads), (k, kv_heads), (v, kv_heads))]
    if None in dims or len(set(dims)) != 1 or not kv_heads or heads % kv_heads:
        return _blocked(ctx, "query, key and value are not [batch, sequence, heads * head_dim]")
    other = _unmodelled(ctx, {3: "past_key", 4: "past_value", 10: "attention_bias", 11: "head_sink",
                              14: "q_norm_weight", 15: "k_norm_weight", -1: "present_key", -2: "present_value"})
    if other:
        return _blocked(ctx, f"its {other} is not modelled")
    res = RuleResult()
    d = dims[0]
    axes = _attention3d(res, ctx, heads, kv_heads, (d, d))
    if axes[0].dim is not None:
        res.link(axes[0].dim, axes[2].dim)  # one head size for query, key and value
        # onnxruntime's kernels take head sizes that are multiples of 8 only (checked at run time)
        res.barrier(axes[0].dim, f"GroupQueryAttention {ctx.name}: onnxruntime needs a head size that is a "
                                 "multiple of 8 (head dims kept)")
        if int(ctx.attr("do_rotary", 0)):
            for dim in (axes[0].dim, axes[1].dim):
                link_rotary(res, ctx, dim, (ctx.input(7), ctx.input(8)), d, bool(ctx.attr("rotary_interleaved", 0)))
    explain_all(res, ctx, [ctx.input(5), ctx.input(6), ctx.input(9)])
    res.fixups.append(count_fixup(ctx.name, "num_heads", (axes[0].kv, axes[0].group)))
    res.fixups.append(count_fixup(ctx.name, "kv_num_heads", (axes[1].kv,)))
    scale = scale_fixup(ctx, axes[0].dim, d)
    if scale is not None:
        res.fixups.append(scale)
    return res


@register("Attention", domain=MS)
def packed_attention_rule(ctx: RuleContext) -> RuleResult:
    """input ``[B, S, E_in]`` times weights ``[E_in, 3E]`` (+ bias ``[3E]``): Q | K | V packed."""
    heads = int(ctx.attr("num_heads", 0))
    x, w, bias, y = ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(0)
    wshape, yshape = ctx.shape(w), ctx.shape(y)
    sizes = ctx.attr("qkv_hidden_sizes")
    if wshape is None or yshape is None or len(wshape) != 2 or not heads or wshape[1] % 3 \
            or (sizes is not None and len(set(sizes)) != 1):
        return _blocked(ctx, "its packed weight is not [hidden, 3 * heads * head_dim] with equal parts")
    other = _unmodelled(ctx, {4: "past", 5: "attention_bias", 6: "past_sequence_length", -1: "present"})
    if other or int(ctx.attr("do_rotary", 0)):
        return _blocked(ctx, f"its {other or 'rotary embedding'} is not modelled")
    hidden = wshape[1] // 3
    if hidden % heads or yshape[2] != hidden:
        return _blocked(ctx, "its output is not [batch, sequence, heads * head_dim]")
    d = hidden // heads
    res = RuleResult()
    res.link(Space(x, 2), Space(w, 0), role=CONSUMER, tag="weight")
    res.link(Space(x, 0), Space(y, 0))
    res.link(Space(x, 1), Space(y, 1))
    chunk, w_heads, w_dims = factor_spaces(w, 1, (3, heads, d))
    y_heads, y_dims = factor_spaces(y, 2, (heads, d))
    res.explained.add(chunk)  # the third factor of the weight's axis: which of Q, K, V
    res.barrier(chunk, f"Attention {ctx.name}: query, key and value are packed in one weight")
    # the weight and bias write V (the output) and Q, K (operands of their product inside the op)
    for role in (PRODUCER, OPERAND):
        if bias:
            res.link(Space(bias, 0), Space(w, 1), role=role, tag="bias")
        for a, b in ((w_heads, y_heads), (w_dims, y_dims)):
            if a is not None and b is not None:
                res.link(a, b, role=role, tag="weight")
    if y_heads is not None:
        res.heads[y_heads] = HEADS
    explain_all(res, ctx, [ctx.input(3)])
    res.fixups.append(count_fixup(ctx.name, "num_heads", (y_heads,)))
    if sizes is not None:
        node = ctx.name

        def apply(editor, kept, spaces=(w_heads, w_dims)):
            editor.set_attr(node, "qkv_hidden_sizes", [int(np.prod([len(kept(s)) for s in spaces if s]))] * 3)
        res.fixups.append(FixUp(node, tuple(s for s in (w_heads, w_dims) if s), apply, "qkv_hidden_sizes"))
    scale = scale_fixup(ctx, w_dims, d)
    if scale is not None:
        res.fixups.append(scale)
    return res
