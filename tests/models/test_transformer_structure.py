"""Structure of the transformer exports: the ops and shape forms that identify each export style,
head counts in the projection widths, symbolic dims, static dims, and the large-model writers."""
from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from models.transformers import build_transformer
from models.transformers.scale import LLAMA_1B, LLAMA_TINY, llama_parameters, transformer_chain, write_llama
from tests.helpers.onnxrt import relative_error, run, session
from tests.helpers import transformer_reference as ref
from tests.helpers.transformer_cases import CASES, MAX_RELATIVE_ERROR, feeds_for

L = 2  # layers of every small model
NORMS = 2 * L + 1  # two per layer and a final one (BERT: the embedding LayerNorm)
MS = "com.microsoft."
# per (name, style): counts of the ops that identify the architecture and its export style
IDENTIFYING_OPS = {
    ("bert", "torchscript"): {"LayerNormalization": 0, "ReduceMean": 2 * NORMS, "Erf": L, "Softmax": L,
                              "MatMul": 8 * L, "Div": NORMS + 2 * L, "Gemm": 1},
    ("bert", "dynamo"): {"LayerNormalization": NORMS, "ReduceMean": 0, "Erf": L, "Softmax": L, "MatMul": 8 * L,
                         "Div": L, "Gemm": 1},
    ("gpt2", "torchscript"): {"Split": L, "Where": L, "Tanh": L, "Range": 1, "Slice": 2 * L, "LayerNormalization": 0},
    ("gpt2", "dynamo"): {"Split": L, "Where": L, "Tanh": L, "Range": 0, "Slice": L + 1, "LayerNormalization": NORMS},
    ("llama", "torchscript"): {"Expand": 2 * L, "Div": NORMS, "Reciprocal": 0, "Neg": 2 * L, "Sigmoid": L},
    ("llama", "dynamo"): {"Expand": 2 * L, "Div": 0, "Reciprocal": NORMS, "Neg": 2 * L, "Sigmoid": L},
    ("llama_mqa", "torchscript"): {"Expand": 2 * L, "Div": NORMS, "Neg": 2 * L},
    ("llama_mqa", "dynamo"): {"Expand": 2 * L, "Reciprocal": NORMS, "Neg": 2 * L},
    ("vit", "torchscript"): {"Conv": 1, "ConstantOfShape": 1, "Where": 1, "Expand": 1, "Split": L, "Gemm": L + 1,
                             "Slice": 0, "ReduceMean": 2 * NORMS, "LayerNormalization": 0},
    ("vit", "dynamo"): {"Conv": 1, "ConstantOfShape": 0, "Expand": 1, "Split": 0, "Slice": 3 * L, "Gemm": 1,
                        "LayerNormalization": NORMS},
    ("vit_bn", "torchscript"): {"BatchNormalization": NORMS, "ReduceMean": 0, "Split": L, "Gemm": L + 1},
    ("vit_bn", "dynamo"): {"BatchNormalization": NORMS, "LayerNormalization": 0, "Slice": 3 * L, "Gemm": 1},
    ("vit_nonorm", "torchscript"): {"BatchNormalization": 0, "ReduceMean": 0, "Split": L},
    ("vit_nonorm", "dynamo"): {"BatchNormalization": 0, "LayerNormalization": 0, "Slice": 3 * L},
    ("whisper_encoder", "torchscript"): {"Conv": 2, "Erf": 2 + L, "LayerNormalization": 0, "ReduceMean": 2 * NORMS},
    ("whisper_encoder", "dynamo"): {"Conv": 2, "Erf": 2 + L, "LayerNormalization": NORMS, "Shape": 0},
    ("bert_fused_ort", "ort"): {MS + "EmbedLayerNormalization": 1, MS + "Attention": L,
                                MS + "SkipLayerNormalization": 2 * L, MS + "BiasGelu": L, "MatMul": 3 * L,
                                "Softmax": 0},
    ("bert_mha_ort", "ort"): {MS + "MultiHeadAttention": L, MS + "FastGelu": L, MS + "SkipLayerNormalization": 2 * L,
                              "LayerNormalization": 1, "MatMul": 6 * L, "Softmax": 0},
    ("llama_gqa_ort", "ort"): {MS + "GroupQueryAttention": L, MS + "SkipSimplifiedLayerNormalization": 2 * L,
                               "SimplifiedLayerNormalization": 1, "Softmax": 0, "Expand": 0},
    ("bert_attention23", "dynamo"): {"Attention": L, "Softmax": 0, "Expand": 1, "LayerNormalization": NORMS},
    ("llama_attention23", "dynamo"): {"Attention": L, "RotaryEmbedding": 2 * L, "RMSNormalization": NORMS,
                                      "Softmax": 0, "Expand": 0},
}
COMPUTED_RESHAPES = {"bert", "gpt2", "llama", "llama_mqa", "whisper_encoder"}


def op_counts(model: onnx.ModelProto) -> Counter:
    return Counter((n.domain + "." if n.domain else "") + n.op_type for n in model.graph.node)


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in model.graph.node for out in node.output}


def ancestor_ops(model: onnx.ModelProto, tensor: str) -> set[str]:
    """Op types of every node upstream of ``tensor`` (iterative walk)."""
    producer, seen, ops, stack = producers(model), set(), set(), [tensor]
    while stack:
        node = producer.get(stack.pop())
        if node is not None and node.name not in seen:
            seen.add(node.name)
            ops.add(node.op_type)
            stack.extend(node.input)
    return ops


def initializer(model: onnx.ModelProto, name: str) -> np.ndarray:
    return numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == name))


@pytest.mark.parametrize("name,style", CASES)
def test_identifying_op_counts(name, style):
    counts = op_counts(build_transformer(name, style=style))
    assert {op: counts[op] for op in IDENTIFYING_OPS[name, style]} == IDENTIFYING_OPS[name, style]


# bert_attention23 has no Reshape: the Attention op takes the 3-D projections
@pytest.mark.parametrize("name,style", [c for c in CASES if c[1] in ("torchscript", "dynamo")
                                        and c[0] != "bert_attention23"])
def test_reshape_targets_follow_the_style(name, style):
    model = build_transformer(name, style=style)
    producer, constants = producers(model), {t.name for t in model.graph.initializer}
    targets = [node.input[1] for node in model.graph.node if node.op_type == "Reshape"]
    assert targets
    if style == "dynamo":
        assert all(target in constants for target in targets)
        assert not [n for n in model.graph.node if n.op_type == "Gather" and producer.get(n.input[0]) is not None
                    and producer[n.input[0]].op_type == "Shape"]
    elif name in COMPUTED_RESHAPES:
        assert all(producer[target].op_type == "Concat" and "Shape" in ancestor_ops(model, target)
                   for target in targets)
    else:  # torchscript ViT (torch's MHA): -1 for the batch; the patch flatten is computed
        literal = [initializer(model, t) for t in targets if t in constants]
        assert len(literal) == len(targets) - 1 and all(-1 in shape for shape in literal)


@pytest.mark.parametrize("name,n_rep", [("llama", 2), ("llama_mqa", 8)])
def test_repeat_kv_expand(name, n_rep):
    """torchscript: Expand sized from Shape at run time; dynamo: by the constant [1, 1, n_rep, 1, 1]."""
    traced = build_transformer(name, style="torchscript")
    expands = [n for n in traced.graph.node if n.op_type == "Expand"]
    assert expands and all({"Shape", "Gather", "Unsqueeze", "Concat"} <= ancestor_ops(traced, n.input[1])
                           for n in expands)
    dynamo = build_transformer(name, style="dynamo")
    shapes = [initializer(dynamo, n.input[1]).tolist() for n in dynamo.graph.node if n.op_type == "Expand"]
    assert shapes == [[1, 1, n_rep, 1, 1]] * (2 * L)


@pytest.mark.parametrize("name,style,hidden,kv_width", [
    ("llama", "torchscript", 64, 4 * 8), ("llama", "dynamo", 64, 4 * 8), ("llama_mqa", "dynamo", 64, 1 * 8),
    ("llama_attention23", "dynamo", 64, 4 * 8), ("llama_gqa_ort", "ort", 128, 4 * 16)])
def test_kv_heads_in_projection_widths(name, style, hidden, kv_width):
    """8 query heads; K/V projections as wide as their KV heads (GQA 4, MQA 1) times the head size."""
    model = build_transformer(name, style=style)
    for layer in range(L):
        prefix = f"model.layers.{layer}.self_attn."
        assert initializer(model, prefix + "q_proj.weight").shape == (hidden, hidden)
        assert initializer(model, prefix + "k_proj.weight").shape == (hidden, kv_width)
        assert initializer(model, prefix + "v_proj.weight").shape == (hidden, kv_width)
    for node in model.graph.node:
        if node.op_type == "GroupQueryAttention":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert (attrs["num_heads"], attrs["kv_num_heads"], attrs["do_rotary"]) == (8, 4, 1)


def dims(value_info: onnx.ValueInfoProto) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("name,style", CASES)
def test_symbolic_and_static_dims(name, style):
    """Token inputs [batch, sequence]; per-token outputs [batch, sequence, ...] (Whisper's token
    count and ViT's are static); ``batch=2, sequence=8`` gives static dims and the same outputs."""
    model = build_transformer(name, style=style)
    has_tokens = any(vi.name == "input_ids" for vi in model.graph.input)
    for vi in model.graph.input:
        assert dims(vi)[0] == "batch"
        if vi.type.tensor_type.elem_type == onnx.TensorProto.INT64:
            assert dims(vi) == ["batch", "sequence"]
    for vi in model.graph.output:
        per_token = has_tokens and vi.name != "pooler_output"
        assert dims(vi)[0] == "batch" and (dims(vi)[1] == "sequence") == per_token
    static = build_transformer(name, style=style, batch=2, sequence=8)
    assert all(isinstance(d, int) for vi in [*static.graph.input, *static.graph.output] for d in dims(vi))
    feeds = feeds_for(model, padded=name != "llama_gqa_ort")
    symbolic_out, static_out = run(model, feeds), run(static, feeds)
    for key, value in symbolic_out.items():
        assert list(static_out[key].shape) == dims(next(o for o in static.graph.output if o.name == key))
        np.testing.assert_allclose(static_out[key], value, rtol=1e-5, atol=1e-6)


def test_names_follow_module_paths():
    model = build_transformer("bert", style="torchscript")
    names = {n.name for n in model.graph.node}
    assert "/encoder/layer.0/attention/self/query/MatMul_0" in names
    assert {"encoder.layer.1.attention.self.query.weight", "encoder.layer.1.output.LayerNorm.bias",
            "embeddings.word_embeddings.weight", "pooler.dense.weight"} <= {t.name for t in model.graph.initializer}


def test_tiny_llama_writer_streams_external_data(tmp_path):
    """The 1 B writer in miniature: external data on disk, loads, runs, equals the in-memory builder."""
    path, written = write_llama(tmp_path, LLAMA_TINY)
    data = tmp_path / "llama.onnx.data"
    assert data.stat().st_size == written > 0
    proto = onnx.load(str(path), load_external_data=False)
    external = [t for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert {t.name for t in external} >= {"model.embed_tokens.weight", "lm_head.weight"}
    assert sum(4 * int(np.prod(t.dims)) for t in external) == written
    model = onnx.load(str(path))
    feeds = feeds_for(model)
    names = [o.name for o in model.graph.output]
    outputs = dict(zip(names, session(str(path)).run(names, feeds)))
    expected = ref.llama(ref.weights_of(model), LLAMA_TINY, feeds)["logits"]
    assert relative_error(expected, outputs["logits"]) <= MAX_RELATIVE_ERROR
    fields = {f: getattr(LLAMA_TINY, f) for f in ("hidden", "heads", "kv_heads", "layers", "intermediate",
                                                  "vocab", "positions")}
    in_memory = run(build_transformer("llama", style="torchscript", **fields), feeds)
    np.testing.assert_array_equal(in_memory["logits"], outputs["logits"])


def test_llama_parameter_count():
    """The formula counts the built model's weights; the 1 B configuration has about 1.1 B."""
    fields = {f: getattr(LLAMA_TINY, f) for f in ("hidden", "heads", "kv_heads", "layers", "intermediate",
                                                  "vocab", "positions")}
    model = build_transformer("llama", style="dynamo", **fields)
    weights = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.name.endswith(".weight"))
    assert llama_parameters(LLAMA_TINY) == weights
    assert 1.0e9 <= llama_parameters(LLAMA_1B) <= 1.2e9


@pytest.mark.parametrize("nodes", [1000, 2500])
def test_chain_reaches_the_node_count(nodes):
    model = transformer_chain(nodes)
    per_layer = sum(n.name.startswith("/model/layers.0/") for n in model.graph.node)
    assert nodes <= len(model.graph.node) < nodes + per_layer
    logits = run(model, feeds_for(model))["logits"]
    assert logits.shape == (2, 8, 32) and np.isfinite(logits).all()

