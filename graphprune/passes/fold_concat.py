"""Fold a BatchNormalization that follows a Concat by splitting it over the Concat's inputs.

``BN(Concat(y₁, …, yₙ))`` on the concatenated channel axis is ``Concat(BN₁(y₁), …, BNₙ(yₙ))``
where ``BNᵢ`` is the BN's per-channel affine restricted to the channels ``yᵢ`` occupies. When
every ``yᵢ`` is written by a linear node (Conv, ConvTranspose, Gemm, MatMul, or an inference
BatchNormalization) that feeds nothing but the Concat, each producer absorbs its slice (see
:mod:`graphprune.passes.absorbers`) and the BN disappears, exactly.
"""
from __future__ import annotations

import onnx_ir as ir

from ..graph.nodes import get_attr
from .absorbers import ABSORBERS
from .affines import batchnorm_affine
from .fold_context import ChannelAffine, FoldContext, FoldedNode, NotFoldable


def _concat_of(ctx: FoldContext, bn: ir.Node) -> ir.Node:
    x = bn.inputs[0]
    concat = x.producer()
    if concat is None or concat.op_type != "Concat" or concat.domain not in ("", "ai.onnx"):
        raise NotFoldable("its input is not a Concat")
    problem = ctx.intermediate_problem(x)
    if problem:
        raise NotFoldable(f"the Concat's output {problem}")
    rank = ctx.rank(x)
    axis = int(get_attr(concat, "axis", 0))
    if rank is None or (axis + rank if axis < 0 else axis) != 1:
        raise NotFoldable(f"Concat {concat.name} does not join the BN's channel axis 1")
    return concat


def _producer_slices(ctx: FoldContext, concat: ir.Node, count: int) -> list[tuple[ir.Node, int, int]]:
    """(producer, first channel, channel count) of every Concat input, or a refusal."""
    out, offset = [], 0
    for value in concat.inputs:
        producer = value.producer() if value is not None else None
        absorber = ABSORBERS.get(producer.op_type) if producer is not None else None
        if absorber is None or producer.domain not in ("", "ai.onnx") or producer.outputs[0] is not value:
            raise NotFoldable(f"Concat input {getattr(value, 'name', '')!r} is not written by a linear node")
        problem = ctx.intermediate_problem(value)
        if problem:
            raise NotFoldable(f"Concat input {problem}")
        channel = absorber.channel(ctx, producer)
        if channel.axis != 1:
            raise NotFoldable(f"{producer.op_type} {producer.name} writes its channels on axis {channel.axis}")
        out.append((producer, offset, channel.count))
        offset += channel.count
    if offset != count:
        raise NotFoldable(f"the Concat's inputs have {offset} channels, the BN {count}")
    return out


def fold_through_concat(ctx: FoldContext, bn: ir.Node) -> FoldedNode:
    """Split ``bn`` over its Concat's inputs and fold each slice into that input's producer."""
    affine = batchnorm_affine(ctx, bn)
    concat = _concat_of(ctx, bn)
    slices = _producer_slices(ctx, concat, affine.scale.size)
    parts = [ChannelAffine(affine.scale[a:a + n], affine.shift[a:a + n]) for _, a, n in slices]
    for (producer, _, _), part in zip(slices, parts):
        if part.has_shift and not ABSORBERS[producer.op_type].has_bias:
            raise NotFoldable(f"{producer.op_type} {producer.name} has no bias to take the BN's shift")
    for (producer, _, _), part in zip(slices, parts):
        ABSORBERS[producer.op_type].absorb(ctx, producer, part)
    ctx.bypass(bn, 0)
    return FoldedNode(bn.name, bn.op_type, tuple(p.name for p, _, _ in slices), "producer")
