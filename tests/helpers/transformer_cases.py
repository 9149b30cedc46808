"""The transformer exports' numpy references, seeded feeds and checks (tests/models, tests/analysis)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from models.transformers import STYLES, TRANSFORMERS
from models.transformers.bert import BERT
from models.transformers.fused import LLAMA_ORT_HIDDEN
from models.transformers.gpt2 import GPT2
from models.transformers.llama import LLAMA, llama_config
from models.transformers.vit import VIT
from models.transformers.whisper import WHISPER
from tests.helpers import transformer_reference as ref
from tests.helpers.onnxrt import relative_error, run

BATCH, SEQUENCE = 2, 8
#: float32 onnxruntime against the float64 reference (measured: below 1e-6)
MAX_RELATIVE_ERROR = 1e-4
#: two float32 graphs of the same function (summation orders differ)
SAME_FUNCTION_RTOL, SAME_FUNCTION_ATOL = 1e-5, 1e-5
#: ops onnxruntime registers in the ONNX domain although the ONNX standard has none of that name
ORT_ONLY_DEFAULT_DOMAIN = {"SimplifiedLayerNormalization"}
CASES = [(name, style) for name in sorted(TRANSFORMERS) for style in STYLES[name]]


def reference(name: str, style: str):
    """The numpy forward pass of ``name`` as ``f(weights, feeds)``."""
    vit_norm = {"vit": "layernorm", "vit_bn": "batchnorm", "vit_nonorm": "none"}
    if name in vit_norm:
        return lambda w, f: ref.vit(w, VIT["small"], f, vit_norm[name], out_proj_gemm=style == "torchscript")
    table = {
        "bert": lambda w, f: ref.bert(w, BERT["small"], f),
        "bert_attention23": lambda w, f: ref.bert(w, BERT["small"], f),
        "bert_fused_ort": lambda w, f: ref.bert(ref.unpack_bert_fused(w, BERT["small"]), BERT["small"], f),
        "bert_mha_ort": lambda w, f: ref.bert(ref.unpack_bert_fused(w, BERT["small"]), BERT["small"], f,
                                              act=ref.gelu_tanh),
        "gpt2": lambda w, f: ref.gpt2(w, GPT2["small"], f),
        "llama": lambda w, f: ref.llama(w, LLAMA["small"], f),
        "llama_attention23": lambda w, f: ref.llama(w, LLAMA["small"], f),
        "llama_mqa": lambda w, f: ref.llama(w, llama_config("small", kv_heads=1), f),
        "llama_gqa_ort": lambda w, f: ref.llama(w, llama_config("small", hidden=LLAMA_ORT_HIDDEN), f),
        "whisper_encoder": lambda w, f: ref.whisper_encoder(w, WHISPER["small"], f),
    }
    return table[name]


def feeds_for(model: onnx.ModelProto, seed: int = 0, padded: bool = True) -> dict[str, np.ndarray]:
    """Seeded inputs: ids < 32, the second row's mask padded after 5 tokens, positions offset by 3."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in model.graph.input:
        symbolic = {"batch": BATCH, "sequence": SEQUENCE}
        dims = [d.dim_value or symbolic[d.dim_param] for d in vi.type.tensor_type.shape.dim]
        if vi.name == "input_ids":
            feeds[vi.name] = rng.integers(0, 32, dims)
        elif vi.name == "token_type_ids":
            feeds[vi.name] = (np.arange(dims[1]) >= dims[1] // 2).astype(np.int64)[None].repeat(dims[0], 0)
        elif vi.name == "attention_mask":
            feeds[vi.name] = np.ones(dims, np.int64)
            feeds[vi.name][1, 5:] = 0 if padded else 1
        elif vi.name == "position_ids":
            feeds[vi.name] = np.arange(dims[1])[None] + 3 * np.arange(dims[0])[:, None]
        else:
            feeds[vi.name] = rng.standard_normal(dims).astype(np.float32)
    return feeds


def model_feeds(name: str, model: onnx.ModelProto) -> dict[str, np.ndarray]:
    # GroupQueryAttention reads the mask as lengths of left-aligned sequences only (seqlens_k)
    return feeds_for(model, padded=name != "llama_gqa_ort")


def check(model: onnx.ModelProto) -> None:
    """onnx.checker with full_check; ORT-only ops of the ONNX domain must be the only complaint."""
    unknown = {n.op_type for n in model.graph.node if n.domain == "" and n.op_type in ORT_ONLY_DEFAULT_DOMAIN}
    if not unknown:
        onnx.checker.check_model(model, full_check=True)
        return
    with pytest.raises(onnx.checker.ValidationError, match="|".join(sorted(unknown))):
        onnx.checker.check_model(model, full_check=True)


def assert_matches_reference(name: str, style: str, model: onnx.ModelProto) -> dict[str, float]:
    feeds = model_feeds(name, model)
    outputs = run(model, feeds)
    expected = reference(name, style)(ref.weights_of(model), feeds)
    assert outputs.keys() == expected.keys()
    errors = {}
    for key, value in outputs.items():
        assert value.shape == expected[key].shape, key
        errors[key] = relative_error(expected[key], value)
        assert errors[key] <= MAX_RELATIVE_ERROR, f"{name} {style} {key}: relative error {errors[key]:.2e}"
    return errors
