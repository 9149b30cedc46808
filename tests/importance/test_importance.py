"""Importance criteria: known answers per scorer, and planted dead channels go first."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from graphprune.api import plan
from graphprune.calibration import calibrate
from graphprune.errors import UsageError
from graphprune.graph.model import to_proto
from graphprune.importance import (IMPORTANCE_NAMES, ActivationImportance, BNScaleImportance, FluctuationImportance,
                                   FPGMImportance, MagnitudeImportance, RandomImportance, geometric_median,
                                   make_importance)
from graphprune.oracle import kill_slots
from graphprune.planning.plan_file import masks
from graphprune.rules.base import Space
from models.zoo import build
from tests.helpers.planning import analysed, conv_chain, decide, dense_chain, feed_list, group_with

RNG = np.random.default_rng(7)


def _per_slot(group, space, values):
    """Values given per position of ``space``, reordered by slot id."""
    out = np.empty(group.n_slots)
    out[group.slot_of[space]] = values
    return out


@pytest.fixture(scope="module")
def chain():
    w1 = RNG.standard_normal((4, 2, 1, 1)).astype(np.float32)
    b1 = RNG.standard_normal(4).astype(np.float32)
    w2 = RNG.standard_normal((3, 4, 1, 1)).astype(np.float32)
    m, analysis = analysed(conv_chain(w1, w2, b1))
    return w1, b1, w2, analysis, group_with(analysis, "w1", 0)


@pytest.mark.parametrize("p,aggregate", [(1, "sum"), (2, "sum"), (1, "mean"), (2, "mean"), (1, "max"), (2, "max")])
def test_magnitude_known_answers(chain, p, aggregate):
    w1, b1, w2, analysis, group = chain
    slices = [w1.reshape(4, -1), b1.reshape(4, 1), w2.reshape(3, 4).T]  # one row per middle channel
    rows = np.concatenate(slices, axis=1).astype(np.float64)
    if aggregate == "max":
        expected = np.abs(rows).max(axis=1)
    else:
        expected = (np.abs(rows) ** p).sum(axis=1)
        if aggregate == "mean":
            expected = expected / rows.shape[1]
        expected = np.sqrt(expected) if p == 2 else expected
    got = MagnitudeImportance(p, aggregate).score(group, analysis.index)
    np.testing.assert_allclose(got, _per_slot(group, Space("w1", 0), expected), rtol=1e-6)


def test_random_is_seeded_per_group(chain):
    *_, analysis, group = chain
    a = RandomImportance(3).score(group, analysis.index)
    assert np.array_equal(a, RandomImportance(3).score(group, analysis.index))
    assert not np.array_equal(a, RandomImportance(4).score(group, analysis.index))
    assert a.shape == (4,) and np.all((a >= 0) & (a < 1))


def test_bn_scale_is_abs_gamma():
    gamma = np.array([0.5, -2.0, 0.1, 1.0], np.float32)
    bn = {"scale": gamma, "bias": np.zeros(4, np.float32), "mean": np.zeros(4, np.float32),
          "var": np.ones(4, np.float32)}
    w1, w2 = RNG.standard_normal((4, 2, 1, 1)), RNG.standard_normal((3, 4, 1, 1))
    m, analysis = analysed(conv_chain(w1, w2, bn=bn))
    group = group_with(analysis, "w1", 0)
    got = BNScaleImportance().score(group, analysis.index)
    np.testing.assert_allclose(got, _per_slot(group, Space("w1", 0), np.abs(gamma)), rtol=1e-6)


def test_bn_scale_is_scored_before_folding():
    """Channel 2 has the largest weights but the smallest |gamma|: bn-scale removes it, l2 does not."""
    gamma = np.array([1.0, 0.9, 0.01, 0.8], np.float32)
    bn = {"scale": gamma, "bias": np.zeros(4, np.float32), "mean": np.zeros(4, np.float32),
          "var": np.ones(4, np.float32)}
    w1 = np.ones((4, 2, 1, 1), np.float32)
    w1[2] *= 100.0
    model = conv_chain(w1, np.ones((3, 4, 1, 1)), bn=bn)
    by_gamma = plan(model, ratio=0.25, importance="bn-scale")
    planned_graph = by_gamma.decided.scored.analyzed.prepared.model
    assert by_gamma.plan.fold_batchnorm and not any(n.op_type == "BatchNormalization" for n in planned_graph.graph)
    assert by_gamma.masks(source=False)["w1"]["0"] == [0, 1, 3]
    assert by_gamma.masks()["bn_scale"]["0"] == [0, 1, 3]
    assert plan(model, ratio=0.25, importance="l2").masks(source=False)["w1"]["0"] != [0, 1, 3]


def test_geometric_median_known_answers():
    square = np.array([[0, 0], [2, 0], [0, 2], [2, 2]], np.float64)
    np.testing.assert_allclose(geometric_median(square), [1, 1], atol=1e-6)
    line = np.array([[0.0], [1.0], [10.0]])
    np.testing.assert_allclose(geometric_median(line), [1.0], atol=1e-6)


def test_fpgm_matches_an_independent_median():
    filters = np.array([[1, 1], [1.1, 0.9], [0.9, 1.2], [5, -5], [0.2, 3]], np.float32)
    w1 = filters.reshape(5, 2, 1, 1)
    m, analysis = analysed(conv_chain(w1, RNG.standard_normal((3, 5, 1, 1))))
    group = group_with(analysis, "w1", 0)
    f64 = filters.astype(np.float64)
    gm = minimize(lambda z: np.linalg.norm(f64 - z, axis=1).sum(), f64.mean(axis=0), method="Nelder-Mead",
                  options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000}).x
    expected = np.minimum(np.linalg.norm(f64 - gm, axis=1), np.linalg.norm(f64, axis=1))
    got = FPGMImportance().score(group, analysis.index)
    np.testing.assert_allclose(got, _per_slot(group, Space("w1", 0), expected), rtol=1e-4, atol=1e-6)
    order = np.argsort(got[group.slot_of[Space("w1", 0)]])
    assert order[-1] == 3, "the outlier filter is the least replaceable"


def _calibrated_dense():
    w1 = np.eye(3, dtype=np.float32)
    b1 = np.array([0.0, 0.0, 5.0], np.float32)
    w2 = np.array([[1.0, 2.0], [3.0, 0.0], [0.5, 0.5]], np.float32)
    model = dense_chain(w1, b1, w2, batch=4)
    m, analysis = analysed(model)
    rng = np.random.default_rng(0)
    feeds = [{"x": (rng.uniform(1, 2, (4, 3)) * [1.0, 3.0, 0.0]).astype(np.float32)} for _ in range(5)]
    group = group_with(analysis, "w1", 0)
    space = Space("a", 1)
    stats = calibrate(to_proto(m), [space], feeds, sizes={space: 3})
    acts = np.concatenate([np.maximum(f["x"] @ w1.T + b1, 0) for f in feeds]).astype(np.float64)
    return analysis, group, stats, acts, w2


def test_activation_and_fluctuation_known_answers():
    analysis, group, stats, acts, w2 = _calibrated_dense()
    activation = ActivationImportance(stats).score(group, analysis.index)
    np.testing.assert_allclose(activation, _per_slot(group, Space("a", 1), np.abs(acts).mean(axis=0)), rtol=1e-6)
    fluctuation = FluctuationImportance(stats).score(group, analysis.index)
    expected = acts.var(axis=0) * (w2.astype(np.float64) ** 2).sum(axis=1)
    np.testing.assert_allclose(fluctuation, _per_slot(group, Space("a", 1), expected), rtol=1e-6, atol=1e-9)
    assert fluctuation[group.slot_of[Space("a", 1)][2]] == pytest.approx(0.0, abs=1e-9)  # the constant channel


def test_data_driven_criteria_need_calibration_data():
    for name in ("activation", "fluctuation"):
        with pytest.raises(UsageError, match="--calib"):
            make_importance(name)
    with pytest.raises(UsageError, match="--calib"):
        plan(build("resnet18"), importance="fluctuation")
    with pytest.raises(UsageError, match="choose one of"):
        make_importance("l3")


DEAD_CRITERIA = [n for n in IMPORTANCE_NAMES if n != "random"]


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2"])
def test_planted_dead_channels_go_first(name):
    """Kill 25% of every group's slots (every slice); each criterion but random removes exactly them."""
    graph, m_an = analysed(build(name))
    dead = decide(m_an, ratio=0.25, importance="random", seed=5).removed
    kill_slots(graph, m_an, dead)
    m = to_proto(graph)
    feeds = feed_list(m, 4, seed=1)
    expected = {k: sorted(map(int, v)) for k, v in dead.items()}
    for criterion in DEAD_CRITERIA:
        got = plan(m, ratio=0.25, importance=criterion, keep_bn=True, calib=feeds, compensate=False)
        assert {k: sorted(map(int, v)) for k, v in got.removed.items()} == expected, criterion
    # through BatchNorm folding (scores carried over, or measured on the folded model)
    for criterion in ("bn-scale", "fluctuation", "fpgm"):
        folded = plan(m, ratio=0.25, importance=criterion, calib=feeds, compensate=False)
        assert folded.masks() == masks(m_an, dead), criterion
    baseline = plan(m, ratio=0.25, importance="random", seed=11, keep_bn=True)
    assert {k: sorted(map(int, v)) for k, v in baseline.removed.items()} != expected
