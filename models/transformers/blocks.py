"""Transformer blocks as the exporters write them: dense layers, norms, activations, attention.

Every function builds inside the caller's scope, so parameters are named after the module path
(``<scope>.weight``). Dense weights of a ``MatMul`` are stored ``[in, out]`` (the exporter's
folded transpose); weights of a ``Gemm`` keep the torch layout ``[out, in]`` (``transB=1``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from onnx import TensorProto

from models.transformers.common import MASK_VALUE, Size, TransformerBuilder

LN_EPSILON = 1e-5
RMS_EPSILON = 1e-6


# ---------------------------------------------------------------------- dense layers
def linear(b: TransformerBuilder, x: str, fin: int, fout: int, *, bias: bool = True,
           gain: float = 1.0) -> str:
    """MatMul with ``<scope>.weight`` [fin, fout], then Add of ``<scope>.bias`` [fout]."""
    weight = b.param("weight", (fin, fout), math.sqrt(gain / fin))
    y = b.node("MatMul", [x, weight])
    return b.add(y, b.bias("bias", fout)) if bias else y


def gemm(b: TransformerBuilder, x: str, fin: int, fout: int) -> str:
    """Gemm(x, ``<scope>.weight`` [fout, fin], ``<scope>.bias``, transB=1) of a 2-D input.

    The weight is drawn [fin, fout] (as :func:`linear` draws it) and stored transposed, so a
    Gemm and a MatMul built from the same seed compute the same function.
    """
    drawn = b.draw((fin, fout), math.sqrt(1.0 / fin))
    weight = b.add_initializer(b.param_name("weight"), np.ascontiguousarray(drawn.T))
    return b.node("Gemm", [x, weight, b.bias("bias", fout)], alpha=1.0, beta=1.0, transB=1)


# ---------------------------------------------------------------------- norms
def norm_params(b: TransformerBuilder, dim: int) -> tuple[str, str]:
    """``<scope>.weight`` (around 1) and ``<scope>.bias`` of a LayerNorm."""
    return b.param_uniform("weight", (dim,), 0.5, 1.5), b.param("bias", (dim,), 0.2)


def layer_norm(b: TransformerBuilder, x: str, dim: int, eps: float = LN_EPSILON) -> str:
    """LayerNormalization over the last axis (opset 17+), else its decomposition."""
    gamma, beta = norm_params(b, dim)
    if b.opset >= 17:
        return b.node("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=eps)
    mean = b.reduce("ReduceMean", x, [-1], keepdims=True)
    centered = b.binary("Sub", x, mean)
    variance = b.reduce("ReduceMean", b.binary("Pow", centered, b.scalar(2.0)), [-1], keepdims=True)
    std = b.unary("Sqrt", b.add(variance, b.scalar(eps)))
    return b.add(b.mul(b.binary("Div", centered, std), gamma), beta)


def rms_norm(b: TransformerBuilder, x: str, dim: int, eps: float = RMS_EPSILON) -> str:
    """Llama's RMSNorm: ``x / sqrt(mean(x^2) + eps) * weight``.

    torchscript writes ``x * (1 / sqrt(...))`` with a Div, dynamo a Reciprocal; at opset 23
    dynamo writes the RMSNormalization op.
    """
    weight = b.param_uniform("weight", (dim,), 0.5, 1.5)
    if b.dynamo and b.opset >= 23:
        return b.node("RMSNormalization", [x, weight], axis=-1, epsilon=eps)
    variance = b.reduce("ReduceMean", b.binary("Pow", x, b.scalar(2.0)), [-1], keepdims=True)
    std = b.unary("Sqrt", b.add(variance, b.scalar(eps)))
    inverse = b.binary("Div", b.scalar(1.0), std) if b.torchscript else b.unary("Reciprocal", std)
    return b.mul(weight, b.mul(x, inverse))


def token_batch_norm(b: TransformerBuilder, x: str, channels: int) -> str:
    """BatchNorm1d over the channels of [B, T, C] tokens: Transpose, BatchNormalization, Transpose."""
    gamma, beta = norm_params(b, channels)
    mean = b.param("running_mean", (channels,), 0.2)
    var = b.param_uniform("running_var", (channels,), 0.5, 2.0)
    y = b.node("BatchNormalization", [b.transpose(x, [0, 2, 1]), gamma, beta, mean, var], epsilon=LN_EPSILON)
    return b.transpose(y, [0, 2, 1])


def token_norm(b: TransformerBuilder, x: str, dim: int, kind: str) -> str:
    """``layernorm``, ``batchnorm`` (per channel) or ``none`` over [B, T, C] tokens."""
    if kind == "layernorm":
        return layer_norm(b, x, dim, eps=1e-6)
    if kind == "batchnorm":
        return token_batch_norm(b, x, dim)
    if kind == "none":
        return x
    raise ValueError(f"norm must be layernorm, batchnorm or none, got {kind!r}")


# ---------------------------------------------------------------------- activations
def gelu_tanh(b: TransformerBuilder, x: str) -> str:
    """GPT-2's ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``; Gelu(tanh) at opset 20+."""
    if b.opset >= 20:
        return b.node("Gelu", [x], approximate="tanh")
    cube = b.mul(b.binary("Pow", x, b.scalar(3.0)), b.scalar(0.044715))
    inner = b.mul(b.add(x, cube), b.scalar(math.sqrt(2.0 / math.pi)))
    return b.mul(b.mul(x, b.scalar(0.5)), b.add(b.unary("Tanh", inner), b.scalar(1.0)))


# ---------------------------------------------------------------------- attention
def split_heads(b: TransformerBuilder, x: str, heads: int, head_dim: int, tokens: int | None = None) -> str:
    """[B, S, heads * head_dim] -> Reshape [B, S, heads, head_dim] -> Transpose -> [B, heads, S, D].

    ``tokens``: a static token count (else the builder's sequence dim).
    """
    sequence = b.sequence_of(x) if tokens is None else tokens
    y = b.reshape_to(x, [b.batch_of(x), sequence, heads, head_dim])
    return b.transpose(y, [0, 2, 1, 3])


def merge_heads(b: TransformerBuilder, context: str, hidden: int, tokens: int | None = None) -> str:
    """[B, H, S, D] -> Transpose -> [B, S, H, D] -> Reshape [B, S, hidden]."""
    y = b.transpose(context, [0, 2, 1, 3])
    sequence = b.sequence_of(y) if tokens is None else tokens
    return b.reshape_to(y, [b.batch_of(y), sequence, hidden])


@dataclass(frozen=True)
class Scores:
    """How the attention scores are scaled and masked.

    ``scale``: ``div`` (scores / sqrt(D)), ``mul`` (scores * D^-0.5), ``sqrt_both`` (q and k^T
    each times D^-0.25, torch's SDPA decomposition) or ``none`` (scaled elsewhere).
    ``additive``: a float mask added to the scores; ``keep``: a bool mask applied with Where.
    """
    scale: str = "div"
    additive: str | None = None
    keep: str | None = None


def attention(b: TransformerBuilder, q: str, k: str, v: str, head_dim: int, scores: Scores) -> str:
    """Decomposed attention of [B, H, S, D] heads: MatMul, scale, mask, Softmax, MatMul."""
    key_t = b.transpose(k, [0, 1, 3, 2])
    if scores.scale == "sqrt_both":
        root = b.scalar(head_dim ** -0.25)
        q, key_t = b.mul(q, root), b.mul(key_t, root)
    logits = b.node("MatMul", [q, key_t])
    if scores.scale == "div":
        logits = b.binary("Div", logits, b.scalar(math.sqrt(head_dim)))
    elif scores.scale == "mul":
        logits = b.mul(logits, b.scalar(head_dim ** -0.5))
    elif scores.scale not in ("none", "sqrt_both"):
        raise ValueError(f"unknown score scale {scores.scale!r}")
    if scores.keep is not None:
        logits = b.node("Where", [scores.keep, logits, b.scalar(MASK_VALUE)])
    if scores.additive is not None:
        logits = b.add(logits, scores.additive)
    return b.node("MatMul", [b.node("Softmax", [logits], axis=-1), v])


def additive_padding_mask(b: TransformerBuilder, mask: str) -> str:
    """[B, S] 0/1 attention mask -> [B, 1, 1, S] additive float mask ``(1 - m) * MASK_VALUE``."""
    if b.torchscript:
        expanded = b.unsqueeze(b.unsqueeze(mask, [1]), [2])
    else:
        expanded = b.unsqueeze(mask, [1, 2])
    inverted = b.binary("Sub", b.scalar(1.0), b.cast(expanded, TensorProto.FLOAT))
    return b.mul(inverted, b.scalar(MASK_VALUE))


def causal_additive_table(size: int) -> np.ndarray:
    """[size, size] float: 0 on and below the diagonal, MASK_VALUE above."""
    return np.triu(np.full((size, size), MASK_VALUE, np.float32), k=1)


def sliced_square(b: TransformerBuilder, table: str, end: Size, axes: tuple[int, int]) -> str:
    """``table`` cut to ``end`` on two axes: two Slices (torchscript) or one (dynamo)."""
    if b.torchscript:
        return b.slice_to(b.slice_to(table, end, axes[0]), end, axes[1])
    ends = b.shape_tensor([end, end])
    return b.node("Slice", [table, b.ints([0, 0]), ends, b.ints(list(axes))])


def embedding_table(b: TransformerBuilder, scope: str, rows: int, hidden: int, std: float) -> str:
    """``<scope>.weight`` [rows, hidden], the table a Gather reads."""
    with b.scope(scope):
        return b.param("weight", (rows, hidden), std)


Step = Callable[[str], str]


def pre_norm_block(b: TransformerBuilder, h: str, norm: Step, attend: Step, feed_forward: Step,
                   scopes: tuple[str, str, str, str | None]) -> str:
    """``h + attend(norm(h))``, then ``h + feed_forward(norm(h))``.

    ``scopes``: of the first norm, the attention, the second norm and the feed-forward (None:
    the feed-forward's layers sit directly in the block's scope).
    """
    first_norm, attention_scope, second_norm, feed_forward_scope = scopes
    with b.scope(first_norm):
        x = norm(h)
    with b.scope(attention_scope):
        h = b.add(h, attend(x))
    with b.scope(second_norm):
        x = norm(h)
    with b.scopes(*[name for name in (feed_forward_scope,) if name]):
        return b.add(h, feed_forward(x))


def mlp(b: TransformerBuilder, x: str, hidden: int, inner: int, act, names: tuple[str, str]) -> str:
    """``names[1](act(names[0](x)))``: two dense layers, each in its own scope."""
    with b.scope(names[0]):
        y = act(linear(b, x, hidden, inner))
    with b.scope(names[1]):
        return linear(b, y, inner, hidden)
