"""Compensation: removed channels replaced by their calibration mean, folded into the consumers."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import numpy_helper

from graphprune.api import apply, plan, prune
from graphprune.compensation.apply import per_channel
from models.zoo import build
from tests.helpers.onnxrt import relative_error, run
from tests.helpers.planning import conv_chain, dense_chain, feed_list


def _constant_channel_conv(k: int, pad: int, seed: int = 0):
    """Channel 2 of the middle activation is relu(0 + 3) = 3 everywhere (its filter is zero)."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((4, 2, 1, 1)).astype(np.float32)
    w1[2] = 0.0
    b1 = np.array([0.1, -0.2, 3.0, 0.3], np.float32)
    w2 = rng.standard_normal((3, 4, k, k)).astype(np.float32)
    return conv_chain(w1, w2, b1, hw=8, pad=pad)


def _worst_error(a, b, feeds) -> float:
    return max(relative_error(run(a, f)["y"], run(b, f)["y"]) for f in feeds)


def _rms_error(a, b, feeds) -> float:
    diff = [run(a, f)["y"] - run(b, f)["y"] for f in feeds]
    return float(np.sqrt(np.mean(np.square(diff))))


@pytest.mark.parametrize("bias", [False, True])
def test_constant_channel_is_removed_exactly_through_a_1x1_conv(bias):
    model = _constant_channel_conv(1, 0)
    if bias:
        model.graph.node[-1].input.append("b2")
        model.graph.initializer.append(numpy_helper.from_array(np.ones(3, np.float32), "b2"))
    calib, evaluation = feed_list(model, 6, seed=1), feed_list(model, 3, seed=2)
    compensated = prune(model, ratio=0.25, importance="fluctuation", calib=calib, repair="mean", validate=True)
    kept = [t for t in compensated.model.graph.initializer if t.name == "w2"][0].dims[1]
    assert kept == 3
    assert compensated.compensation.compensated == ["conv2"] and not compensated.compensation.approximate
    assert compensated.compensation.into_bias == 1
    assert _worst_error(model, compensated.model, evaluation) < 1e-5
    plain = prune(model, ratio=0.25, importance="fluctuation", calib=calib, compensate=False, validate=False)
    assert _worst_error(model, plain.model, evaluation) > 1e-2
    assert len(compensated.model.graph.node) == len(model.graph.node), "the Add was folded into the bias"


def test_dense_consumer_without_bias_gets_one():
    rng = np.random.default_rng(1)
    w1 = rng.standard_normal((4, 3)).astype(np.float32)
    w1[1] = 0.0
    b1 = np.array([0.5, 2.0, -0.1, 0.2], np.float32)
    model = dense_chain(w1, b1, rng.standard_normal((4, 2)), batch=2)
    calib = feed_list(model, 5, seed=3)
    result = prune(model, ratio=0.25, importance="fluctuation", calib=calib, repair="mean")
    assert result.compensation.compensated == ["fc2"]
    assert result.oracle.passed
    assert _worst_error(model, result.model, feed_list(model, 3, seed=4)) < 1e-5


def test_padded_kxk_conv_is_approximated_at_the_borders():
    model = _constant_channel_conv(3, 1)
    calib, evaluation = feed_list(model, 6, seed=1), feed_list(model, 3, seed=2)
    compensated = prune(model, ratio=0.25, importance="fluctuation", calib=calib, repair="mean")
    plain = prune(model, ratio=0.25, importance="fluctuation", calib=calib, compensate=False, validate=False)
    assert "conv2" in compensated.compensation.approximate
    assert 0 < compensated.compensation.approximate["conv2"] < 1
    assert "approximated at padded borders" in compensated.compensation.summary_line()
    err_c, err_p = _rms_error(model, compensated.model, evaluation), _rms_error(model, plain.model, evaluation)
    assert err_c < 0.5 * err_p


def test_mean_output_is_preserved_for_linear_consumers():
    """Mean replacement keeps the calibration mean of every output of a 1x1 consumer exactly."""
    rng = np.random.default_rng(2)
    model = conv_chain(rng.standard_normal((6, 3, 1, 1)), rng.standard_normal((2, 6, 1, 1)), hw=5)
    calib = feed_list(model, 8, seed=5)
    result = prune(model, ratio=0.5, importance="activation", calib=calib, validate=False, eval_split=0)
    before = np.mean([run(model, f)["y"] for f in calib], axis=(0, 1, 3, 4))
    after = np.mean([run(result.model, f)["y"] for f in calib], axis=(0, 1, 3, 4))
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5)


def test_plan_carries_the_means_and_apply_reuses_them(tmp_path):
    model = _constant_channel_conv(1, 0)
    planned = plan(model, ratio=0.25, importance="fluctuation", repair="mean", calib=feed_list(model, 4, seed=1))
    entry = planned.plan.compensation["spaces"]
    assert len(entry) == 1 and entry[0]["tensor"] == "a" and entry[0]["positions"] == [2]
    assert entry[0]["mean"] == [pytest.approx(3.0)]
    path = planned.plan.save(tmp_path / "plan.json")
    applied = apply(model, path)  # no calibration data needed at apply time
    assert applied.compensation.compensated == ["conv2"]
    assert _worst_error(model, applied.model, feed_list(model, 2, seed=9)) < 1e-5


def test_per_channel_reduction():
    delta = np.broadcast_to(np.arange(3.0)[None, :, None, None], (1, 3, 4, 4)).copy()
    reduced, deviation = per_channel(delta, {1})
    assert reduced.shape == (1, 3, 1, 1) and deviation == 0.0
    delta[0, :, 0, 0] = 0.0  # a border position sees fewer taps
    reduced, deviation = per_channel(delta, {1})
    np.testing.assert_allclose(reduced[0, :, 0, 0], np.arange(3.0) * 15 / 16)
    assert 0 < deviation < 0.5


def test_compensated_zoo_model_matches_its_oracle():
    model = build("efficientnet")
    result = prune(model, ratio=0.3, importance="fluctuation", repair="mean", calib=feed_list(model, 3, seed=0))
    assert result.oracle.passed and result.compensation.compensated
    assert len(result.compensation.compensated) >= 10


def test_reconstruction_known_answer():
    from graphprune.compensation.means import reconstruction

    rng = np.random.default_rng(4)
    kept = rng.standard_normal((1000, 2))
    removed = kept @ np.array([[2.0], [-1.0]]) + 0.5      # x_R = 2 x_0 - x_1 + 0.5
    x = np.concatenate([kept, removed], axis=1)
    cov, mean = np.cov(x.T, bias=True), x.mean(axis=0)
    matrix, intercept = reconstruction(cov, mean, np.array([2]), np.array([0, 1]), ridge=1e-9)
    np.testing.assert_allclose(matrix, [[2.0, -1.0]], atol=1e-6)
    np.testing.assert_allclose(intercept, [0.5], atol=1e-6)


def test_refit_reconstructs_a_linear_combination_exactly(tmp_path):
    """Channel 3 = (channel 0 - 2 channel 1) / 10 + 1 and has the smallest weights: the re-fit removes it
    without changing the outputs; the mean alone cannot. The re-fit data survives the plan file."""
    rng = np.random.default_rng(6)
    w1 = rng.standard_normal((4, 3, 1, 1)).astype(np.float32)
    b1 = np.array([0.1, 0.2, -0.3, 0.0], np.float32)
    w1[3] = (w1[0] - 2 * w1[1]) / 10
    b1[3] = (b1[0] - 2 * b1[1]) / 10 + 1.0
    w2 = rng.standard_normal((2, 4, 1, 1)).astype(np.float32)
    w2[:, 3] = 0.1
    model = conv_chain(w1, w2, b1, act=None, hw=5)
    calib, evaluation = feed_list(model, 6, seed=1), feed_list(model, 3, seed=2)
    planned = plan(model, importance="l2", calib=calib, refit=True, ratio=0.25)
    removed = planned.plan.compensation["spaces"][0]
    assert planned.plan.compensation["mode"] == "refit" and removed["positions"] == [3]
    path = planned.plan.save(tmp_path / "plan.json")
    refitted = apply(model, path)
    assert refitted.compensation.refit == ["conv2"] and refitted.oracle.passed
    refit_error = _rms_error(model, refitted.model, evaluation)
    mean_only = prune(model, importance="l2", calib=calib, compensate=True, ratio=0.25, validate=False)
    scale = float(np.sqrt(np.mean([np.square(run(model, f)["y"]) for f in evaluation])))
    assert refit_error < 1e-4 * scale, "only the ridge (1e-4 of the variance) separates it from exact"
    assert _rms_error(model, mean_only.model, evaluation) > 100 * refit_error
