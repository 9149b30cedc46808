"""The per-channel affine each affine node applies, and where a channel goes through a view."""
from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ..graph.nodes import get_attr
from .fold_context import FLOAT_TYPES, Channel, ChannelAffine, FoldContext, NotFoldable

AFFINE_OPS = ("Mul", "Add", "Sub", "Div")


# ----------------------------------------------------------------------------- node affines
def batchnorm_training_reason(ctx: FoldContext, node: ir.Node) -> str | None:
    """Why a BatchNormalization is not in inference form (None when it is)."""
    if any(v.name for v in node.outputs[1:]):
        return "declares training outputs (running/saved mean and variance), so it runs in training mode"
    if get_attr(node, "training_mode", 0):
        return "training_mode=1 (normalizes with batch statistics)"
    if get_attr(node, "spatial", 1) == 0:
        return "spatial=0 (per-element statistics) is not supported"
    if ctx.opset() < 7 and get_attr(node, "is_test", 0) != 1:
        return "is_test=0 (training form of opset < 7)"
    return None


def batchnorm_affine(ctx: FoldContext, node: ir.Node) -> ChannelAffine:
    """``s = γ / √(σ² + ε)``, ``t = β − μ s`` in float64, or a refusal."""
    reason = batchnorm_training_reason(ctx, node)
    if reason:
        raise NotFoldable(f"BatchNormalization {node.name} {reason}")
    gamma, beta, mean, var = (ctx.float_param(node, i, what).astype(np.float64).reshape(-1)
                              for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
    if not gamma.size == beta.size == mean.size == var.size:
        raise NotFoldable(f"BatchNormalization {node.name}: parameters have different lengths")
    eps = float(np.float32(get_attr(node, "epsilon", 1e-5)))
    denom = var + eps
    if np.any(denom <= 0):
        raise NotFoldable(f"BatchNormalization {node.name}: variance + epsilon is not positive")
    scale = gamma / np.sqrt(denom)
    affine = ChannelAffine(scale, beta - mean * scale)
    affine.check_finite(f"BatchNormalization {node.name}")
    return affine


def per_channel_vector(value: np.ndarray, channel: Channel, where: str) -> np.ndarray:
    """The constant of a broadcasting Mul/Add/Sub/Div as a float64 vector over the channels."""
    if value.ndim > channel.rank:
        raise NotFoldable(f"{where}: constant of rank {value.ndim} would broadcast the rank-{channel.rank} data up")
    shape = (1,) * (channel.rank - value.ndim) + tuple(value.shape)
    for axis, dim in enumerate(shape):
        allowed = (1, channel.count) if axis == channel.axis else (1,)
        if dim not in allowed:
            raise NotFoldable(f"{where}: constant of shape {list(value.shape)} is not per-channel on axis "
                              f"{channel.axis} of {channel.count} channels")
    flat = value.astype(np.float64).reshape(-1)
    return flat if flat.size == channel.count else np.full(channel.count, flat[0])


def constant_operand(ctx: FoldContext, node: ir.Node) -> int | None:
    """Index of the data input of a binary op whose other input is a constant (else None)."""
    if node.op_type not in AFFINE_OPS or node.domain not in ("", "ai.onnx") or len(node.inputs) != 2:
        return None
    const = [ctx.is_constant(name) for name in node.inputs]
    if const == [False, True]:
        return 0
    if const == [True, False]:
        return 1
    return None


def data_index(ctx: FoldContext, node: ir.Node) -> int | None:
    """Input index carrying the data through an affine or view node (None: neither)."""
    if node.domain not in ("", "ai.onnx"):
        return None
    if node.op_type == "BatchNormalization":
        return 0 if batchnorm_training_reason(ctx, node) is None else None
    if ctx.is_view(node):
        return 0
    return constant_operand(ctx, node)


def binary_affine(ctx: FoldContext, node: ir.Node, index: int, channel: Channel) -> ChannelAffine:
    where = f"{node.op_type} {node.name}"
    value = ctx.array(node.inputs[1 - index])
    if value.dtype.type not in FLOAT_TYPES:
        raise NotFoldable(f"{where}: constant has dtype {value.dtype}, not a float type")
    k = per_channel_vector(value, channel, where)
    ones, zeros = np.ones(channel.count), np.zeros(channel.count)
    if node.op_type == "Mul":
        return ChannelAffine(k, zeros)
    if node.op_type == "Add":
        return ChannelAffine(ones, k)
    if node.op_type == "Sub":
        return ChannelAffine(ones, -k) if index == 0 else ChannelAffine(-ones, k)
    if index == 1:
        raise NotFoldable(f"{where}: constant divided by the data is not affine")
    if np.any(k == 0):
        raise NotFoldable(f"{where}: division by zero in the constant")
    return ChannelAffine(1.0 / k, zeros)


def node_affine(ctx: FoldContext, node: ir.Node, index: int, channel: Channel) -> ChannelAffine:
    """The per-channel affine an affine node applies on ``channel``, or a refusal."""
    if node.op_type == "BatchNormalization":
        if channel.axis != 1:
            raise NotFoldable(f"BatchNormalization {node.name} normalizes axis 1, the channels are on axis {channel.axis}")
        affine = batchnorm_affine(ctx, node)
        if affine.scale.size != channel.count:
            raise NotFoldable(f"BatchNormalization {node.name} has {affine.scale.size} channels, expected {channel.count}")
        return affine
    return binary_affine(ctx, node, index, channel)


# ----------------------------------------------------------------------------- views
def view_channel(ctx: FoldContext, node: ir.Node, channel: Channel) -> Channel:
    """Where ``channel`` lands after a view node, by its rule's position maps: an axis whose map is
    the identity (every element keeps its channel), or a refusal (the channel axis is split or
    merged with another)."""
    out = node.outputs[0]
    for axis, pairs in ctx.channel_maps(node, channel.axis):
        if pairs is None:
            rank = ctx.rank(out)
            if rank is None:
                break
            return Channel(axis, rank, channel.count)
    shapes = f"{list(ctx.shape(node.inputs[0]) or [])} -> {list(ctx.shape(out) or [])}"
    raise NotFoldable(f"{node.op_type} {node.name} does not keep the {channel.count} channels on one axis ({shapes})")
