"""A Whisper-style audio encoder (the Hugging Face ``WhisperEncoder`` layout), both export styles.

Input ``input_features`` [batch, mels, frames] (frames static, as Whisper's fixed 30 s window);
output ``last_hidden_state`` [batch, frames / 2, hidden]. Two Conv1d with erf GELU (the second
with stride 2), a Transpose to tokens, the sinusoidal ``embed_positions`` added, pre-LN blocks
whose attention scales the query projection (``q_proj`` bias, ``k_proj`` without bias), and a
final LayerNorm. The ``sequence`` keyword of the builder does not apply (the token count is
``frames / 2``).

torchscript: computed head reshapes, LayerNorm decomposed below opset 17; dynamo: constant
reshapes and LayerNormalization.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from models.transformers.blocks import (Scores, attention, layer_norm, linear, merge_heads, mlp, pre_norm_block,
                                        split_heads)
from models.transformers.common import HeadsConfig, STYLES, TransformerBuilder
from models.transformers.registry import register


@dataclass(frozen=True)
class WhisperConfig(HeadsConfig):
    mels: int
    frames: int
    layers: int
    ffn: int

    @property
    def tokens(self) -> int:
        return (self.frames + 1) // 2


WHISPER = {"small": WhisperConfig(mels=8, frames=16, hidden=32, heads=4, layers=2, ffn=64),
           "base": WhisperConfig(mels=80, frames=3000, hidden=512, heads=8, layers=6, ffn=2048)}


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> np.ndarray:
    """Whisper's position table: [sin | cos] of ``position * max_timescale^(-i / (channels/2 - 1))``."""
    increment = math.log(max_timescale) / (channels // 2 - 1)
    inverse = np.exp(-increment * np.arange(channels // 2, dtype=np.float64))
    scaled = np.arange(length, dtype=np.float64)[:, None] * inverse[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1).astype(np.float32)


def conv1d(b: TransformerBuilder, x: str, cin: int, cout: int, stride: int) -> str:
    """Conv1d kernel 3, padding 1, with bias (``<scope>.weight`` [cout, cin, 3])."""
    weight = b.param("weight", (cout, cin, 3), math.sqrt(2.0 / (3 * cin)))
    return b.node("Conv", [x, weight, b.bias("bias", cout)], kernel_shape=[3], strides=[stride], pads=[1, 1])


def whisper_attention(b: TransformerBuilder, cfg: WhisperConfig, x: str) -> str:
    """q_proj(x) * D^-0.5, k_proj (no bias), v_proj, attention, out_proj (scope ``self_attn``)."""
    with b.scope("q_proj"):
        q = b.mul(linear(b, x, cfg.hidden, cfg.hidden), b.scalar(cfg.head_dim ** -0.5))
    with b.scope("k_proj"):
        k = linear(b, x, cfg.hidden, cfg.hidden, bias=False)
    with b.scope("v_proj"):
        v = linear(b, x, cfg.hidden, cfg.hidden)
    q, k, v = (split_heads(b, t, cfg.heads, cfg.head_dim, cfg.tokens) for t in (q, k, v))
    context = attention(b, q, k, v, cfg.head_dim, Scores(scale="none"))
    context = merge_heads(b, context, cfg.hidden, cfg.tokens)
    with b.scope("out_proj"):
        return linear(b, context, cfg.hidden, cfg.hidden)


def encoder_layer(b: TransformerBuilder, cfg: WhisperConfig, h: str) -> str:
    return pre_norm_block(b, h, lambda x: layer_norm(b, x, cfg.hidden), lambda x: whisper_attention(b, cfg, x),
                          lambda x: mlp(b, x, cfg.hidden, cfg.ffn, b.gelu, ("fc1", "fc2")),
                          ("self_attn_layer_norm", "self_attn", "final_layer_norm", None))


@register("whisper_encoder", STYLES, sizes=("small", "base"))
def whisper_encoder(b: TransformerBuilder, size: str, **overrides) -> None:
    """Whisper encoder: Conv1d + GELU (x2, stride 2), sinusoidal positions, pre-LN blocks."""
    cfg = replace(WHISPER[size], **overrides)
    features = b.float_input("input_features", [cfg.mels, cfg.frames])
    with b.scope("conv1"):
        x = b.gelu(conv1d(b, features, cfg.mels, cfg.hidden, 1))
    with b.scope("conv2"):
        x = b.gelu(conv1d(b, x, cfg.hidden, cfg.hidden, 2))
    with b.scope("embed_positions"):
        positions = b.buffer("weight", sinusoids(cfg.tokens, cfg.hidden))
    h = b.add(b.transpose(x, [0, 2, 1]), positions)
    for index in range(cfg.layers):
        with b.scope(f"layers.{index}"):
            h = encoder_layer(b, cfg, h)
    with b.scope("layer_norm"):
        h = layer_norm(b, h, cfg.hidden)
    b.graph_output(h, "last_hidden_state", [b.batch, cfg.tokens, cfg.hidden])
