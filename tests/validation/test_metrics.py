"""Every comparison metric on hand-made arrays whose answers are known exactly."""
from __future__ import annotations

import math

import numpy as np
import pytest

from graphprune.validation.metrics import compare_arrays, looks_like_scores


def _normal(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_identical_outputs_have_zero_error_and_cosine_one():
    a = [_normal((4, 10), s) for s in range(3)]
    m = compare_arrays("y", a, [x.copy() for x in a])
    assert m.passed
    assert (m.max_abs, m.mean_abs, m.max_rel, m.violation) == (0.0, 0.0, 0.0, 0.0)
    assert m.cosine == 1.0
    assert (m.top1, m.top5) == (1.0, 1.0)
    assert m.shape == (4, 10) and m.problem is None


def test_one_element_perturbed_by_a_known_amount():
    ref = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 12.0   # integers: sums are exact
    cand = ref.copy()
    cand[1, 2, 3] += 0.25
    m = compare_arrays("y", [ref], [cand], rtol=0.0, atol=1e-3)
    assert m.max_abs == 0.25
    assert m.mean_abs == pytest.approx(0.25 / 24, rel=1e-12)
    assert m.max_rel == pytest.approx(0.25 / 12.0, rel=1e-12)          # max |ref| is 12
    assert m.violation == pytest.approx(0.25 / 1e-3, rel=1e-9)
    assert not m.passed


def test_tolerance_boundary_follows_allclose():
    ref = np.array([[1.0, -2.0, 100.0]], np.float32)
    cand = ref + np.array([[1e-5, 0.0, 0.009]], np.float32)
    within = compare_arrays("y", [ref], [cand], rtol=1e-4, atol=1e-4)   # allowed at 100: 1e-4 + 1e-2
    assert within.passed and within.violation < 1.0
    assert np.allclose(cand, ref, rtol=1e-4, atol=1e-4)
    outside = compare_arrays("y", [ref], [cand], rtol=1e-5, atol=1e-5)
    assert not outside.passed and outside.violation > 1.0
    assert not np.allclose(cand, ref, rtol=1e-5, atol=1e-5)


def test_cosine_of_known_angles():
    ref = np.array([1.0, 0.0], np.float32)
    assert compare_arrays("y", [ref], [np.array([0.0, 1.0], np.float32)]).cosine == pytest.approx(0.0, abs=1e-12)
    assert compare_arrays("y", [ref], [np.array([1.0, 1.0], np.float32)]).cosine == pytest.approx(math.sqrt(0.5))
    assert compare_arrays("y", [ref], [np.array([-3.0, 0.0], np.float32)]).cosine == pytest.approx(-1.0)
    scaled = compare_arrays("y", [ref], [np.array([2.0, 0.0], np.float32)])
    assert scaled.cosine == pytest.approx(1.0) and scaled.max_abs == 1.0


def test_cosine_reports_the_worst_sample():
    ref = [np.array([1.0, 0.0], np.float32)] * 3
    cand = [ref[0], np.array([1.0, 1.0], np.float32), np.array([0.0, 1.0], np.float32)]
    assert compare_arrays("y", ref, cand).cosine == pytest.approx(0.0, abs=1e-12)


def test_top1_agreement_with_a_known_disagreement_rate():
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((40, 7)).astype(np.float32)
    cand = ref.copy()
    flipped = [0, 5, 11, 12, 30, 39]                         # 6 of 40 rows get another arg-max
    for row in flipped:
        cand[row, np.argmin(ref[row])] = ref[row].max() + 1.0
    m = compare_arrays("logits", [ref[:20], ref[20:]], [cand[:20], cand[20:]])
    assert m.top1 == pytest.approx(34 / 40)
    assert m.top5 == pytest.approx(1.0)                      # the reference winner is now second


def test_top5_counts_the_reference_winner_outside_the_candidate_top5():
    ref = np.tile(np.arange(10, dtype=np.float32), (4, 1))   # winner: class 9
    cand = ref.copy()
    cand[0, 9] = -1.0                                        # rank 10 of 10: outside top-5
    cand[1, 9] = 5.5                                         # rank 4: inside top-5, not top-1
    m = compare_arrays("logits", [ref], [cand])
    assert m.top1 == pytest.approx(2 / 4)
    assert m.top5 == pytest.approx(3 / 4)


def test_top5_needs_more_than_five_classes():
    ref = np.eye(4, 5, dtype=np.float32)
    m = compare_arrays("logits", [ref], [ref])
    assert m.top1 == 1.0 and m.top5 is None


@pytest.mark.parametrize("shape,dtype,expected", [
    ((1, 1000), np.float32, True), ((8, 10, 1, 1), np.float32, True), ((1, 1), np.float32, False),
    ((1, 3, 8, 8), np.float32, False), ((1000,), np.float32, False), ((4, 10), np.int64, False),
])
def test_looks_like_scores(shape, dtype, expected):
    assert looks_like_scores(shape, np.dtype(dtype)) is expected


def test_feature_maps_get_no_topk():
    a = _normal((1, 3, 4, 4))
    m = compare_arrays("fm", [a], [a])
    assert m.top1 is None and m.top5 is None


def test_shape_mismatch_is_a_failure_with_a_reason():
    m = compare_arrays("y", [np.zeros((2, 3), np.float32)], [np.zeros((2, 4), np.float32)])
    assert not m.passed
    assert m.problem == "shape 2x4 differs from the reference's 2x3"
    assert math.isinf(m.violation)


def test_matching_nans_agree_and_new_nans_fail():
    ref = np.array([np.nan, 1.0, np.inf, 2.0], np.float32)
    same = compare_arrays("y", [ref], [ref.copy()])
    assert same.passed and same.max_abs == 0.0 and same.nonfinite_mismatch == 0
    cand = ref.copy()
    cand[1] = np.nan
    cand[2] = -np.inf
    worse = compare_arrays("y", [ref], [cand])
    assert not worse.passed
    assert worse.nonfinite_mismatch == 2
    assert worse.max_abs == 0.0                              # the finite positions still agree
    assert "2 NaN/inf" in worse.problem


def test_zero_reference_gives_infinite_relative_error():
    ref = np.zeros((3,), np.float32)
    m = compare_arrays("y", [ref], [np.array([0.0, 0.5, 0.0], np.float32)])
    assert math.isinf(m.max_rel) and m.max_abs == 0.5 and m.cosine == 0.0


def test_integer_outputs_compare_exactly():
    ref = np.array([[1, 2, 3]], np.int64)
    m = compare_arrays("idx", [ref], [np.array([[1, 2, 4]], np.int64)], rtol=0.0, atol=0.0)
    assert not m.passed and m.max_abs == 1.0 and m.top1 is None


def test_to_dict_is_json_safe():
    import json

    m = compare_arrays("y", [np.zeros(3, np.float32)], [np.array([0, 1, 0], np.float32)])
    data = json.loads(json.dumps(m.to_dict()))
    assert data["max_rel"] == "inf" and data["max_abs"] == 1.0 and data["shape"] == [3]
