"""Exports with the ONNX ``Attention`` op (opset 23), as the dynamo exporter writes SDPA there.

* ``bert_attention23``: ``bert`` (dynamo style) whose self-attention is one ``Attention`` node on
  the 3-D Q/K/V projections (``q_num_heads = kv_num_heads = heads``), the additive padding mask
  expanded to [B, 1, S, S] (the op wants the query length on the mask);
* ``llama_attention23``: ``llama`` with RMSNormalization, the ``RotaryEmbedding`` op on 4-D
  heads (cos/sin caches [positions, D/2] indexed by ``position_ids``) and a causal ``Attention``
  on [B, heads, S, D] queries and [B, kv_heads, S, D] keys/values (GQA by the head counts).

Both draw their weights as their eager twins do, so with one seed they compute the same function.
"""
from __future__ import annotations

from models.transformers.bert import BERT, BertConfig, bert_embeddings, bert_encoder, bert_inputs
from models.transformers.blocks import additive_padding_mask, linear, merge_heads
from models.transformers.common import TransformerBuilder
from models.transformers.llama import (Attend, LlamaConfig, llama_config, llama_decoder, project_heads,
                                       rope_tables)
from models.transformers.registry import register

OPSET = 23


def padding_attention(b: TransformerBuilder, cfg: BertConfig, x: str, mask: str) -> str:
    """Q/K/V projections (scopes query, key, value) into one 3-D Attention node."""
    projected = []
    for name in ("query", "key", "value"):
        with b.scope(name):
            projected.append(linear(b, x, cfg.hidden, cfg.hidden))
    return b.node("Attention", [*projected, mask], q_num_heads=cfg.heads, kv_num_heads=cfg.heads)


@register("bert_attention23", ("dynamo",), default_opset=OPSET)
def bert_attention23(b: TransformerBuilder, size: str) -> None:
    """BERT whose attention is the ONNX Attention op (opset 23) with an additive padding mask."""
    if b.opset < OPSET:
        raise ValueError(f"bert_attention23 needs opset {OPSET} or later, got {b.opset}")
    cfg = BERT[size]
    ids, mask, types = bert_inputs(b)
    with b.scope("embeddings"):
        h = bert_embeddings(b, cfg, ids, types)
    additive = additive_padding_mask(b, mask)
    square = [b.batch_of(mask), 1, b.sequence_of(mask), b.sequence_of(mask)]
    additive = b.node("Expand", [additive, b.shape_tensor(square)])
    bert_encoder(b, cfg, h, lambda b_, x: padding_attention(b_, cfg, x, additive))


def rotary_attention(b: TransformerBuilder, cfg: LlamaConfig, x: str, position_ids: str,
                     caches: tuple[str, str]) -> str:
    """q/k/v heads, RotaryEmbedding on q and k, causal Attention, o_proj (scope ``self_attn``)."""
    q, k, v = project_heads(b, cfg, x)
    q, k = (b.node("RotaryEmbedding", [t, *caches, position_ids]) for t in (q, k))
    context = b.node("Attention", [q, k, v], is_causal=1)
    with b.scope("o_proj"):
        return linear(b, merge_heads(b, context, cfg.hidden), cfg.hidden, cfg.hidden, bias=False)


def rotary_prepare(b: TransformerBuilder, cfg: LlamaConfig, ids: str, position_ids: str) -> Attend:
    """The ``rotary_emb`` cos/sin caches [positions, D/2]; layers use :func:`rotary_attention`."""
    cos, sin = rope_tables(cfg.head_dim, cfg.positions, cfg.rope_theta)
    with b.scope("rotary_emb"):
        caches = (b.buffer("cos_cache", cos), b.buffer("sin_cache", sin))
    return lambda b_, c, x: rotary_attention(b_, c, x, position_ids, caches)


@register("llama_attention23", ("dynamo",), default_opset=OPSET)
def llama_attention23(b: TransformerBuilder, size: str, **overrides) -> None:
    """Llama at opset 23: RMSNormalization, RotaryEmbedding and the Attention op (GQA 8/4)."""
    if b.opset < OPSET:
        raise ValueError(f"llama_attention23 needs opset {OPSET} or later, got {b.opset}")
    llama_decoder(b, llama_config(size, **overrides), rotary_prepare)
