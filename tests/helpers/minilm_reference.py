"""Independent numpy forward passes of a BERT sentence encoder, straight from its safetensors tensors.

Written from the BERT and sentence-transformers definitions, not from the ONNX graph: float64
throughout, padded keys removed from the softmax by ``-inf`` (the graph adds the lowest float32),
GELU via ``scipy.special.erf``, pooling as a masked mean. :func:`first_layer_by_hand` repeats one
encoder layer for one unpadded sentence with explicit loops over heads and tokens.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import erf


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, epsilon: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * weight + bias


def _dense(w: dict, x: np.ndarray, key: str) -> np.ndarray:
    return x @ w[f"{key}.weight"].astype(np.float64).T + w[f"{key}.bias"]


def _norm(w: dict, x: np.ndarray, key: str, epsilon: float) -> np.ndarray:
    return _layer_norm(x, w[f"{key}.weight"], w[f"{key}.bias"], epsilon)


def embeddings(w: dict, input_ids: np.ndarray, epsilon: float) -> np.ndarray:
    """Word + position + token-type-0 embeddings, LayerNorm: ``[batch, sequence, hidden]``."""
    sequence = input_ids.shape[1]
    summed = (w["embeddings.word_embeddings.weight"][input_ids].astype(np.float64)
              + w["embeddings.position_embeddings.weight"][:sequence]
              + w["embeddings.token_type_embeddings.weight"][0])
    return _norm(w, summed, "embeddings.LayerNorm", epsilon)


def encoder_layer(w: dict, x: np.ndarray, mask: np.ndarray, key: str, heads: int, epsilon: float) -> np.ndarray:
    batch, sequence, hidden = x.shape
    size = hidden // heads

    def split(t: np.ndarray) -> np.ndarray:
        return t.reshape(batch, sequence, heads, size).transpose(0, 2, 1, 3)

    query, key_, value = (split(_dense(w, x, f"{key}.attention.self.{p}")) for p in ("query", "key", "value"))
    scores = query @ key_.transpose(0, 1, 3, 2) / math.sqrt(size)
    scores = np.where(mask[:, None, None, :] > 0, scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = (probs @ value).transpose(0, 2, 1, 3).reshape(batch, sequence, hidden)
    attended = _norm(w, _dense(w, context, f"{key}.attention.output.dense") + x,
                     f"{key}.attention.output.LayerNorm", epsilon)
    inner = _dense(w, attended, f"{key}.intermediate.dense")
    inner = 0.5 * inner * (1.0 + erf(inner / math.sqrt(2.0)))
    return _norm(w, _dense(w, inner, f"{key}.output.dense") + attended, f"{key}.output.LayerNorm", epsilon)


def sentence_embeddings(w: dict, input_ids: np.ndarray, mask: np.ndarray, *, layers: int, heads: int,
                        epsilon: float) -> np.ndarray:
    """Mean-pooled, L2-normalized sentence embeddings ``[batch, hidden]`` (float64)."""
    x = embeddings(w, input_ids, epsilon)
    for index in range(layers):
        x = encoder_layer(w, x, mask, f"encoder.layer.{index}", heads, epsilon)
    weights = mask[:, :, None].astype(np.float64)
    mean = (x * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


def first_layer_by_hand(w: dict, x: np.ndarray, heads: int, epsilon: float) -> np.ndarray:
    """Encoder layer 0 for one unpadded sentence ``x`` ``[sequence, hidden]``, head by head, token by token."""
    sequence, hidden = x.shape
    size = hidden // heads
    p = "encoder.layer.0"
    q, k, v = (_dense(w, x, f"{p}.attention.self.{name}") for name in ("query", "key", "value"))
    context = np.zeros((sequence, hidden))
    for head in range(heads):
        cols = slice(head * size, (head + 1) * size)
        for token in range(sequence):
            logits = np.array([q[token, cols] @ k[other, cols] for other in range(sequence)]) / math.sqrt(size)
            weights = np.exp(logits - logits.max())
            weights /= weights.sum()
            context[token, cols] = sum(weights[other] * v[other, cols] for other in range(sequence))
    attended = _norm(w, _dense(w, context, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm",
                     epsilon)
    inner = _dense(w, attended, f"{p}.intermediate.dense")
    inner = np.array([[0.5 * u * (1.0 + math.erf(u / math.sqrt(2.0))) for u in row] for row in inner])
    return _norm(w, _dense(w, inner, f"{p}.output.dense") + attended, f"{p}.output.LayerNorm", epsilon)
