"""Drift metrics against hand computations: 1 - mean cosine, 1 - top-1 agreement, relative L2 error."""
from __future__ import annotations

import math

import numpy as np
import pytest

from graphprune.errors import UsageError
from graphprune.validation import validate
from graphprune.validation.drift import DriftAccumulator, measure_drift
from tests.helpers.budget import calibration_arrays, planted_chain

# two samples of one (1, 2) score output: the first moves, the second does not
REFERENCE = [[np.array([[1.0, 0.0]])], [np.array([[0.0, 2.0]])]]
CANDIDATE = [[np.array([[1.0, 1.5]])], [np.array([[0.0, 2.0]])]]


def test_each_metric_equals_its_hand_computation():
    drift = measure_drift(REFERENCE, CANDIDATE, ["y"])
    # cos([1, 0], [1, 1.5]) = 1 / sqrt(3.25); the second sample has cosine 1
    assert drift.value("cosine") == pytest.approx(1 - (1 / math.sqrt(3.25) + 1) / 2, rel=1e-12)
    # argmax 0 -> 1 on the first sample, 1 -> 1 on the second: half agree
    assert drift.value("top1") == pytest.approx(0.5)
    # ||[0, 1.5]|| / ||[1, 0, 0, 2]|| over both samples
    assert drift.value("rel") == pytest.approx(1.5 / math.sqrt(5), rel=1e-12)
    assert drift.samples == 2


def test_top1_is_the_exact_fraction_of_disagreeing_rows():
    # 2 of 100 rows change their class: 0.02 exactly (1 - 98/100 is 0.020000000000000018, which
    # made a --max-drift 0.02 gate fail by 1.7e-17)
    reference = [[np.array([[1.0, 0.0]])] for _ in range(100)]
    candidate = [[np.array([[0.0, 1.0]] if i < 2 else [[1.0, 0.0]])] for i in range(100)]
    assert measure_drift(reference, candidate, ["y"]).value("top1") == 0.02


def test_the_worst_output_decides_and_top1_only_counts_score_outputs():
    # output "a" is a score output that does not move; "b" (rank 3, not scores) moves
    ref = [[np.array([[3.0, 1.0, 0.0]]), np.ones((1, 4, 5))]]
    cand = [[np.array([[3.0, 1.0, 0.0]]), np.full((1, 4, 5), 2.0)]]
    drift = measure_drift(ref, cand, ["a", "b"])
    assert drift.outputs[0].cosine == 0.0 and drift.outputs[0].rel == 0.0 and drift.outputs[0].top1 == 0.0
    assert drift.outputs[1].cosine == pytest.approx(0.0, abs=1e-12)  # parallel vectors
    assert drift.outputs[1].rel == pytest.approx(1.0)                 # ||2 - 1|| / ||1||
    assert drift.outputs[1].top1 is None
    assert drift.value("rel") == pytest.approx(1.0) and drift.worst("rel") == "b"
    assert drift.value("top1") == 0.0 and drift.worst("top1") == "a"


def test_top1_without_a_score_output_is_a_usage_error_naming_the_outputs():
    drift = measure_drift([[np.ones((1, 7, 9))]], [[np.ones((1, 7, 9))]], ["boxes"])
    assert drift.value("top1") is None
    with pytest.raises(UsageError, match="--metric top1 needs an output of class scores.*boxes"):
        drift.require("top1")


def test_zero_vectors_and_sign_flips():
    zero, one = np.zeros((1, 3)), np.array([[1.0, 2.0, 2.0]])
    assert measure_drift([[zero]], [[zero]]).value("cosine") == 0.0          # both zero: cosine 1
    assert measure_drift([[zero]], [[one]]).value("cosine") == 1.0           # one zero: cosine 0
    assert measure_drift([[one]], [[-one]]).value("cosine") == pytest.approx(2.0)  # opposite: cosine -1
    assert measure_drift([[zero]], [[one]]).value("rel") == pytest.approx(3.0)     # ||y|| when y0 is 0


def test_a_nan_where_the_original_is_finite_is_infinite_drift():
    ref = [[np.array([[1.0, 2.0]])]]
    assert math.isinf(measure_drift(ref, [[np.array([[1.0, np.nan]])]]).value("cosine"))
    same_nan = [[np.array([[1.0, np.nan]])]]
    assert measure_drift(same_nan, same_nan).value("rel") == 0.0


def test_a_changed_shape_is_infinite_drift():
    drift = measure_drift([[np.ones((1, 6))]], [[np.ones((2, 3))]], ["y"])
    assert math.isinf(drift.value("cosine")) and math.isinf(drift.value("rel"))


def test_the_accumulator_needs_every_output():
    acc = DriftAccumulator(["a", "b"])
    with pytest.raises(ValueError, match="expected 2 outputs"):
        acc.update([np.ones(2)], [np.ones(2)])


def test_validate_reports_the_drift_of_the_samples_it_ran():
    model = planted_chain(insensitive=())
    moved = planted_chain(insensitive=(0, 1, 2))  # same weights, half of every layer's channels scaled down
    feeds = [{"x": x} for x in calibration_arrays(5)["x"]]
    report = validate(model, moved, data=feeds, progress=False)
    from tests.helpers.onnxrt import run

    reference = [[run(model, f)["y"]] for f in feeds]
    candidate = [[run(moved, f)["y"]] for f in feeds]
    expected = measure_drift(reference, candidate, ["y"])
    assert report.drift.samples == 5
    for metric in ("cosine", "rel", "top1"):
        assert report.drift.value(metric) == pytest.approx(expected.value(metric), rel=1e-6, abs=1e-9)
    assert report.drift.value("rel") > 0.05  # the scaled channels carry signal: the check can fail
    assert report.to_dict()["drift"]["rel"] == pytest.approx(expected.value("rel"), rel=1e-6)
