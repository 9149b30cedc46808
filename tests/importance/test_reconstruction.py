"""``reconstruction`` importance (greedy Optimal Brain Surgeon): known answers on a dense chain.

The activation ``a`` has three channels with covariance ``[[1, .9, 0], [.9, 1, 0], [0, 0, .5]]``
exactly and the consumer weight is the column ``(1, 2, 1)``, so by hand (``E = w_i² / P_ii``,
``P = C⁻¹``, ``P_00 = P_11 = 1 / (1 − .9²)``): channel 0 costs ``1 · 0.19`` once channel 1 rebuilds
it, channel 1 ``4 · 0.19 = 0.76``, channel 2 its variance ``0.5``; after channel 0 goes, channel 1's
weight is ``2 + .9 · 1 = 2.9`` and its removal costs ``2.9² = 8.41``. ``fluctuation``
(``Var(x)·‖w‖²``: 1, 4, 0.5) removes channel 2 first instead.
"""
from __future__ import annotations

import numpy as np
import pytest

from graphprune.api import prune
from graphprune.calibration import calibrate
from graphprune.calibration.stats import REFIT_RIDGE
from graphprune.graph.model import to_proto
from graphprune.importance import FluctuationImportance, ReconstructionImportance, make_importance
from graphprune.importance.reconstruction import (EXACT_BELOW, _Site, greedy_errors, ranked_scores,
                                                   slot_parameters)
from graphprune.rules.base import Space
from graphprune.validation.runner import make_session
from tests.helpers.planning import analysed, dense_chain, group_with

COVARIANCE = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 0.5]])
#: the greedy's errors by hand (the removal order 0, 2, 1)
HAND_ERRORS = (0.19, 0.5, 8.41)
WEIGHT = np.array([[1.0], [2.0], [1.0]])
#: the ridge (REFIT_RIDGE x the mean variance) moves the errors by about this much, relatively
RIDGE_RTOL = 20 * REFIT_RIDGE
SAMPLES, ROWS = 8, 25
#: parameters of a slot: a row of w1 (3), its bias (1), a row of w2 (1)
SLOT_PARAMETERS = 5


def _exact_data() -> np.ndarray:
    """``SAMPLES * ROWS`` rows whose population covariance is exactly COVARIANCE and mean (10, 10, 10)."""
    rng = np.random.default_rng(3)
    z = rng.standard_normal((SAMPLES * ROWS, 3))
    z -= z.mean(axis=0)
    q, _ = np.linalg.qr(z)
    white = q * np.sqrt(len(z))  # zero mean, identity covariance
    return white @ np.linalg.cholesky(COVARIANCE).T + 10.0


@pytest.fixture(scope="module")
def calibrated():
    # w1 = I and a bias of 0 keep Relu the identity on the data (every value is near 10)
    model = dense_chain(np.eye(3), np.zeros(3, np.float32), WEIGHT, batch=ROWS)
    graph, analysis = analysed(model)
    rows = _exact_data()
    feeds = [{"x": rows[i * ROWS:(i + 1) * ROWS].astype(np.float32)} for i in range(SAMPLES)]
    space = Space("a", 1)
    stats = calibrate(to_proto(graph), [space], feeds, sizes={space: 3}, gram=[space])
    return model, analysis, group_with(analysis, "w1", 0), stats, feeds


def _by_channel(group, scores):
    return np.asarray(scores)[group.slot_of[Space("a", 1)]]


def test_greedy_errors_by_hand():
    site = _Site(WEIGHT, COVARIANCE, np.arange(3), ridge=0.0)
    order, added = greedy_errors([site], 3)
    assert order.tolist() == [0, 2, 1]
    np.testing.assert_allclose(added, HAND_ERRORS, rtol=1e-12)


def test_a_head_is_a_block_of_positions():
    """Two slots of two positions each: uncorrelated unit channels, rows (1, 1) and (2, 0) -> errors 2
    and 4 (block error = Σ w² when P is the identity)."""
    site = _Site(np.array([[1.0], [1.0], [2.0], [0.0]]), np.eye(4), np.array([0, 0, 1, 1]), ridge=0.0)
    order, added = greedy_errors([site], 2)
    assert order.tolist() == [0, 1]
    np.testing.assert_allclose(added, [2.0, 4.0], rtol=1e-12)


def test_several_consumers_add_their_errors():
    """Two consumers of uncorrelated unit channels: a slot's error is the sum of its squared rows in
    both (channel 0: 1 + 9 = 10, channel 1: 4 + 1 = 5), so channel 1 goes first."""
    first = _Site(np.array([[1.0], [2.0]]), np.eye(2), np.arange(2), ridge=0.0)
    second = _Site(np.array([[3.0], [1.0]]), np.eye(2), np.arange(2), ridge=0.0)
    order, added = greedy_errors([first, second], 2)
    assert order.tolist() == [1, 0]
    np.testing.assert_allclose(added, [5.0, 10.0], rtol=1e-12)


def test_many_slots_go_a_fraction_at_a_time_in_order():
    """130 uncorrelated unit channels with weights 130..1: the error of each is its weight squared,
    whatever else went, so the chunked greedy (130 // EXACT_BELOW = 2 per step at first) still
    removes them from the smallest weight up."""
    weights = np.arange(130, 0, -1, dtype=np.float64).reshape(-1, 1)
    site = _Site(weights, np.eye(130), np.arange(130), ridge=0.0)
    order, added = greedy_errors([site], 130)
    assert 130 // EXACT_BELOW == 2
    assert order.tolist() == list(range(129, -1, -1))
    np.testing.assert_allclose(added, np.arange(1, 131) ** 2.0, rtol=1e-12)


def test_ranked_scores_keep_the_greedy_order():
    scores = ranked_scores(np.array([2, 0, 1]), np.array([0.3, 0.1, 0.5]))
    assert np.argsort(scores).tolist() == [2, 0, 1]  # the second removal is scored at the running max 0.3
    np.testing.assert_allclose(scores, [0.3, 0.5, 0.3], rtol=1e-8)


def test_scores_per_parameter_known_answers(calibrated):
    _, analysis, group, stats, _ = calibrated
    assert slot_parameters(group, analysis.index).tolist() == [SLOT_PARAMETERS] * 3
    scores = _by_channel(group, ReconstructionImportance(stats).score(group, analysis.index))
    expected = np.array([HAND_ERRORS[0], HAND_ERRORS[2], HAND_ERRORS[1]]) / SLOT_PARAMETERS
    np.testing.assert_allclose(scores, expected, rtol=RIDGE_RTOL)
    fluctuation = _by_channel(group, FluctuationImportance(stats).score(group, analysis.index))
    np.testing.assert_allclose(fluctuation, [1.0, 4.0, 0.5], rtol=1e-6)  # float32 activations
    assert np.argmin(scores) == 0 and np.argmin(fluctuation) == 2


def test_made_by_name_and_needs_the_covariance(calibrated):
    _, analysis, group, stats, _ = calibrated
    assert isinstance(make_importance("reconstruction", stats=stats), ReconstructionImportance)
    space = Space("a", 1)
    plain = calibrate(to_proto(analysed(calibrated[0])[0]), [space], calibrated[4], sizes={space: 3})
    # without a Gram matrix it falls back to fluctuation per parameter
    np.testing.assert_allclose(ReconstructionImportance(plain).score(group, analysis.index),
                               FluctuationImportance(plain).score(group, analysis.index) / SLOT_PARAMETERS, rtol=1e-12)


def test_prune_removes_the_predicted_channel_and_the_refit_leaves_its_error(calibrated, tmp_path):
    """One channel of three goes: channel 0, and the re-fitted model's mean squared error on the
    calibration rows is the greedy's first error, 0.19 (against 0.5 for fluctuation's choice)."""
    model, _, _, _, feeds = calibrated
    np.savez(tmp_path / "calib.npz", x=np.stack([f["x"] for f in feeds]))
    errors = {}
    for importance in ("reconstruction", "fluctuation"):
        result = prune(model, ratio=1 / 3, importance=importance, calib=str(tmp_path / "calib.npz"), eval_split=0.0,
                       repair="refit", validate=False)
        pruned = result.model
        w2 = next(t for t in pruned.graph.initializer if t.name == "w2")
        assert list(w2.dims) == [2, 1]
        original, slim = make_session(model, exact=True), make_session(pruned, exact=True)
        diffs = [slim.run(None, f)[0] - original.run(None, f)[0] for f in feeds]
        errors[importance] = float(np.mean(np.concatenate(diffs) ** 2))
    assert errors["reconstruction"] == pytest.approx(HAND_ERRORS[0], rel=RIDGE_RTOL)
    assert errors["fluctuation"] == pytest.approx(HAND_ERRORS[1], rel=RIDGE_RTOL)


def test_command_line_prune_refits_the_kept_weights_by_hand(calibrated, tmp_path):
    """``graphprune prune --importance reconstruction --repair refit``: channel 0 goes, channel 1 takes
    over its part of the output (weight 2 + 0.9 · 1 = 2.9), channel 2 (uncorrelated) keeps weight 1."""
    import onnx
    from onnx import numpy_helper

    from graphprune.cli import main

    model, _, _, _, feeds = calibrated
    onnx.save(model, tmp_path / "m.onnx")
    np.savez(tmp_path / "calib.npz", x=np.stack([f["x"] for f in feeds]))
    code = main(["prune", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "slim.onnx"), "--ratio", "0.34",
                 "--importance", "reconstruction", "--calib", str(tmp_path / "calib.npz"), "--eval-split", "0",
                 "--repair", "refit"])
    assert code == 0
    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(tmp_path / "slim.onnx").graph.initializer}
    np.testing.assert_allclose(weights["w2"], [[2.9], [1.0]], rtol=RIDGE_RTOL)


def test_dead_heads_dims_and_neurons_go_first_in_bert():
    """BERT with a quarter of every group dead (heads, head dims, MLP neurons): their rows are zero,
    so the greedy removes them first at no error, and a 0.25 prune removes exactly them."""
    from tests.helpers.heads import build, killed_model, prune_model

    model, sample = build(("bert", "torchscript", ()))
    killed, dead, _ = killed_model(model, sample)
    removed, _, _ = prune_model(killed, sample, 0.25, importance="reconstruction", calib=sample, repair="refit")
    assert removed.keys() == dead.keys() and len(dead) >= 6
    for gid, slots in dead.items():
        assert removed[gid].tolist() == slots.tolist(), gid
