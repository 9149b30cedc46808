"""Compensation and re-fit on a transformer MLP block (MatMul + Add bias, 3-D activations) with a
padded batch of token sequences, against a numpy computation of the same block.

    emb = table[input_ids]                    [batch, sequence, 8]  (the pad token's row is large)
    hidden = Relu(emb @ W1 + b1)              [batch, sequence, 12] (the pruned neurons)
    out = (hidden @ W2 + b2 + emb) * attention_mask [batch, sequence, 8]

Half of the 12 neurons go (ratio 0.5, fluctuation: Var(h_j)·‖W2[j, :]‖² over real tokens). With
compensation the removed neurons' mean over real tokens, μ_R, is folded into the bias:
``b2 + μ_R W2_R``; with the re-fit the removed neurons are regressed on the kept ones over real
tokens, ``h_R ≈ A h_K + c`` (ridge as documented in graphprune.compensation.means), and
``W2_K + Aᵀ W2_R``, ``b2 + c W2_R`` replace the kept weights and the bias.
"""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphprune import api
from graphprune.calibration.stats import REFIT_RIDGE
from tests.helpers.onnxrt import run

HIDDEN, NEURONS, VOCAB = 8, 12, 20
LENGTHS = (9, 4, 6, 2)
#: float32 graph against the float64 computation (re-fit matrices travel as float32, as in plans)
RTOL, ATOL = 2e-4, 2e-5


def _block(rng):
    table = rng.standard_normal((VOCAB, HIDDEN))
    table[0] = 6.0  # the pad token: far from every real token
    weights = {"table": table, "w1": rng.standard_normal((HIDDEN, NEURONS)), "b1": rng.standard_normal(NEURONS),
               "w2": rng.standard_normal((NEURONS, HIDDEN)) * rng.uniform(0.1, 2.0, (NEURONS, 1)),
               "b2": rng.standard_normal(HIDDEN)}
    weights = {k: v.astype(np.float32) for k, v in weights.items()}
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["emb"], name="embed", axis=0),
             helper.make_node("MatMul", ["emb", "w1"], ["h0"], name="up"),
             helper.make_node("Add", ["h0", "b1"], ["h1"], name="up_bias"),
             helper.make_node("Relu", ["h1"], ["hidden"], name="act"),
             helper.make_node("MatMul", ["hidden", "w2"], ["y0"], name="down"),
             helper.make_node("Add", ["y0", "b2"], ["y1"], name="down_bias"),
             helper.make_node("Add", ["y1", "emb"], ["y"], name="residual"),
             helper.make_node("Cast", ["attention_mask"], ["maskf"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["maskf", "axes"], ["mask3"], name="unsqueeze"),
             helper.make_node("Mul", ["y", "mask3"], ["out"], name="masked")]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
              for n in ("input_ids", "attention_mask")]
    initializers = [numpy_helper.from_array(v, k) for k, v in weights.items()]
    initializers.append(numpy_helper.from_array(np.array([2], np.int64), "axes"))
    graph = helper.make_graph(nodes, "block", inputs,
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "sequence", HIDDEN])],
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model, {k: v.astype(np.float64) for k, v in weights.items()}


def _padded_batch(rng, lengths) -> dict[str, np.ndarray]:
    ids = np.zeros((len(lengths), max(lengths)), np.int64)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(1, VOCAB, length)
    return {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)}


def _hidden(w, ids):
    return np.maximum(w["table"][ids] @ w["w1"] + w["b1"], 0.0)


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    model, weights = _block(rng)
    calib = _padded_batch(rng, LENGTHS)
    evaluation = _padded_batch(rng, (7, 3))
    real = _hidden(weights, calib["input_ids"])[calib["attention_mask"] == 1]  # [real tokens, 12]
    scores = real.var(0) * (weights["w2"] ** 2).sum(1)
    removed = np.sort(np.argsort(scores)[:NEURONS // 2])
    kept = np.setdiff1d(np.arange(NEURONS), removed)
    return model, weights, calib, evaluation, real, removed, kept


def _expected_out(weights, evaluation, kept, w2_kept, b2):
    hidden = _hidden(weights, evaluation["input_ids"])[..., kept]
    residual = weights["table"][evaluation["input_ids"]]
    return (hidden @ w2_kept + b2 + residual) * evaluation["attention_mask"][..., None]


def _pruned(model, calib, **options):
    result = api.prune(model, ratio=0.5, importance="fluctuation", calib=calib, eval_split=0, compensate=True, **options)
    assert result.oracle.passed
    shapes = {t.name: tuple(t.dims) for t in result.model.graph.initializer}
    assert shapes["w1"] == (HIDDEN, NEURONS // 2) and shapes["w2"] == (NEURONS // 2, HIDDEN)
    assert [n.op_type for n in result.model.graph.node] == [n.op_type for n in model.graph.node]  # Add folded
    return result


def test_mean_compensation_folds_real_token_means_into_the_bias(case):
    model, w, calib, evaluation, real, removed, kept = case
    result = _pruned(model, calib)
    assert result.compensation.compensated == ["down"] and result.compensation.into_bias == 1
    bias = w["b2"] + real.mean(0)[removed] @ w["w2"][removed]
    expected = _expected_out(w, evaluation, kept, w["w2"][kept], bias)
    np.testing.assert_allclose(run(result.model, evaluation)["out"], expected, rtol=RTOL, atol=ATOL)
    padded_mean = _hidden(w, calib["input_ids"]).reshape(-1, NEURONS).mean(0)
    assert np.abs(padded_mean - real.mean(0))[removed].max() > 0.1  # padded tokens would change the bias


def test_refit_regresses_removed_neurons_on_kept_ones_over_real_tokens(case):
    model, w, calib, evaluation, real, removed, kept = case
    result = _pruned(model, calib, refit=True)
    assert result.compensation.refit == ["down"]
    mean, cov = real.mean(0), np.cov(real.T, bias=True)
    ckk = cov[np.ix_(kept, kept)]
    ridge = REFIT_RIDGE * np.trace(ckk) / kept.size
    a = np.linalg.solve(ckk + ridge * np.eye(kept.size), cov[np.ix_(kept, removed)]).T  # removed x kept
    c = mean[removed] - a @ mean[kept]
    expected = _expected_out(w, evaluation, kept, w["w2"][kept] + a.T @ w["w2"][removed],
                             w["b2"] + c @ w["w2"][removed])
    np.testing.assert_allclose(run(result.model, evaluation)["out"], expected, rtol=RTOL, atol=ATOL)
    plain = _expected_out(w, evaluation, kept, w["w2"][kept], w["b2"] + mean[removed] @ w["w2"][removed])
    original = _expected_out(w, evaluation, np.arange(NEURONS), w["w2"], w["b2"])
    assert np.abs(expected - original).mean() < np.abs(plain - original).mean()  # the re-fit helps here
