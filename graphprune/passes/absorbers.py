"""How each linear op takes a per-channel affine of its output into its own parameters.

The algebra of every absorber is in :mod:`graphprune.passes.fold_affine`'s docstring.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_ir as ir


from ..graph.nodes import get_attr
from .affines import batchnorm_affine
from .fold_context import Channel, ChannelAffine, FoldContext, NotFoldable

ABSORBER_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


# ----------------------------------------------------------------------------- absorbers
def _weight_dtype(ctx: FoldContext, node: ir.Node):
    return ctx.dtype(node.inputs[1])


def _conv_channel(ctx, node) -> Channel:
    w = ctx.float_shape(node, 1, "weight")
    return Channel(1, len(w), w[0])


def _convtranspose_channel(ctx, node) -> Channel:
    w = ctx.float_shape(node, 1, "weight")
    return Channel(1, len(w), w[1] * get_attr(node, "group", 1))


def _gemm_channel(ctx, node) -> Channel:
    b = ctx.float_shape(node, 1, "weight B")
    if ctx.opset() < 7:
        raise NotFoldable(f"Gemm {node.name}: opset < 7 Gemm broadcasting is not supported")
    if len(node.inputs) > 2 and node.inputs[2] and not ctx.is_constant(node.inputs[2]):
        raise NotFoldable(f"Gemm {node.name}: input C {node.inputs[2].name!r} is not a constant")
    return Channel(1, 2, b[0] if get_attr(node, "transB", 0) else b[1])


def _matmul_channel(ctx, node) -> Channel:
    w = ctx.float_shape(node, 1, "weight")
    if len(w) != 2:
        raise NotFoldable(f"MatMul {node.name}: weight has rank {len(w)}, only 2-D weights are folded")
    rank = ctx.rank(node.outputs[0])
    if rank is None:
        raise NotFoldable(f"MatMul {node.name}: output rank unknown")
    return Channel(rank - 1, rank, w[1])


def _batchnorm_channel(ctx, node) -> Channel:
    scale = ctx.float_param(node, 1, "scale")
    rank = ctx.rank(node.inputs[0])
    if rank is None:
        raise NotFoldable(f"BatchNormalization {node.name}: input rank unknown")
    return Channel(1, rank, scale.size)


def _bias(ctx, node, index: int, count: int) -> np.ndarray:
    if index < len(node.inputs) and node.inputs[index]:
        return ctx.float_param(node, index, "bias").astype(np.float64).reshape(-1)
    return np.zeros(count)


def _absorb_conv(ctx, node, affine: ChannelAffine) -> bool:
    w = ctx.array(node.inputs[1])
    scale = affine.scale.reshape((-1,) + (1,) * (w.ndim - 1))
    ctx.write_param(node, 1, scaled(w, scale), w.dtype, "weight")
    absorb_bias(ctx, node, 2, affine, w.dtype)
    return True


def scaled(weight: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``weight * scale`` computed in float64 and rounded once to the weight's dtype, without a
    float64 copy of the weight (the same bits as ``(weight.astype(float64) * scale).astype(dtype)``)."""
    out = np.empty(np.broadcast_shapes(weight.shape, scale.shape), weight.dtype)
    flat_weight, flat_scale, flat_out = _trailing_block(weight, scale, out)
    np.multiply(flat_weight, flat_scale, out=flat_out, dtype=np.float64, casting="unsafe")
    return out


def _trailing_block(weight: np.ndarray, scale: np.ndarray, out: np.ndarray):
    """Views of the three arrays with the trailing axes over which ``scale`` is constant merged into
    one: the same products, in long inner loops (a 3x3 kernel's 9 elements are no loop to cast in)."""
    if scale.ndim != weight.ndim or weight.shape != out.shape or not weight.flags.c_contiguous:
        return weight, scale, out
    last = max((a for a, d in enumerate(scale.shape) if d != 1), default=-1)
    if last >= weight.ndim - 2:
        return weight, scale, out
    shape = weight.shape[:last + 1] + (-1,)
    return weight.reshape(shape), scale.reshape(scale.shape[:last + 1] + (1,)), out.reshape(shape)


def absorb_bias(ctx, node, index: int, affine: ChannelAffine, dtype) -> None:
    """``b' = s b + t`` on the bias input ``index`` (created when absent and ``t ≠ 0``)."""
    has_bias = index < len(node.inputs) and bool(node.inputs[index])
    if has_bias or affine.has_shift:
        bias = _bias(ctx, node, index, affine.scale.size)
        ctx.write_param(node, index, affine.scale * bias + affine.shift, dtype, "bias")


def convtranspose_out_channels(cin: int, cout_per_group: int, group: int) -> np.ndarray:
    """``o[i, j]``: the output channel that weight element ``[i, j]`` of a ConvTranspose writes."""
    cin_per_group = cin // group
    return (np.arange(cin)[:, None] // cin_per_group) * cout_per_group + np.arange(cout_per_group)[None, :]


def _absorb_convtranspose(ctx, node, affine: ChannelAffine) -> bool:
    w = ctx.array(node.inputs[1])
    out = convtranspose_out_channels(w.shape[0], w.shape[1], get_attr(node, "group", 1))
    scale = affine.scale[out].reshape(out.shape + (1,) * (w.ndim - 2))
    ctx.write_param(node, 1, scaled(w, scale), w.dtype, "weight")
    absorb_bias(ctx, node, 2, affine, w.dtype)
    return True


def _absorb_gemm(ctx, node, affine: ChannelAffine) -> bool:
    b = ctx.array(node.inputs[1])
    scale = affine.scale[:, None] if get_attr(node, "transB", 0) else affine.scale[None, :]
    ctx.write_param(node, 1, scaled(b, scale), b.dtype, "B")
    absorb_gemm_c(ctx, node, affine, b.dtype)
    return True


def absorb_gemm_c(ctx, node, affine: ChannelAffine, dtype) -> None:
    """``C' = β s C + t`` on a Gemm's C (created when absent and ``t ≠ 0``), then ``β = 1``."""
    beta = float(get_attr(node, "beta", 1.0))
    has_c = len(node.inputs) > 2 and bool(node.inputs[2])
    if has_c or affine.has_shift:
        c = ctx.array(node.inputs[2]).astype(np.float64) if has_c else np.zeros(1)
        ctx.write_param(node, 2, beta * c * affine.scale + affine.shift, dtype, "C")
        if beta != 1.0:
            ctx.set_attr(node, "beta", 1.0)


def _absorb_matmul(ctx, node, affine: ChannelAffine) -> bool:
    w = ctx.array(node.inputs[1])
    ctx.write_param(node, 1, scaled(w, affine.scale[None, :]), w.dtype, "weight")
    return not affine.has_shift


def _absorb_batchnorm(ctx, node, affine: ChannelAffine) -> bool:
    batchnorm_affine(ctx, node)  # refuses training form and broken parameters
    gamma, beta = ctx.array(node.inputs[1]), ctx.array(node.inputs[2])
    ctx.write_param(node, 1, affine.scale * gamma.astype(np.float64), gamma.dtype, "scale")
    ctx.write_param(node, 2, affine.scale * beta.astype(np.float64) + affine.shift, beta.dtype, "bias")
    return True


@dataclass(frozen=True)
class Absorber:
    """How one op type takes a per-channel affine of its output into its parameters."""

    channel: callable  # (ctx, node) -> Channel, or NotFoldable
    absorb: callable   # (ctx, node, affine) -> bool: True when the shift was absorbed too
    has_bias: bool


ABSORBERS = {
    "Conv": Absorber(_conv_channel, _absorb_conv, True),
    "ConvTranspose": Absorber(_convtranspose_channel, _absorb_convtranspose, True),
    "Gemm": Absorber(_gemm_channel, _absorb_gemm, True),
    "MatMul": Absorber(_matmul_channel, _absorb_matmul, False),
    "BatchNormalization": Absorber(_batchnorm_channel, _absorb_batchnorm, True),
}
