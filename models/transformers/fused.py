"""onnxruntime's fused transformer ops (domain ``com.microsoft``) as its optimizer writes them.

Every model here draws its weights in the order of its unfused twin, so with the same seed
``bert_fused_ort`` computes the same function as ``bert``, and ``llama_gqa_ort`` the same as
``llama`` built with ``hidden=128`` (fused ops need a head size that is a multiple of 16):

* ``bert_fused_ort``: EmbedLayerNormalization, Attention (one [E, 3E] QKV weight, raw int32
  attention mask), SkipLayerNormalization with the dense bias, BiasGelu;
* ``bert_mha_ort``: Gather/LayerNormalization embeddings, Q/K/V MatMuls into
  MultiHeadAttention with the packed [3E] bias and a key padding mask, FastGelu (the tanh
  approximation, so it differs from ``bert`` by that approximation);
* ``llama_gqa_ort``: SimplifiedLayerNormalization (which onnxruntime registers in the ONNX
  domain, so ``onnx.checker`` rejects it), SkipSimplifiedLayerNormalization carrying the
  residual sum, GroupQueryAttention with RoPE inside (``do_rotary``, cos/sin caches),
  ``seqlens_k`` and ``total_sequence_length`` computed from ``attention_mask``.

Input layouts and attributes follow the contrib-op schemas of onnxruntime (``ContribOperators.md``).
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto

from models.builder import BIAS_STD
from models.transformers.bert import (BERT, BERT_LN_EPSILON, BertConfig, bert_embeddings, bert_inputs, bert_outputs,
                                      bert_tables)
from models.transformers.blocks import RMS_EPSILON, norm_params
from models.transformers.common import MS_DOMAIN, ORT_STYLE, TransformerBuilder
from models.transformers.llama import LlamaConfig, embed, llama_config, rope_tables, swiglu
from models.transformers.registry import register

#: the small Llama of the fused form: head size 16, as GroupQueryAttention's rotary kernel needs
LLAMA_ORT_HIDDEN = 128


def skip_layer_norm(b: TransformerBuilder, x: str, skip: str, hidden: int, bias: str) -> str:
    """LayerNorm(x + skip + bias) as one SkipLayerNormalization (scope ``LayerNorm``)."""
    with b.scope("LayerNorm"):
        gamma, beta = norm_params(b, hidden)
    return b.node("SkipLayerNormalization", [x, skip, gamma, beta, bias], domain=MS_DOMAIN,
                  epsilon=BERT_LN_EPSILON)


def matmul_then_bias(b: TransformerBuilder, x: str, fin: int, fout: int) -> tuple[str, str]:
    """(MatMul with ``<scope>.weight``, the ``<scope>.bias`` a fused op adds)."""
    weight = b.param("weight", (fin, fout), (1.0 / fin) ** 0.5)
    return b.node("MatMul", [x, weight]), b.bias("bias", fout)


def packed_qkv(b: TransformerBuilder, hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """query, key, value weights and biases drawn as ``bert`` draws them, concatenated."""
    weights, biases = [], []
    for _ in ("query", "key", "value"):
        weights.append(b.draw((hidden, hidden), (1.0 / hidden) ** 0.5))
        biases.append(b.draw((hidden,), BIAS_STD))
    return np.concatenate(weights, axis=1), np.concatenate(biases)


def fused_attention(b: TransformerBuilder, cfg: BertConfig, h: str, mask: str) -> str:
    """com.microsoft Attention with the [E, 3E] weight and [3E] bias (scope ``self``)."""
    with b.scope("self"):
        weight, bias = packed_qkv(b, cfg.hidden)
        with b.scope("qkv"):
            inputs = [h, b.buffer("weight", weight), b.buffer("bias", bias), mask]
        return b.node("Attention", inputs, domain=MS_DOMAIN, num_heads=cfg.heads)


def multi_head_attention(b: TransformerBuilder, cfg: BertConfig, h: str, mask: str) -> str:
    """Q/K/V MatMuls into com.microsoft MultiHeadAttention with the packed bias (scope ``self``)."""
    with b.scope("self"):
        projected, biases = [], []
        for name in ("query", "key", "value"):
            with b.scope(name):
                weight = b.param("weight", (cfg.hidden, cfg.hidden), (1.0 / cfg.hidden) ** 0.5)
                biases.append(b.draw((cfg.hidden,), BIAS_STD))
                projected.append(b.node("MatMul", [h, weight]))
        bias = b.buffer("qkv_bias", np.concatenate(biases))
        return b.node("MultiHeadAttention", [*projected, bias, mask], domain=MS_DOMAIN, num_heads=cfg.heads)


def fused_bert_layer(b: TransformerBuilder, cfg: BertConfig, h: str, mask: str, attend, gelu_op: str) -> str:
    with b.scope("attention"):
        context = attend(b, cfg, h, mask)
        with b.scopes("output", "dense"):
            projected, bias = matmul_then_bias(b, context, cfg.hidden, cfg.hidden)
        with b.scope("output"):
            h = skip_layer_norm(b, projected, h, cfg.hidden, bias)
    with b.scopes("intermediate", "dense"):
        inner = b.node(gelu_op, list(matmul_then_bias(b, h, cfg.hidden, cfg.intermediate)), domain=MS_DOMAIN)
    with b.scope("output"):
        with b.scope("dense"):
            projected, bias = matmul_then_bias(b, inner, cfg.intermediate, cfg.hidden)
        return skip_layer_norm(b, projected, h, cfg.hidden, bias)


def embed_layer_norm(b: TransformerBuilder, cfg: BertConfig, ids: str, types: str) -> str:
    """com.microsoft EmbedLayerNormalization of int32 ids (scope ``embeddings``)."""
    with b.scope("embeddings"):
        word, position, segment = bert_tables(b, cfg)
        with b.scope("LayerNorm"):
            gamma, beta = norm_params(b, cfg.hidden)
    ids32, types32 = b.cast(ids, TensorProto.INT32), b.cast(types, TensorProto.INT32)
    embedded, _mask_index = b.node("EmbedLayerNormalization", [ids32, types32, word, position, segment, gamma, beta],
                                   n_out=2, domain=MS_DOMAIN, epsilon=BERT_LN_EPSILON)
    return embedded


def fused_bert(b: TransformerBuilder, size: str, attention: str) -> None:
    cfg = BERT[size]
    b.use_domain(MS_DOMAIN)
    ids, mask, types = bert_inputs(b)
    if attention == "Attention":
        h, attend, gelu_op = embed_layer_norm(b, cfg, ids, types), fused_attention, "BiasGelu"
    else:
        with b.scope("embeddings"):
            h = bert_embeddings(b, cfg, ids, types)
        attend, gelu_op = multi_head_attention, "FastGelu"
    mask32 = b.cast(mask, TensorProto.INT32)
    for index in range(cfg.layers):
        with b.scopes("encoder", f"layer.{index}"):
            h = fused_bert_layer(b, cfg, h, mask32, attend, gelu_op)
    bert_outputs(b, h, cfg.hidden)


@register("bert_fused_ort", (ORT_STYLE,))
def bert_fused_ort(b: TransformerBuilder, size: str) -> None:
    """BERT as onnxruntime fuses it: EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu."""
    fused_bert(b, size, "Attention")


@register("bert_mha_ort", (ORT_STYLE,))
def bert_mha_ort(b: TransformerBuilder, size: str) -> None:
    """BERT with com.microsoft MultiHeadAttention, SkipLayerNormalization and FastGelu."""
    fused_bert(b, size, "MultiHeadAttention")


def gqa_lengths(b: TransformerBuilder, mask: str) -> tuple[str, str]:
    """(``seqlens_k`` = sum(mask) - 1 as int32 [B], ``total_sequence_length`` as an int32 scalar)."""
    summed = b.node("ReduceSum", [mask, b.ints([1])], keepdims=0)
    seqlens = b.cast(b.binary("Sub", summed, b.const(np.int64(1), np.int64)), TensorProto.INT32)
    total = b.node("Gather", [b.unary("Shape", mask), b.const(np.int64(1), np.int64)], axis=0)
    return seqlens, b.cast(total, TensorProto.INT32)


def group_query_attention(b: TransformerBuilder, cfg: LlamaConfig, x: str, lengths, caches) -> str:
    """q/k/v MatMuls into com.microsoft GroupQueryAttention (RoPE inside), o_proj (scope ``self_attn``)."""
    projected = []
    for name, heads in (("q_proj", cfg.heads), ("k_proj", cfg.kv_heads), ("v_proj", cfg.kv_heads)):
        with b.scope(name):
            weight = b.param("weight", (cfg.hidden, heads * cfg.head_dim), (1.0 / cfg.hidden) ** 0.5)
            projected.append(b.node("MatMul", [x, weight]))
    context = b.node("GroupQueryAttention", [*projected, "", "", *lengths, *caches], domain=MS_DOMAIN,
                     num_heads=cfg.heads, kv_num_heads=cfg.kv_heads, do_rotary=1)
    with b.scope("o_proj"):
        weight = b.param("weight", (cfg.hidden, cfg.hidden), (1.0 / cfg.hidden) ** 0.5)
        return b.node("MatMul", [context, weight])


def skip_rms_norm(b: TransformerBuilder, x: str, residual: str, hidden: int) -> tuple[str, str]:
    """(RMSNorm(x + residual), x + residual) from one SkipSimplifiedLayerNormalization."""
    weight = b.param_uniform("weight", (hidden,), 0.5, 1.5)
    normed, _, _, summed = b.node("SkipSimplifiedLayerNormalization", [x, residual, weight], n_out=4,
                                  domain=MS_DOMAIN, epsilon=RMS_EPSILON)
    return normed, summed


@register("llama_gqa_ort", (ORT_STYLE,))
def llama_gqa_ort(b: TransformerBuilder, size: str, **overrides) -> None:
    """Llama as onnxruntime fuses it: (Skip)SimplifiedLayerNormalization, GroupQueryAttention with rotary."""
    cfg = llama_config(size, **{"hidden": LLAMA_ORT_HIDDEN, **overrides})
    b.use_domain(MS_DOMAIN)
    ids, mask = b.token_input("input_ids"), b.token_input("attention_mask")
    with b.scope("model"):
        h = embed(b, cfg, ids)
        lengths = gqa_lengths(b, mask)
        with b.scope("rotary_emb"):
            caches = [b.buffer(leaf, table) for leaf, table in
                      zip(("cos_cache", "sin_cache"), rope_tables(cfg.head_dim, cfg.positions, cfg.rope_theta))]
        with b.scopes("layers.0", "input_layernorm"):
            weight = b.param_uniform("weight", (cfg.hidden,), 0.5, 1.5)
            x = b.node("SimplifiedLayerNormalization", [h, weight], axis=-1, epsilon=RMS_EPSILON)
        for index in range(cfg.layers):
            with b.scope(f"layers.{index}"):
                with b.scope("self_attn"):
                    attended = group_query_attention(b, cfg, x, lengths, caches)
                with b.scope("post_attention_layernorm"):
                    x, h = skip_rms_norm(b, attended, h, cfg.hidden)
                with b.scope("mlp"):
                    down = swiglu(b, cfg, x)
            last = index + 1 == cfg.layers
            with b.scopes("norm") if last else b.scopes(f"layers.{index + 1}", "input_layernorm"):
                x, h = skip_rms_norm(b, down, h, cfg.hidden)
    with b.scope("lm_head"):
        weight = b.param("weight", (cfg.hidden, cfg.vocab), (1.0 / cfg.hidden) ** 0.5)
    b.graph_output(b.node("MatMul", [x, weight]), "logits", [b.batch, b.sequence, cfg.vocab])
