"""all-MiniLM-L6-v2 built from its real trained weights (``models.minilm``) and its text data.

Needs the ``minilm`` extra (the model package and ``tokenizers``); without it every test skips and
names the missing package. References: an independent float64 numpy forward pass of the same
safetensors tensors (``minilm_reference``), a head-by-head hand computation of layer 0, and the
first values of the embedding of "hello world" that a third party published.
"""
from __future__ import annotations

import collections

import numpy as np
import onnx
import pytest

from models.minilm import INPUTS, OUTPUT, MissingModelError, build_minilm, find_model_files, used_weights
from tests.helpers.onnxrt import session

from tests.helpers import minilm_reference as reference

HIDDEN, HEADS, LAYERS, INTERMEDIATE = 384, 12, 6, 1536  # all-MiniLM-L6-v2's published architecture
# float32 graph vs float64 reference: 8.7e-8 measured on SENTENCES (1.1e-7 on 64 pydoc sentences)
EMBEDDING_ATOL = 1e-5
HIDDEN_TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}  # hidden states up to ~8; 1.1e-6 measured
PROBES = {"embeddings": "/embeddings/LayerNorm/LayerNormalization_out0",
          "layer0": "/encoder/layer.0/output/LayerNorm/LayerNormalization_out0"}
# First 5 values of the normalized embedding of "hello world", as published by the fastembed project
# (qdrant/fastembed tests/test_text_onnx_embeddings.py) from its own ONNX export of this model.
HELLO_WORLD_PREFIX = np.array([-0.034478, 0.03102, 0.00673, 0.02611, -0.039362])
SENTENCES = ["A man is playing a guitar on the stage.", "The cat sleeps.",
             "How do I read a file line by line in Python?",
             "Interest rates were raised by the central bank again this quarter, surprising most analysts."]


@pytest.fixture(scope="module")
def files():
    try:
        return find_model_files()
    except MissingModelError as exc:
        pytest.fail(f"{exc} (.ci/tools installs it)", pytrace=False)


@pytest.fixture(scope="module")
def tokenizer(files):
    from graphprune.calibration.text import tokenizer_from_json
    return tokenizer_from_json(files.tokenizer_json())


@pytest.fixture(scope="module")
def weights(files):
    return files.weights()


@pytest.fixture(scope="module")
def model(files, tmp_path_factory):
    path = tmp_path_factory.mktemp("minilm") / "minilm.onnx"
    onnx.save(build_minilm(files), path)
    return onnx.load(path)


@pytest.fixture(scope="module")
def run(model):
    """Embeddings ``[batch, 384]`` of id/mask arrays, plus the probe tensors of ``PROBES``."""
    probed = onnx.ModelProto()
    probed.CopyFrom(model)
    probed.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in PROBES.values())
    sess = session(probed)

    def embed(ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        values = sess.run([OUTPUT, *PROBES.values()], dict(zip(INPUTS, (ids, mask))))
        return dict(zip([OUTPUT, *PROBES], values))
    return embed


def _encode(files, sentences, max_length=64):
    from models.sentences import encode_sentences
    arrays = encode_sentences(sentences, max_length, files)
    return arrays["input_ids"], arrays["attention_mask"]


def _reference(weights, ids, mask):
    return reference.sentence_embeddings(weights, ids, mask, layers=LAYERS, heads=HEADS, epsilon=1e-12)


def test_interface(model):
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == 17
    inputs = {vi.name: vi.type.tensor_type for vi in model.graph.input}
    assert list(inputs) == ["input_ids", "attention_mask"]
    for tensor_type in inputs.values():
        assert tensor_type.elem_type == onnx.TensorProto.INT64
        assert [d.dim_param for d in tensor_type.shape.dim] == ["batch", "sequence"]
    (output,) = model.graph.output
    dims = output.type.tensor_type.shape.dim
    assert output.name == "sentence_embedding" and output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert (dims[0].dim_param, dims[1].dim_value) == ("batch", HIDDEN)


def test_node_counts_and_names(model):
    counts = collections.Counter(node.op_type for node in model.graph.node)
    per_layer = {"MatMul": 3 + 2 + 1 + 2,  # Q/K/V, scores and context, output dense, two FFN dense
                 "Add": 3 + 1 + 2 + 2 + 1 + 1,  # Q/K/V/out/FFN biases, two residuals, mask, GELU's +1
                 "Reshape": 4, "Transpose": 4, "Softmax": 1, "Erf": 1, "LayerNormalization": 2}
    for op, count in per_layer.items():
        extra = {"Add": 2, "LayerNormalization": 1}.get(op, 0)  # the embeddings' two sums and LayerNorm
        assert counts[op] == LAYERS * count + extra, op
    nodes = {node.name: node for node in model.graph.node}
    initializers = {t.name: t for t in model.graph.initializer}
    for layer in range(LAYERS):
        for part in ("query", "key", "value"):
            scope = f"/encoder/layer.{layer}/attention/self/{part}"
            matmul, add = nodes[f"{scope}/MatMul"], nodes[f"{scope}/Add"]
            assert list(initializers[matmul.input[1]].dims) == [HIDDEN, HIDDEN]
            assert add.input[1] == matmul.output[0]
            assert list(initializers[add.input[0]].dims) == [HIDDEN]


def test_head_reshapes_are_computed_from_shape(model):
    producers = {out: node for node in model.graph.node for out in node.output}
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    tails = collections.Counter()
    for node in model.graph.node:
        if node.op_type == "Reshape":
            concat = producers[node.input[1]]
            assert concat.op_type == "Concat"
            assert [producers[name].op_type for name in concat.input[:2]] == ["Unsqueeze", "Unsqueeze"]
            tails[tuple(initializers[concat.input[2]].tolist())] += 1
    assert tails == {(HEADS, HIDDEN // HEADS): 3 * LAYERS, (HIDDEN,): LAYERS}


def test_parameters_are_the_safetensors_tensors(model, weights):
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    used = used_weights(weights)
    for key, array in used.items():
        if key in initializers:
            np.testing.assert_array_equal(initializers[key], array, err_msg=key)
        else:  # a linear weight, stored transposed under its MatMul node's name
            scope = key.removesuffix(".weight").replace(".", "/").replace("layer/", "layer.")
            np.testing.assert_array_equal(initializers[f"/{scope}/MatMul.weight"], array.T, err_msg=key)
    float_total = sum(a.size for a in weights.values() if a.dtype == np.float32)
    pooler = sum(a.size for k, a in weights.items() if k.startswith("pooler."))
    graph_total = sum(a.size for a in initializers.values() if a.dtype == np.float32 and a.size > 1)
    assert graph_total == float_total - pooler == sum(a.size for a in used.values() if a.dtype == np.float32)
    assert abs(float_total / 1e6 - 22.7) < 0.05  # the model card's 22.7 M parameters
    assert pooler == HIDDEN * HIDDEN + HIDDEN


def test_matches_numpy_reference_with_padding(run, weights, files, tokenizer):
    ids, mask = _encode(files, SENTENCES)
    assert mask.sum(1).min() < ids.shape[1]  # rows really are padded
    got = run(ids, mask)[OUTPUT]
    expected = _reference(weights, ids, mask)
    assert np.abs(got - expected).max() <= EMBEDDING_ATOL
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    shortest = int(np.argmin(mask.sum(1)))
    length = int(mask[shortest].sum())
    alone = run(ids[shortest:shortest + 1, :length], mask[shortest:shortest + 1, :length])[OUTPUT]
    np.testing.assert_allclose(alone[0], got[shortest], atol=1e-5)  # padding changes nothing


def test_embeddings_and_first_layer_by_hand(run, weights, files, tokenizer):
    ids, mask = _encode(files, SENTENCES[1:2])
    probes = run(ids, mask)
    embedded = reference.embeddings(weights, ids, 1e-12)[0]
    np.testing.assert_allclose(probes["embeddings"][0], embedded, **HIDDEN_TOLERANCE)
    by_hand = reference.first_layer_by_hand(weights, probes["embeddings"][0].astype(np.float64), HEADS, 1e-12)
    np.testing.assert_allclose(probes["layer0"][0], by_hand, **HIDDEN_TOLERANCE)


def test_published_embedding_of_hello_world(run, files, tokenizer):
    ids, mask = _encode(files, ["hello world"])
    assert ids[0].tolist() == [tokenizer.token_to_id(t) for t in ("[CLS]", "hello", "world", "[SEP]")]
    np.testing.assert_allclose(run(ids, mask)[OUTPUT][0, :5], HELLO_WORLD_PREFIX, atol=1e-5)


def test_paraphrases_are_closer_than_unrelated_sentences(run, files, tokenizer):
    pairs = [("A man is playing a guitar.", "Someone plays an acoustic guitar."),
             ("The weather is lovely and sunny today.", "It is a bright, warm day outside."),
             ("How do I open a file in Python?", "What is the way to read a file with Python?"),
             ("The stock market fell sharply this morning.", "Share prices dropped steeply early today.")]
    ids, mask = _encode(files, [s for pair in pairs for s in pair])
    vectors = run(ids, mask)[OUTPUT]
    similarity = vectors @ vectors.T
    paraphrase = [similarity[2 * i, 2 * i + 1] for i in range(len(pairs))]
    unrelated = [similarity[a, b] for a in range(len(ids)) for b in range(len(ids)) if a // 2 != b // 2]
    assert min(paraphrase) > max(unrelated)
    assert min(paraphrase) > 0.5 and max(unrelated) < 0.3


def test_sentence_sets_are_disjoint_and_deterministic():
    from models.sentences import MAX_WORDS, MIN_WORDS, calibration_and_evaluation, pydoc_sentences
    available = pydoc_sentences()
    assert len(available) == len(set(available)) > 1000
    assert all(MIN_WORDS <= len(s.split()) <= MAX_WORDS and s.endswith(".") for s in available)
    calibration, evaluation = calibration_and_evaluation(128, 300, seed=3)
    assert (len(calibration), len(evaluation)) == (128, 300)
    assert not set(calibration) & set(evaluation) and set(calibration + evaluation) <= set(available)
    assert calibration_and_evaluation(128, 300, seed=3) == (calibration, evaluation)
    assert calibration_and_evaluation(128, 300, seed=4)[0] != calibration
    with pytest.raises(ValueError, match="available"):
        calibration_and_evaluation(len(available), 1)


def test_split_sentences_on_known_text():
    from models.sentences import split_sentences
    text = ("The first sentence here has enough words to count. The second one also has plenty of words in it!\n"
            "Short one. It continues on the next line\nand ends with enough words here.\n\n"
            "This paragraph has a prompt line below it, so all of it is dropped.\n>>> x = 1\n\n"
            "The value of x_1 (default 0.5) is checked by f(x) == g(y) and h(z) != 3.")
    assert split_sentences(text) == ["The first sentence here has enough words to count.",
                                     "It continues on the next line and ends with enough words here."]


def test_tokenization_round_trips_with_padding(files, tokenizer):
    from models.sentences import calibration_and_evaluation
    sentences = calibration_and_evaluation(16, 4, seed=1)[0] + ["the cat sat on the mat."]
    ids, mask = _encode(files, sentences, max_length=128)  # 128: the shipped tokenizer's own truncation
    lengths = mask.sum(1)
    assert ids.dtype == mask.dtype == np.int64 and ids.shape == mask.shape == (len(sentences), lengths.max())
    pad = tokenizer.token_to_id("[PAD]")
    for row, sentence in enumerate(sentences):
        n = lengths[row]
        assert mask[row].tolist() == [1] * n + [0] * (ids.shape[1] - n)
        assert (ids[row, n:] == pad).all()
        assert ids[row, :n].tolist() == tokenizer.encode(sentence).ids[:n]
        assert (ids[row, 0], ids[row, n - 1]) == (tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]"))
    assert tokenizer.decode(ids[-1, :lengths[-1]].tolist()) == "the cat sat on the mat."
    ids, mask = _encode(files, sentences, max_length=8)
    assert ids.shape == (len(sentences), 8) and ids[0, -1] == tokenizer.token_to_id("[SEP]")
    assert tokenizer.padding["length"] == 128  # the shipped settings are left alone
