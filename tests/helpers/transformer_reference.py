"""Plain numpy forward passes of the reference transformers, computed from a dict of weights.

Written from the architectures' definitions (Hugging Face / torchvision module semantics), not
from the ONNX graphs: positions, RoPE angles, causal masks and Whisper's sinusoids are computed
here, attention is one function for every variant, and everything runs in float64. Weights are
read by their module-path names (MatMul weights [in, out], Gemm weights [out, in]).
"""
from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import numpy_helper
from scipy.special import erf

Weights = dict[str, np.ndarray]


def weights_of(model: onnx.ModelProto) -> Weights:
    """Every initializer by name, floats as float64."""
    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {name: a.astype(np.float64) if a.dtype.kind == "f" else a for name, a in arrays.items()}


# ---------------------------------------------------------------------- elementary functions
def layer_norm(x: np.ndarray, w: Weights, prefix: str, eps: float) -> np.ndarray:
    centered = x - x.mean(-1, keepdims=True)
    normed = centered / np.sqrt((centered ** 2).mean(-1, keepdims=True) + eps)
    return normed * w[prefix + ".weight"] + w[prefix + ".bias"]


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    return x / np.sqrt((x ** 2).mean(-1, keepdims=True) + eps) * weight


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def dense(w: Weights, prefix: str, x: np.ndarray, bias: bool = True) -> np.ndarray:
    y = x @ w[prefix + ".weight"]
    return y + w[prefix + ".bias"] if bias else y


def attend(q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int, kv_heads: int,
           bias: np.ndarray | float = 0.0) -> np.ndarray:
    """Scaled dot-product attention of [B, S, heads * D] queries and [B, S, kv_heads * D] keys/values.

    Query head j reads KV head j // (heads / kv_heads); ``bias`` is added to the scores.
    """
    batch, length, width = q.shape
    dim = width // heads
    qh = q.reshape(batch, length, heads, dim).transpose(0, 2, 1, 3)
    kh, vh = (np.repeat(t.reshape(batch, length, kv_heads, dim).transpose(0, 2, 1, 3), heads // kv_heads, axis=1)
              for t in (k, v))
    probs = softmax(qh @ kh.transpose(0, 1, 3, 2) / math.sqrt(dim) + bias)
    return (probs @ vh).transpose(0, 2, 1, 3).reshape(batch, length, width)


def causal_bias(length: int) -> np.ndarray:
    return np.where(np.tril(np.ones((length, length), dtype=bool)), 0.0, -np.inf)


def padding_bias(mask: np.ndarray) -> np.ndarray:
    """[B, S] 0/1 -> [B, 1, 1, S] with -inf where the mask is 0."""
    return np.where(mask[:, None, None, :] > 0, 0.0, -np.inf)


# ---------------------------------------------------------------------- BERT
def bert(w: Weights, cfg, feeds: dict, act=gelu) -> dict[str, np.ndarray]:
    """BertModel: embeddings + LayerNorm, post-LN layers, tanh pooler on the first token."""
    ids, types = feeds["input_ids"], feeds["token_type_ids"]
    h = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][types]
         + w["embeddings.position_embeddings.weight"][: ids.shape[1]])
    h = layer_norm(h, w, "embeddings.LayerNorm", 1e-12)
    bias = padding_bias(feeds["attention_mask"])
    for index in range(cfg.layers):
        p = f"encoder.layer.{index}."
        q, k, v = (dense(w, p + "attention.self." + name, h) for name in ("query", "key", "value"))
        context = attend(q, k, v, cfg.heads, cfg.heads, bias)
        h = layer_norm(dense(w, p + "attention.output.dense", context) + h, w, p + "attention.output.LayerNorm", 1e-12)
        inner = act(dense(w, p + "intermediate.dense", h))
        h = layer_norm(dense(w, p + "output.dense", inner) + h, w, p + "output.LayerNorm", 1e-12)
    pooled = np.tanh(h[:, 0] @ w["pooler.dense.weight"].T + w["pooler.dense.bias"])
    return {"last_hidden_state": h, "pooler_output": pooled}


def unpack_bert_fused(w: Weights, cfg) -> Weights:
    """``bert`` names from the packed QKV weights and biases of the onnxruntime-fused forms."""
    out = dict(w)
    for index in range(cfg.layers):
        p = f"encoder.layer.{index}.attention.self."
        names = ("query", "key", "value")
        if p + "qkv.weight" in w:
            for name, part in zip(names, np.split(w[p + "qkv.weight"], 3, axis=1)):
                out[p + name + ".weight"] = part
        packed_bias = w.get(p + "qkv.bias", w.get(p + "qkv_bias"))
        for name, part in zip(names, np.split(packed_bias, 3)):
            out[p + name + ".bias"] = part
    return out


# ---------------------------------------------------------------------- GPT-2
def gpt2(w: Weights, cfg, feeds: dict) -> dict[str, np.ndarray]:
    """GPT2LMHeadModel: pre-LN causal blocks, tanh GELU, LM head tied to ``wte``."""
    ids = feeds["input_ids"]
    length = ids.shape[1]
    h = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][:length]
    for index in range(cfg.layers):
        p = f"transformer.h.{index}."
        fused = dense(w, p + "attn.c_attn", layer_norm(h, w, p + "ln_1", 1e-5))
        q, k, v = np.split(fused, 3, axis=-1)
        h = h + dense(w, p + "attn.c_proj", attend(q, k, v, cfg.heads, cfg.heads, causal_bias(length)))
        inner = gelu_tanh(dense(w, p + "mlp.c_fc", layer_norm(h, w, p + "ln_2", 1e-5)))
        h = h + dense(w, p + "mlp.c_proj", inner)
    h = layer_norm(h, w, "transformer.ln_f", 1e-5)
    return {"logits": h @ w["transformer.wte.weight"].T}


# ---------------------------------------------------------------------- Llama
def rotate(x: np.ndarray, heads: int, positions: np.ndarray, theta: float) -> np.ndarray:
    """RoPE on [B, S, heads * D]: dims (i, i + D/2) rotated by ``position * theta^(-2i/D)``."""
    batch, length, width = x.shape
    dim = width // heads
    angles = positions[..., None] * theta ** (-np.arange(0, dim, 2) / dim)   # [B, S, D/2]
    cos, sin = np.cos(angles)[:, :, None], np.sin(angles)[:, :, None]
    t = x.reshape(batch, length, heads, dim)
    first, second = t[..., : dim // 2], t[..., dim // 2:]
    return np.concatenate([first * cos - second * sin, second * cos + first * sin], -1).reshape(x.shape)


def llama(w: Weights, cfg, feeds: dict) -> dict[str, np.ndarray]:
    """LlamaForCausalLM: RMSNorm, RoPE, GQA, SwiGLU, no biases."""
    ids = feeds["input_ids"]
    length = ids.shape[1]
    positions = feeds.get("position_ids", np.broadcast_to(np.arange(length), ids.shape)).astype(np.float64)
    h = w["model.embed_tokens.weight"][ids]
    for index in range(cfg.layers):
        p = f"model.layers.{index}."
        x = rms_norm(h, w[p + "input_layernorm.weight"])
        q, k, v = (dense(w, p + f"self_attn.{name}_proj", x, bias=False) for name in "qkv")
        q, k = rotate(q, cfg.heads, positions, cfg.rope_theta), rotate(k, cfg.kv_heads, positions, cfg.rope_theta)
        h = h + dense(w, p + "self_attn.o_proj", attend(q, k, v, cfg.heads, cfg.kv_heads, causal_bias(length)),
                      bias=False)
        x = rms_norm(h, w[p + "post_attention_layernorm.weight"])
        gated = silu(dense(w, p + "mlp.gate_proj", x, bias=False)) * dense(w, p + "mlp.up_proj", x, bias=False)
        h = h + dense(w, p + "mlp.down_proj", gated, bias=False)
    return {"logits": dense(w, "lm_head", rms_norm(h, w["model.norm.weight"]), bias=False)}


# ---------------------------------------------------------------------- ViT
def token_norm(x: np.ndarray, w: Weights, prefix: str, kind: str) -> np.ndarray:
    """LayerNorm (eps 1e-6), per-channel BatchNorm in inference form (eps 1e-5), or nothing."""
    if kind == "layernorm":
        return layer_norm(x, w, prefix, 1e-6)
    if kind == "batchnorm":
        scale = w[prefix + ".weight"] / np.sqrt(w[prefix + ".running_var"] + 1e-5)
        return (x - w[prefix + ".running_mean"]) * scale + w[prefix + ".bias"]
    return x


def vit(w: Weights, cfg, feeds: dict, norm: str, out_proj_gemm: bool) -> dict[str, np.ndarray]:
    """torchvision VisionTransformer; ``out_proj_gemm``: the out-projection weight is [out, in]."""
    image = feeds["input"].astype(np.float64)
    batch, size = image.shape[0], cfg.patch
    grid = cfg.image // size
    patches = image.reshape(batch, 3, grid, size, grid, size).transpose(0, 2, 4, 1, 3, 5).reshape(batch, grid ** 2, -1)
    tokens = patches @ w["conv_proj.weight"].reshape(cfg.hidden, -1).T + w["conv_proj.bias"]
    cls = np.broadcast_to(w["class_token"], (batch, 1, cfg.hidden))
    h = np.concatenate([cls, tokens], axis=1) + w["encoder.pos_embedding"]
    for index in range(cfg.layers):
        p = f"encoder.layers.encoder_layer_{index}."
        x = token_norm(h, w, p + "ln_1", norm)
        q, k, v = np.split(dense(w, p + "self_attention.in_proj", x), 3, axis=-1)
        out_weight = w[p + "self_attention.out_proj.weight"]
        out_weight = out_weight.T if out_proj_gemm else out_weight
        context = attend(q, k, v, cfg.heads, cfg.heads)
        h = h + context @ out_weight + w[p + "self_attention.out_proj.bias"]
        x = token_norm(h, w, p + "ln_2", norm)
        h = h + dense(w, p + "mlp.3", gelu(dense(w, p + "mlp.0", x)))
    h = token_norm(h, w, "encoder.ln", norm)
    return {"logits": h[:, 0] @ w["heads.head.weight"].T + w["heads.head.bias"]}


# ---------------------------------------------------------------------- Whisper encoder
def conv1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """[B, Cin, L] * [Cout, Cin, 3], padding 1."""
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1)))
    length = (x.shape[2] + 2 - 3) // stride + 1
    windows = np.stack([padded[:, :, k: k + stride * (length - 1) + 1: stride] for k in range(3)], axis=-1)
    return np.einsum("bclk,ock->bol", windows, weight) + bias[None, :, None]


def sinusoid_positions(length: int, channels: int) -> np.ndarray:
    """Whisper's table: sin then cos of ``t / 10000^(i / (channels/2 - 1))``."""
    timescales = 10000.0 ** (np.arange(channels // 2) / (channels // 2 - 1))
    scaled = np.arange(length)[:, None] / timescales[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1)


def whisper_encoder(w: Weights, cfg, feeds: dict) -> dict[str, np.ndarray]:
    """WhisperEncoder: Conv1d + GELU twice (stride 2), sinusoids, pre-LN blocks, final LayerNorm."""
    x = gelu(conv1d(feeds["input_features"].astype(np.float64), w["conv1.weight"], w["conv1.bias"], 1))
    x = gelu(conv1d(x, w["conv2.weight"], w["conv2.bias"], 2))
    h = x.transpose(0, 2, 1) + sinusoid_positions(x.shape[2], cfg.hidden)
    for index in range(cfg.layers):
        p = f"layers.{index}."
        x = layer_norm(h, w, p + "self_attn_layer_norm", 1e-5)
        q = dense(w, p + "self_attn.q_proj", x)
        k = dense(w, p + "self_attn.k_proj", x, bias=False)
        v = dense(w, p + "self_attn.v_proj", x)
        h = h + dense(w, p + "self_attn.out_proj", attend(q, k, v, cfg.heads, cfg.heads))
        x = layer_norm(h, w, p + "final_layer_norm", 1e-5)
        h = h + dense(w, p + "fc2", gelu(dense(w, p + "fc1", x)))
    return {"last_hidden_state": layer_norm(h, w, "layer_norm", 1e-5)}
