"""BERT (the Hugging Face ``BertModel`` layout) as the TorchScript and dynamo exporters write it.

Inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64, [batch, sequence]);
outputs ``last_hidden_state`` [batch, sequence, hidden] and ``pooler_output`` [batch, hidden].
Word, position and segment embeddings (Gather) are summed and layer-normed; the 0/1 attention
mask becomes an additive [B, 1, 1, S] mask; each layer has Q/K/V as MatMul + bias Add, heads
by Reshape [B, S, H, D] + Transpose, erf GELU, post-LN residuals.

torchscript: scores divided by sqrt(D), shapes computed from Shape, LayerNorm decomposed below
opset 17, position ids sliced from the ``embeddings.position_ids`` buffer. dynamo: q and k^T
each scaled by D^-0.25 (the SDPA decomposition), constant reshape targets, LayerNormalization,
the position table sliced directly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from models.transformers.blocks import (Scores, additive_padding_mask, attention, embedding_table, gemm, layer_norm,
                                        linear, merge_heads, split_heads)
from models.transformers.common import HeadsConfig, STYLES, TransformerBuilder
from models.transformers.registry import register

BERT_LN_EPSILON = 1e-12
EMBEDDING_STD = 0.7


@dataclass(frozen=True)
class BertConfig(HeadsConfig):
    layers: int
    intermediate: int
    vocab: int
    positions: int
    type_vocab: int = 2


BERT = {"small": BertConfig(hidden=32, heads=4, layers=2, intermediate=64, vocab=100, positions=16),
        "base": BertConfig(hidden=768, heads=12, layers=12, intermediate=3072, vocab=30522, positions=512)}


def bert_tables(b: TransformerBuilder, cfg: BertConfig) -> list[str]:
    """The word, position and token-type embedding tables."""
    return [embedding_table(b, scope, rows, cfg.hidden, EMBEDDING_STD) for scope, rows in
            (("word_embeddings", cfg.vocab), ("position_embeddings", cfg.positions),
             ("token_type_embeddings", cfg.type_vocab))]


def bert_embeddings(b: TransformerBuilder, cfg: BertConfig, ids: str, types: str) -> str:
    """word + segment + position embeddings, then LayerNorm (scope ``embeddings``)."""
    word_table, position_table, type_table = bert_tables(b, cfg)
    sequence = b.sequence_of(ids)
    if b.torchscript:
        buffer = b.buffer("position_ids", np.arange(cfg.positions, dtype=np.int64)[None])
        positions = b.node("Gather", [position_table, b.slice_to(buffer, sequence, axis=1)], axis=0)
    else:
        positions = b.slice_to(position_table, sequence, axis=0)
    summed = b.add(b.node("Gather", [word_table, ids], axis=0), b.node("Gather", [type_table, types], axis=0))
    summed = b.add(summed, positions)
    with b.scope("LayerNorm"):
        return layer_norm(b, summed, cfg.hidden, BERT_LN_EPSILON)


def self_attention(b: TransformerBuilder, x: str, hidden: int, heads: int, scores: Scores) -> str:
    """Q/K/V projections (scopes query, key, value), attention, heads merged back."""
    projected = []
    for name in ("query", "key", "value"):
        with b.scope(name):
            projected.append(split_heads(b, linear(b, x, hidden, hidden), heads, hidden // heads))
    return merge_heads(b, attention(b, *projected, hidden // heads, scores), hidden)


def dense_residual_norm(b: TransformerBuilder, x: str, residual: str, fin: int, hidden: int) -> str:
    """``LayerNorm(dense(x) + residual)`` (scopes dense and LayerNorm)."""
    with b.scope("dense"):
        y = linear(b, x, fin, hidden)
    with b.scope("LayerNorm"):
        return layer_norm(b, b.add(y, residual), hidden, BERT_LN_EPSILON)


Attend = Callable[[TransformerBuilder, str], str]


def bert_layer(b: TransformerBuilder, cfg: BertConfig, h: str, attend: Attend) -> str:
    """One post-LN layer; ``attend(b, x)`` builds the self-attention context (scope ``attention.self``)."""
    with b.scope("attention"):
        with b.scope("self"):
            context = attend(b, h)
        with b.scope("output"):
            h = dense_residual_norm(b, context, h, cfg.hidden, cfg.hidden)
    with b.scopes("intermediate", "dense"):
        inner = b.gelu(linear(b, h, cfg.hidden, cfg.intermediate))
    with b.scope("output"):
        return dense_residual_norm(b, inner, h, cfg.intermediate, cfg.hidden)


def pooler(b: TransformerBuilder, h: str, hidden: int) -> str:
    """tanh(dense(h[:, 0])) (scope ``pooler.dense``)."""
    with b.scope("pooler"):
        first = b.node("Gather", [h, b.const(np.int64(0), np.int64)], axis=1)
        with b.scope("dense"):
            return b.unary("Tanh", gemm(b, first, hidden, hidden))


def bert_inputs(b: TransformerBuilder) -> tuple[str, str, str]:
    return b.token_input("input_ids"), b.token_input("attention_mask"), b.token_input("token_type_ids")


def bert_outputs(b: TransformerBuilder, h: str, hidden: int) -> None:
    """``pooler_output`` and ``last_hidden_state``."""
    b.graph_output(pooler(b, h, hidden), "pooler_output", [b.batch, hidden])
    b.graph_output(h, "last_hidden_state", [b.batch, b.sequence, hidden])


@register("bert", STYLES, sizes=("small", "base"))
def bert(b: TransformerBuilder, size: str) -> None:
    """BERT encoder with pooler (post-LN, erf GELU, additive padding mask)."""
    cfg = BERT[size]
    ids, mask, types = bert_inputs(b)
    with b.scope("embeddings"):
        h = bert_embeddings(b, cfg, ids, types)
    scores = Scores(scale="div" if b.torchscript else "sqrt_both", additive=additive_padding_mask(b, mask))
    bert_encoder(b, cfg, h, lambda b_, x: self_attention(b_, x, cfg.hidden, cfg.heads, scores))


def bert_encoder(b: TransformerBuilder, cfg: BertConfig, h: str, attend: Attend) -> None:
    """The layers and the outputs."""
    for index in range(cfg.layers):
        with b.scopes("encoder", f"layer.{index}"):
            h = bert_layer(b, cfg, h, attend)
    bert_outputs(b, h, cfg.hidden)
