"""GPT-2 (the Hugging Face ``GPT2LMHeadModel`` layout) in the TorchScript and dynamo forms.

Input ``input_ids`` (int64, [batch, sequence]); output ``logits`` [batch, sequence, vocab].
Token + position embeddings, pre-LN blocks whose fused ``c_attn`` (one MatMul + bias to 3E) is
Split into Q/K/V, a causal mask (the per-layer lower-triangular ``attn.bias`` buffer sliced to
the sequence length, applied with Where), tanh-approximation GELU, final LayerNorm and an LM
head tied to the token embedding (``lm_head.weight`` holds ``wte`` transposed, as the exporter
folds it).

torchscript: positions from ``Range(0, S)``, two Slices of the mask buffer, computed reshapes,
decomposed LayerNorm below opset 17. dynamo: the position table sliced directly, one Slice of
the mask on two axes, constant reshapes, LayerNormalization (Gelu(tanh) at opset 20+).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import numpy_helper

from models.transformers.blocks import (Scores, attention, embedding_table, gelu_tanh, layer_norm, linear,
                                        merge_heads, mlp, pre_norm_block, sliced_square, split_heads)
from models.transformers.common import HeadsConfig, STYLES, TransformerBuilder
from models.transformers.registry import register

TOKEN_STD, POSITION_STD = 1.0, 0.5


@dataclass(frozen=True)
class Gpt2Config(HeadsConfig):
    layers: int
    vocab: int
    positions: int


GPT2 = {"small": Gpt2Config(hidden=32, heads=4, layers=2, vocab=100, positions=16),
        "base": Gpt2Config(hidden=768, heads=12, layers=12, vocab=50257, positions=1024)}


def gpt2_embeddings(b: TransformerBuilder, cfg: Gpt2Config, ids: str) -> tuple[str, str]:
    """(wte(ids) + wpe(positions), the ``wte.weight`` table)."""
    token_table = embedding_table(b, "wte", cfg.vocab, cfg.hidden, TOKEN_STD)
    position_table = embedding_table(b, "wpe", cfg.positions, cfg.hidden, POSITION_STD)
    sequence = b.sequence_of(ids)
    if b.torchscript:
        limit = b.node("Gather", [b.unary("Shape", ids), b.const(np.int64(1), np.int64)], axis=0)
        if isinstance(sequence, int):
            limit = b.const(np.int64(sequence), np.int64)
        start, delta = b.const(np.int64(0), np.int64), b.const(np.int64(1), np.int64)
        position_ids = b.unsqueeze(b.node("Range", [start, limit, delta]), [0])
        positions = b.node("Gather", [position_table, position_ids], axis=0)
    else:
        positions = b.slice_to(position_table, sequence, axis=0)
    return b.add(b.node("Gather", [token_table, ids], axis=0), positions), token_table


def causal_attention(b: TransformerBuilder, cfg: Gpt2Config, x: str) -> str:
    """c_attn, Split into Q/K/V, causal attention with Where, c_proj (scope ``attn``)."""
    with b.scope("c_attn"):
        fused = linear(b, x, cfg.hidden, 3 * cfg.hidden)
    q, k, v = (split_heads(b, part, cfg.heads, cfg.head_dim)
               for part in b.split(fused, [cfg.hidden] * 3, axis=2))
    table = np.tril(np.ones((cfg.positions, cfg.positions), dtype=bool))[None, None]
    keep = sliced_square(b, b.buffer("bias", table), b.sequence_of(q, axis=2), (2, 3))
    context = merge_heads(b, attention(b, q, k, v, cfg.head_dim, Scores(scale="div", keep=keep)), cfg.hidden)
    with b.scope("c_proj"):
        return linear(b, context, cfg.hidden, cfg.hidden)


def gpt2_block(b: TransformerBuilder, cfg: Gpt2Config, h: str) -> str:
    def feed_forward(x: str) -> str:
        return mlp(b, x, cfg.hidden, 4 * cfg.hidden, lambda y: gelu_tanh(b, y), ("c_fc", "c_proj"))

    return pre_norm_block(b, h, lambda x: layer_norm(b, x, cfg.hidden), lambda x: causal_attention(b, cfg, x),
                          feed_forward, ("ln_1", "attn", "ln_2", "mlp"))


@register("gpt2", STYLES, sizes=("small", "base"))
def gpt2(b: TransformerBuilder, size: str) -> None:
    """GPT-2 LM: fused c_attn Split into Q/K/V, causal Where mask, tanh GELU, tied LM head."""
    cfg = GPT2[size]
    ids = b.token_input("input_ids")
    with b.scope("transformer"):
        h, token_table = gpt2_embeddings(b, cfg, ids)
        for index in range(cfg.layers):
            with b.scope(f"h.{index}"):
                h = gpt2_block(b, cfg, h)
        with b.scope("ln_f"):
            h = layer_norm(b, h, cfg.hidden)
    tied = next(t for t in b.initializers if t.name == token_table)
    with b.scope("lm_head"):
        head = b.buffer("weight", np.ascontiguousarray(numpy_helper.to_array(tied).T))
    b.graph_output(b.node("MatMul", [h, head]), "logits", [b.batch, b.sequence, cfg.vocab])
