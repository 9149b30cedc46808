"""Fold inference-mode BatchNormalization into the linear node before or after it.

A BatchNormalization in inference form is the per-channel affine
``y = s · x + t`` with ``s = γ / √(σ² + ε)`` and ``t = β − μ s`` (see
:mod:`graphprune.passes.fold_affine` for the algebra and the producers that absorb it).

**After a linear node** (Conv any ``group``, ConvTranspose any ``group``, Gemm, MatMul with a
constant 2-D weight; also through Mul/Add/Sub/Div by constants and through Reshape/Flatten/
Squeeze/Unsqueeze/Transpose that keep the channel axis): the producer absorbs ``s`` and ``t``.
Refused when a tensor between them has another reader or is a graph output, because the
producer's output would change for that reader too.

**Before a Conv** ``z[o] = Σ_{c,k} W[o,c,k] y[c, ·+k] + b[o]``:
``W'[o,c] = W[o,c] s[g(o)·Cin/g + c]`` and ``b'[o] = b[o] + Σ_{c,k} W[o,c,k] t[g(o)·Cin/g + c]``
(``g(o)`` the group of output channel ``o``). The bias term assumes every kernel tap reads a
real ``y`` value. With zero padding, border taps read the padding value 0 — in the original
graph that is a 0 *after* the BN, whereas after folding it would stand for ``x = 0`` whose
BN image is ``t``; the border outputs would gain ``Σ W t`` over the padded taps. Padding with
``−t/s`` per channel would be exact but ONNX Pad takes one scalar. **Rule:** fold before a Conv
only when the Conv reads no padding (``pads`` all 0, ``auto_pad`` VALID, or SAME with a 1×…×1
kernel) or when ``t = 0`` for every channel (then ``s·0 = 0`` and scaling commutes with zero
padding).

**Before a Gemm** (``transA = 0``), directly on a 2-D BN or through a Flatten/Reshape that
flattens ``[N, C, d…]`` to ``[N, C·∏d]``: feature ``k`` of the Gemm input belongs to channel
``⌊k / ∏d⌋``, so ``s`` and ``t`` are repeated ``∏d`` times; then
``B'[k, :] = s_k B[k, :]`` and ``C' = β C + α tᵀ B``, ``β' = 1``.

Every reader of the BN output must absorb it, and the output must not be a graph output;
otherwise the BN stays and is reported with the reason. Training-form nodes (extra outputs
declared, ``training_mode=1``) always stay.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from ..graph.nodes import get_attr
from .base import Pass
from .fold_concat import fold_through_concat
from .fold_affine import (
    ChannelAffine, FoldContext, FoldedNode, FoldPassResult, NotFoldable, absorb_bias, absorb_gemm_c, apply_chain,
    batchnorm_affine, batchnorm_training_reason, find_chain, prepare,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Site:
    """A consumer that takes the BN in: ``node`` reads the BN's channels, each repeated ``repeat``
    times along its contracted axis (a flatten of ``[N, C, d…]`` repeats each channel ``∏d`` times)."""

    node: ir.Node
    repeat: int = 1


def conv_reads_padding(node: ir.Node, kernel: tuple[int, ...]) -> bool:
    """Whether any output of this Conv reads a padded (virtual zero) input position."""
    auto_pad = get_attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad == "VALID":
        return False
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return any(k != 1 for k in kernel)
    return any(p != 0 for p in get_attr(node, "pads", []))


def _conv_site(ctx: FoldContext, node: ir.Node, affine: ChannelAffine) -> Site:
    w = ctx.float_shape(node, 1, "weight")
    group = get_attr(node, "group", 1)
    if w[1] * group != affine.scale.size:
        raise NotFoldable(f"Conv {node.name} reads {w[1] * group} channels, the BN has {affine.scale.size}")
    if affine.has_shift and conv_reads_padding(node, w[2:]):
        raise NotFoldable(f"Conv {node.name} zero-pads its input and the BN shift is nonzero "
                          "(padding after a BN is not padding before it)")
    return Site(node)


def _gemm_site(ctx: FoldContext, node: ir.Node, count: int, repeat: int) -> Site:
    if get_attr(node, "transA", 0):
        raise NotFoldable(f"Gemm {node.name} has transA=1 (the BN channels are not its reduction axis)")
    b = ctx.float_shape(node, 1, "weight B")
    if ctx.opset() < 7:
        raise NotFoldable(f"Gemm {node.name}: opset < 7 Gemm broadcasting is not supported")
    k = b[1] if get_attr(node, "transB", 0) else b[0]
    if k != count * repeat:
        raise NotFoldable(f"Gemm {node.name} reduces over {k} features, not {count}×{repeat}")
    if len(node.inputs) > 2 and node.inputs[2] and not ctx.is_constant(node.inputs[2]):
        raise NotFoldable(f"Gemm {node.name}: input C {node.inputs[2].name!r} is not a constant")
    return Site(node, repeat)


def _matmul_site(ctx: FoldContext, node: ir.Node, count: int, repeat: int) -> Site:
    w = ctx.float_param(node, 1, "weight")
    if w.ndim != 2:
        raise NotFoldable(f"MatMul {node.name}: weight has rank {w.ndim}, only 2-D weights absorb a BN")
    if w.shape[0] != count * repeat:
        raise NotFoldable(f"MatMul {node.name} reduces over {w.shape[0]} features, not {count}×{repeat}")
    return Site(node, repeat)


def _through_view(ctx: FoldContext, view: ir.Node, axis: int, repeat: int) -> tuple[int, int]:
    """(channel axis, repeat) after a view node, by its rule's position maps: the identity keeps
    each channel on one axis, a block map (channel c ↔ positions c·r … c·r + r − 1, a flatten)
    repeats it ``r`` times; anything else is a refusal."""
    for out_axis, pairs in ctx.channel_maps(view, axis):
        if pairs is None:
            return out_axis, repeat
        width = _block_width(pairs)
        if width and repeat == 1:
            return out_axis, width
    raise NotFoldable(f"{view.op_type} {view.name} does not keep the BN's channels on one axis")


def _block_width(pairs) -> int:
    """``r`` when ``pairs`` maps position c to positions c·r … c·r + r − 1 exactly (else 0)."""
    count = int(pairs[:, 0].max()) + 1 if len(pairs) else 0
    if not count or len(pairs) % count:
        return 0
    width = len(pairs) // count
    ordered = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    expected = np.arange(count * width)
    return width if np.array_equal(ordered[:, 1], expected) and np.array_equal(ordered[:, 0], expected // width) \
        else 0


def _reader_site(ctx: FoldContext, node: ir.Node, value: ir.Value, axis: int, repeat: int,
                 affine: ChannelAffine) -> Site | None:
    """The absorbing site ``node`` is (None: a view to follow), or a refusal."""
    count, rank = affine.scale.size, ctx.rank(value)
    if node.op_type == "Conv" and axis == 1 and repeat == 1:
        return _conv_site(ctx, node, affine)
    if node.op_type == "Gemm" and rank == 2 and axis == 1:
        return _gemm_site(ctx, node, count, repeat)
    if node.op_type == "MatMul" and rank is not None and axis == rank - 1:
        return _matmul_site(ctx, node, count, repeat)
    if ctx.is_view(node):
        return None
    raise NotFoldable(f"output feeds {node.op_type} {node.name}, which cannot absorb it (only Conv, Gemm and "
                      "MatMul reading the channels on their contracted axis, directly or through views)")


def consumer_sites(ctx: FoldContext, bn: ir.Node, affine: ChannelAffine) -> list[Site]:
    """Every node that reads the BN output (directly or through views) as an absorbing site, or a
    refusal. Views in between stay: they move the elements, the sites absorb the affine."""
    sites: list[Site] = []
    stack = [(_readers(ctx, bn.outputs[0]), bn.outputs[0], 1, 1)]
    while stack:
        readers, value, axis, repeat = stack[-1]
        use = next(readers, None)
        if use is None:
            stack.pop()
            continue
        node = use.node
        if use.idx != 0 or node.domain not in ("", "ai.onnx"):
            raise NotFoldable(f"output is input {use.idx} of {node.op_type} {node.name}")
        site = _reader_site(ctx, node, value, axis, repeat, affine)
        if site is not None:
            sites.append(site)
            continue
        out_axis, out_repeat = _through_view(ctx, node, axis, repeat)
        stack.append((_readers(ctx, node.outputs[0]), node.outputs[0], out_axis, out_repeat))
    return sites


def _readers(ctx: FoldContext, value: ir.Value):
    if value.is_graph_output() or value.name in ctx.pinned:
        raise NotFoldable(f"{value.name!r} is a graph output or read by a subgraph")
    readers = list(value.uses())
    if not readers:
        raise NotFoldable(f"{value.name!r} is not read by any node")
    return iter(readers)


def _absorb_into_conv(ctx: FoldContext, node: ir.Node, affine: ChannelAffine) -> None:
    w = ctx.array(node.inputs[1])
    wd = w.astype(np.float64)
    group = get_attr(node, "group", 1)
    cout, cin_per_group = w.shape[:2]
    # channel of the Conv input read by weight element [o, c]
    read = (np.arange(cout)[:, None] // (cout // group)) * cin_per_group + np.arange(cin_per_group)[None, :]
    tail = (1,) * (w.ndim - 2)
    shift = affine.shift[read].reshape(read.shape + tail)
    added = (wd * shift).sum(axis=tuple(range(1, w.ndim)))
    ctx.write_param(node, 1, wd * affine.scale[read].reshape(read.shape + tail), w.dtype, "weight")
    absorb_bias(ctx, node, 2, ChannelAffine(np.ones(cout), added), w.dtype)


def _absorb_into_gemm(ctx: FoldContext, node: ir.Node, affine: ChannelAffine, repeat: int) -> None:
    b = ctx.array(node.inputs[1])
    bd = b.astype(np.float64)
    scale, shift = np.repeat(affine.scale, repeat), np.repeat(affine.shift, repeat)
    trans_b = get_attr(node, "transB", 0)
    added = float(get_attr(node, "alpha", 1.0)) * (shift @ (bd.T if trans_b else bd))
    ctx.write_param(node, 1, bd * (scale[None, :] if trans_b else scale[:, None]), b.dtype, "B")
    absorb_gemm_c(ctx, node, ChannelAffine(np.ones(added.size), added), b.dtype)


def _absorb_into_matmul(ctx: FoldContext, node: ir.Node, affine: ChannelAffine, repeat: int) -> None:
    """``(s x + t) W = x (diag(s) W) + t W``: the weight's rows scaled, ``t W`` added after it."""
    w = ctx.array(node.inputs[1])
    wd = w.astype(np.float64)
    scale, shift = np.repeat(affine.scale, repeat), np.repeat(affine.shift, repeat)
    ctx.write_param(node, 1, wd * scale[:, None], w.dtype, "weight")
    added = shift @ wd
    if np.any(added != 0):
        ctx.add_after(node, added.astype(w.dtype), "bias")


def fold_into_consumers(ctx: FoldContext, bn: ir.Node) -> FoldedNode:
    affine = batchnorm_affine(ctx, bn)
    sites = consumer_sites(ctx, bn, affine)
    for site in sites:
        if site.node.op_type == "Conv":
            _absorb_into_conv(ctx, site.node, affine)
        elif site.node.op_type == "MatMul":
            _absorb_into_matmul(ctx, site.node, affine, site.repeat)
        else:
            _absorb_into_gemm(ctx, site.node, affine, site.repeat)
    ctx.bypass(bn, 0)
    return FoldedNode(bn.name, bn.op_type, tuple(s.node.name for s in sites), "consumers")


def fold_one(ctx: FoldContext, bn: ir.Node) -> list[FoldedNode]:
    """Fold ``bn`` into its producer, else into its consumers; NotFoldable says why neither."""
    reason = batchnorm_training_reason(ctx, bn)
    if reason:
        raise NotFoldable(reason)
    try:
        return apply_chain(ctx, find_chain(ctx, bn, 0))
    except NotFoldable as before:
        try:
            return [fold_into_consumers(ctx, bn)]
        except NotFoldable as after:
            try:
                return [fold_through_concat(ctx, bn)]
            except NotFoldable as concat:
                raise NotFoldable(f"not into its producer: {before}; not into its consumers: {after}; "
                                  f"not through a Concat: {concat}") from None


class FoldBatchNormPass(Pass):
    """Fold every inference-mode BatchNormalization that can be folded exactly; list the rest."""

    name = "fold-batchnorm"

    def __init__(self, shapes: dict | None = None, strict: bool = False):
        #: shapes shared with other passes on the same model (see :class:`FoldContext`)
        self.shapes = shapes
        #: initializers declared as graph inputs are never written (see FoldContext)
        self.strict = strict

    def run(self, model: ir.Model) -> FoldPassResult:
        ctx, modified = prepare(model, self.shapes, self.strict)
        folded: list[FoldedNode] = []
        skipped: list[tuple[str, str]] = []
        for node in ctx.live_nodes():
            if ctx.is_removed(node) or node.op_type != "BatchNormalization" or node.domain not in ("", "ai.onnx"):
                continue
            try:
                folded.extend(fold_one(ctx, node))
            except NotFoldable as exc:
                skipped.append((node.name, str(exc)))
                log.info("BatchNormalization %s stays: %s", node.name, exc)
        ctx.commit()
        count = sum(f.op_type == "BatchNormalization" for f in folded)
        notes = [f"folded {count} BatchNormalization nodes"] if count else []
        notes += [f"kept BatchNormalization {n}: {r}" for n, r in skipped]
        return FoldPassResult(model, modified or bool(folded), notes, folded=folded, skipped=skipped)
