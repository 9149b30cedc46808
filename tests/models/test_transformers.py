"""The transformer exports of ``models.transformers``: valid, run in onnxruntime, equal an
independent numpy forward pass of their architecture, and carry the structure of their export style."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from models.transformers import STYLES, TRANSFORMERS, build_transformer
from models.transformers.bert import BERT
from models.transformers.fused import LLAMA_ORT_HIDDEN
from models.transformers.gpt2 import GPT2
from models.transformers.llama import LLAMA, llama_config
from models.transformers.vit import VIT
from models.transformers.whisper import WHISPER
from tests.helpers.onnxrt import relative_error, run
from tests.models import transformer_reference as ref

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


@pytest.mark.parametrize("name,style", CASES)
def test_valid_runs_and_matches_numpy_reference(name, style):
    model = build_transformer(name, style=style)
    check(model)
    assert_matches_reference(name, style, model)


# every opset where an op form changes: LayerNormalization 17, Gelu 20, RMSNormalization 23
@pytest.mark.parametrize("name,style,opset,new_op", [
    ("bert", "torchscript", 17, "LayerNormalization"), ("gpt2", "torchscript", 17, "LayerNormalization"),
    ("whisper_encoder", "torchscript", 17, "LayerNormalization"), ("vit", "torchscript", 17, "LayerNormalization"),
    ("bert", "dynamo", 20, "Gelu"), ("gpt2", "dynamo", 20, "Gelu"), ("vit_bn", "dynamo", 21, "Gelu"),
    ("whisper_encoder", "dynamo", 23, "Gelu"), ("llama", "dynamo", 23, "RMSNormalization"),
    ("llama_mqa", "torchscript", 17, "Expand")])
def test_other_opsets_match_reference(name, style, opset, new_op):
    model = build_transformer(name, style=style, opset=opset)
    check(model)
    assert model.opset_import[0].version == opset
    assert new_op in {n.op_type for n in model.graph.node}
    assert_matches_reference(name, style, model)


def test_reference_comparison_detects_a_changed_head():
    """Zeroing one query head in the model (not in the reference) must break the agreement."""
    model = build_transformer("llama", style="torchscript")
    weight = next(t for t in model.graph.initializer if t.name == "model.layers.1.self_attn.q_proj.weight")
    array = onnx.numpy_helper.to_array(weight).copy()
    expected = ref.llama(ref.weights_of(model), LLAMA["small"], feeds_for(model))["logits"]
    array[:, :LLAMA["small"].head_dim] = 0.0
    weight.CopyFrom(onnx.numpy_helper.from_array(array, weight.name))
    assert relative_error(expected, run(model, feeds_for(model))["logits"]) > 100 * MAX_RELATIVE_ERROR


# with one seed, every form of an architecture draws the same weights: same function
TWINS = [("bert", {"style": "torchscript"}, "bert", {"style": "dynamo"}),
         ("bert", {"style": "torchscript"}, "bert_fused_ort", {}),
         ("bert", {"style": "dynamo"}, "bert_attention23", {}),
         ("gpt2", {"style": "torchscript"}, "gpt2", {"style": "dynamo", "opset": 20}),
         ("vit_bn", {"style": "torchscript"}, "vit_bn", {"style": "dynamo"}),
         ("llama", {"style": "torchscript"}, "llama", {"style": "dynamo", "opset": 23}),
         ("llama", {"style": "torchscript"}, "llama_attention23", {}),
         ("llama", {"style": "dynamo", "hidden": LLAMA_ORT_HIDDEN}, "llama_gqa_ort", {}),
         ("whisper_encoder", {"style": "torchscript"}, "whisper_encoder", {"style": "dynamo"})]


@pytest.mark.parametrize("first,first_kw,second,second_kw", TWINS)
def test_forms_of_one_architecture_compute_the_same_function(first, first_kw, second, second_kw):
    models = build_transformer(first, **first_kw), build_transformer(second, **second_kw)
    padded = second != "llama_gqa_ort"
    feeds = {**feeds_for(models[0], padded=padded), **feeds_for(models[1], padded=padded)}
    if second == "llama_gqa_ort":  # GroupQueryAttention rotates by the token's index
        feeds["position_ids"] = np.broadcast_to(np.arange(SEQUENCE), (BATCH, SEQUENCE))
    outputs = [run(m, {vi.name: feeds[vi.name] for vi in m.graph.input}) for m in models]
    assert outputs[0].keys() == outputs[1].keys()
    for key in outputs[0]:
        np.testing.assert_allclose(outputs[1][key], outputs[0][key], rtol=SAME_FUNCTION_RTOL,
                                   atol=SAME_FUNCTION_ATOL, err_msg=key)
