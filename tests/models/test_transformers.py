"""The transformer exports of ``models.transformers``: valid, run in onnxruntime, equal an
independent numpy forward pass of their architecture, and carry the structure of their export style."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from models.transformers import build_transformer
from models.transformers.fused import LLAMA_ORT_HIDDEN
from models.transformers.llama import LLAMA
from tests.helpers import transformer_reference as ref
from tests.helpers.onnxrt import relative_error, run
from tests.helpers.transformer_cases import (BATCH, CASES, MAX_RELATIVE_ERROR, SAME_FUNCTION_ATOL, SAME_FUNCTION_RTOL,
                                             SEQUENCE, assert_matches_reference, check, feeds_for)


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
