"""Llama (the Hugging Face ``LlamaForCausalLM`` layout) in the TorchScript and dynamo forms.

Inputs ``input_ids`` and ``position_ids`` (int64, [batch, sequence]); output ``logits``
[batch, sequence, vocab]. Pre-norm blocks with RMSNorm, RoPE (the ``rotary_emb`` cos/sin tables
gathered by position, ``rotate_half`` as Slice/Neg/Concat), grouped-query attention (8 query
heads, 4 KV heads by default; ``llama_mqa``: 1 KV head) whose ``repeat_kv`` is
Unsqueeze -> Expand -> Reshape, an additive causal mask sliced from a constant table, SwiGLU MLP
(``down(silu(gate(x)) * up(x))``), no biases.

torchscript: RMSNorm with Div, the Expand size and every reshape computed from Shape at run
time. dynamo: RMSNorm with Reciprocal (the RMSNormalization op at opset 23), Expand by the
constant [1, 1, n_rep, 1, 1], constant reshapes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from models.transformers.blocks import (Scores, attention, causal_additive_table, embedding_table, linear,
                                        merge_heads, pre_norm_block, rms_norm, sliced_square, split_heads)
from models.transformers.common import HeadsConfig, INT64_MAX, STYLES, RunSize, Size, TransformerBuilder
from models.transformers.registry import register

EMBEDDING_STD = 1.0


@dataclass(frozen=True)
class LlamaConfig(HeadsConfig):
    kv_heads: int
    layers: int
    intermediate: int
    vocab: int
    positions: int
    rope_theta: float = 10000.0
    #: how repeat_kv is written: ``expand`` (Unsqueeze -> Expand -> Reshape, as both exporters
    #: write it), ``expand_shape`` (the same with every size read from Shape and the head count
    #: multiplied at run time, as torch.onnx traces ``x.shape``), ``tile`` (Unsqueeze -> Tile ->
    #: Reshape) or ``gather`` (``index_select`` of the key/value heads, repeat_interleave style)
    repeat_kv: str = "expand"


LLAMA = {"small": LlamaConfig(hidden=64, heads=8, kv_heads=4, layers=2, intermediate=96, vocab=100, positions=16),
         "base": LlamaConfig(hidden=768, heads=12, kv_heads=4, layers=12, intermediate=2048, vocab=32000,
                             positions=2048)}


def rope_tables(head_dim: int, positions: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of ``position * theta^(-2i/D)``, [positions, head_dim / 2] (one half)."""
    inverse = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = np.arange(positions, dtype=np.float64)[:, None] * inverse[None, :]
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


@dataclass(frozen=True)
class Rope:
    """[B, 1, S, D] cos and sin of the positions (computed once, shared by every layer)."""
    cos: str
    sin: str


def rope_inputs(b: TransformerBuilder, cfg: LlamaConfig, position_ids: str) -> Rope:
    """Gather the ``rotary_emb`` cos/sin tables [positions, D] by ``position_ids``, Unsqueeze axis 1."""
    cos, sin = rope_tables(cfg.head_dim, cfg.positions, cfg.rope_theta)
    gathered = []
    with b.scope("rotary_emb"):
        for leaf, half in (("cos_cached", cos), ("sin_cached", sin)):
            table = b.buffer(leaf, np.concatenate([half, half], axis=1))
            gathered.append(b.unsqueeze(b.node("Gather", [table, position_ids], axis=0), [1]))
    return Rope(*gathered)


def rotate_half(b: TransformerBuilder, x: str, head_dim: int) -> str:
    """Concat(-x[..., D/2:], x[..., :D/2]) with two Slices, a Neg and a Concat."""
    half = head_dim // 2
    axis, end = ([3], INT64_MAX) if b.torchscript else ([-1], head_dim)
    first = b.node("Slice", [x, b.ints([0]), b.ints([half]), b.ints(axis)])
    second = b.node("Slice", [x, b.ints([half]), b.ints([end]), b.ints(axis)])
    return b.concat([b.unary("Neg", second), first], axis=-1)


def apply_rope(b: TransformerBuilder, x: str, rope: Rope, head_dim: int) -> str:
    return b.add(b.mul(x, rope.cos), b.mul(rotate_half(b, x, head_dim), rope.sin))


def repeat_kv(b: TransformerBuilder, x: str, kv_heads: int, n_rep: int, head_dim: int, form: str = "expand") -> str:
    """[B, KV, S, D] -> Unsqueeze -> Expand [B, KV, n_rep, S, D] -> Reshape [B, KV * n_rep, S, D]
    (query head j reads key/value head j // n_rep); ``form`` as :class:`LlamaConfig` says."""
    if n_rep == 1:
        return x
    if form == "gather":
        index = np.repeat(np.arange(kv_heads, dtype=np.int64), n_rep)
        return b.node("Gather", [x, b.const(index, np.int64)], axis=1)
    if form == "expand_shape":
        return _repeat_kv_from_shape(b, x, n_rep)
    unsqueezed = b.unsqueeze(x, [2])
    if form == "tile":
        expanded = b.node("Tile", [unsqueezed, b.ints([1, 1, n_rep, 1, 1])])
    elif b.torchscript:
        target = b.shape_tensor([b.batch_of(x), kv_heads, n_rep, b.sequence_of(x, 2), head_dim])
        expanded = b.node("Expand", [unsqueezed, target])
    else:
        expanded = b.node("Expand", [unsqueezed, b.ints([1, 1, n_rep, 1, 1])])
    batch = b.batch_of(x) if b.torchscript else b.batch_of(expanded)
    return b.reshape_to(expanded, [batch, kv_heads * n_rep, b.sequence_of(x, 2), head_dim])


def _repeat_kv_from_shape(b: TransformerBuilder, x: str, n_rep: int) -> str:
    """repeat_kv as torch.onnx traces it: every size is ``Shape(x)[k]``, the head count of the
    result ``Shape(x)[1] * n_rep``."""
    sizes = [b.run_size(RunSize(x, k)) for k in range(4)]
    target = b.concat([sizes[0], sizes[1], b.ints([n_rep]), sizes[2], sizes[3]], axis=0)
    expanded = b.node("Expand", [b.unsqueeze(x, [2]), target])
    heads = b.node("Mul", [sizes[1], b.ints([n_rep])])
    return b.node("Reshape", [expanded, b.concat([sizes[0], heads, sizes[2], sizes[3]], axis=0)])


def project_heads(b: TransformerBuilder, cfg: LlamaConfig, x: str) -> tuple[str, str, str]:
    """q_proj, k_proj, v_proj (no bias), each split into heads [B, heads, S, D]."""
    heads = []
    for name, count in (("q_proj", cfg.heads), ("k_proj", cfg.kv_heads), ("v_proj", cfg.kv_heads)):
        with b.scope(name):
            heads.append(split_heads(b, linear(b, x, cfg.hidden, count * cfg.head_dim, bias=False),
                                     count, cfg.head_dim))
    return heads[0], heads[1], heads[2]


def eager_attention(b: TransformerBuilder, cfg: LlamaConfig, x: str, rope: Rope, mask: str) -> str:
    """Q/K/V, RoPE, repeat_kv, decomposed attention, o_proj (scope ``self_attn``)."""
    q, k, v = project_heads(b, cfg, x)
    q, k = apply_rope(b, q, rope, cfg.head_dim), apply_rope(b, k, rope, cfg.head_dim)
    n_rep = cfg.heads // cfg.kv_heads
    k, v = (repeat_kv(b, t, cfg.kv_heads, n_rep, cfg.head_dim, cfg.repeat_kv) for t in (k, v))
    context = attention(b, q, k, v, cfg.head_dim, Scores(scale="mul", additive=mask))
    with b.scope("o_proj"):
        return linear(b, merge_heads(b, context, cfg.hidden), cfg.hidden, cfg.hidden, bias=False)


def swiglu(b: TransformerBuilder, cfg: LlamaConfig, x: str) -> str:
    """down_proj(silu(gate_proj(x)) * up_proj(x)) (scope ``mlp``)."""
    with b.scope("gate_proj"):
        gate = b.silu(linear(b, x, cfg.hidden, cfg.intermediate, bias=False))
    with b.scope("up_proj"):
        up = linear(b, x, cfg.hidden, cfg.intermediate, bias=False)
    with b.scope("down_proj"):
        return linear(b, b.mul(gate, up), cfg.intermediate, cfg.hidden, bias=False)


Attend = Callable[[TransformerBuilder, LlamaConfig, str], str]


def decoder_layer(b: TransformerBuilder, cfg: LlamaConfig, h: str, attend: Attend) -> str:
    return pre_norm_block(b, h, lambda x: rms_norm(b, x, cfg.hidden), lambda x: attend(b, cfg, x),
                          lambda x: swiglu(b, cfg, x),
                          ("input_layernorm", "self_attn", "post_attention_layernorm", "mlp"))


def embed(b: TransformerBuilder, cfg: LlamaConfig, ids: str) -> str:
    table = embedding_table(b, "embed_tokens", cfg.vocab, cfg.hidden, EMBEDDING_STD)
    return b.node("Gather", [table, ids], axis=0)


def lm_head(b: TransformerBuilder, cfg: LlamaConfig, h: str) -> None:
    """``model.norm`` then ``lm_head`` (no bias) as the ``logits`` output."""
    with b.scopes("model", "norm"):
        h = rms_norm(b, h, cfg.hidden)
    with b.scope("lm_head"):
        logits = linear(b, h, cfg.hidden, cfg.vocab, bias=False)
    b.graph_output(logits, "logits", [b.batch, b.sequence, cfg.vocab])


def causal_mask(b: TransformerBuilder, cfg: LlamaConfig, sequence: Size) -> str:
    """The ``causal_mask`` table [positions, positions] sliced to [S, S]."""
    return sliced_square(b, b.buffer("causal_mask", causal_additive_table(cfg.positions)), sequence, (0, 1))


#: ``prepare(b, cfg, input_ids, position_ids)`` builds what every layer shares (in scope
#: ``model``) and returns the ``attend`` function of the layers
Prepare = Callable[[TransformerBuilder, LlamaConfig, str, str], Attend]


def eager_prepare(b: TransformerBuilder, cfg: LlamaConfig, ids: str, position_ids: str) -> Attend:
    """RoPE cos/sin gathered once, the causal mask sliced once; layers use :func:`eager_attention`."""
    rope = rope_inputs(b, cfg, position_ids)
    mask = causal_mask(b, cfg, b.sequence_of(ids))
    return lambda b_, c, x: eager_attention(b_, c, x, rope, mask)


def llama_decoder(b: TransformerBuilder, cfg: LlamaConfig, prepare: Prepare = eager_prepare) -> None:
    """The whole model into ``b``: embeddings, layers, final norm, LM head."""
    ids, position_ids = b.token_input("input_ids"), b.token_input("position_ids")
    with b.scope("model"):
        h = embed(b, cfg, ids)
        attend = prepare(b, cfg, ids, position_ids)
        for index in range(cfg.layers):
            with b.scope(f"layers.{index}"):
                h = decoder_layer(b, cfg, h, attend)
    lm_head(b, cfg, h)


def llama_config(size: str, **overrides) -> LlamaConfig:
    return replace(LLAMA[size], **overrides)


@register("llama", STYLES, sizes=("small", "base"))
def llama(b: TransformerBuilder, size: str, **overrides) -> None:
    """Llama decoder: RMSNorm, RoPE, GQA (8 query / 4 KV heads) with repeat_kv, SwiGLU, no biases."""
    llama_decoder(b, llama_config(size, **overrides))


@register("llama_mqa", STYLES, sizes=("small", "base"), kv_heads=1)
def llama_mqa(b: TransformerBuilder, size: str, **overrides) -> None:
    """Llama with multi-query attention (one KV head, repeat_kv to every query head)."""
    llama_decoder(b, llama_config(size, **overrides))
