"""The budget search on a model with planted sensitivity, the held-out check, the gate, rollback."""
from __future__ import annotations

import numpy as np
import pytest

from graphprune.api import prune
from graphprune.errors import DriftBudgetExceeded, UsageError, ValidationFailed
from graphprune.pipeline import compose
from tests.helpers.budget import DEAD, calibration_arrays, planted_chain
from tests.helpers.onnxrt import run

SAMPLES = 40
#: one sample of 40 is held out for every four (eval_split 0.25), chosen by a permutation seeded 0
HELD = sorted(int(i) for i in np.random.default_rng(0).permutation(SAMPLES)[:10])


def _rel_drift(original, pruned, feeds) -> float:
    """Relative L2 error of the output over ``feeds``, computed here independently of graphprune."""
    num = den = 0.0
    for feed in feeds:
        y0 = run(original, feed)["y"].astype(np.float64)
        y = run(pruned, feed)["y"].astype(np.float64)
        num += float(np.sum((y - y0) ** 2))
        den += float(np.sum(y0 ** 2))
    return float(np.sqrt(num / den))


@pytest.fixture(scope="module")
def searched():
    return prune(planted_chain(), calib=calibration_arrays(SAMPLES), max_drift=0.01, metric="rel", jobs=1)


def test_the_search_prunes_the_insensitive_groups_and_keeps_the_sensitive_one(searched):
    # hidden layers 0 and 2 have 16 nearly dead channels each; layer 1 has none
    assert {g: [int(s) for s in v] for g, v in searched.removed.items()} == {0: list(DEAD), 2: list(DEAD)}
    assert searched.budget.counts == {0: 16, 2: 16}
    sensitive = searched.budget.curve(1)
    assert sensitive.points[0].count == 4 and sensitive.points[0].drift > 0.01  # one step is already too much
    assert len(sensitive.points) == 1  # its curve stops at the first step beyond the budget
    for gid in (0, 2):
        drifts = [p.drift for p in searched.budget.curve(gid).points]
        assert max(drifts[:4]) < 1e-3 < drifts[4]  # free up to 16 slots (the dead ones), then live ones go


def test_the_reported_drift_is_the_final_check_on_held_out_samples(searched):
    feeds = [{"x": x} for x in calibration_arrays(SAMPLES)["x"][HELD]]
    independent = _rel_drift(planted_chain(), searched.model, feeds)
    assert searched.gate.passed and searched.gate.samples == 10
    assert searched.gate.drift == pytest.approx(independent, rel=1e-4)
    assert searched.budget.achieved == searched.gate.drift and len(searched.budget.checks) == 1
    assert searched.drift.drift.value("rel") == searched.gate.drift
    assert "10 of 40 held out" in searched.gate.data
    lines = searched.summary_lines()
    assert any(line.startswith("drift budget: met: rel drift") for line in lines)
    assert any("final check: drift" in line and "passed" in line for line in lines)
    data = searched.to_dict()
    assert data["gate"]["passed"] is True and data["budget"]["achieved"] == searched.gate.drift
    assert data["budget"]["evaluations"]["final check"] == 1 and data["data"]["held_out"] == 10


def test_the_search_is_deterministic_and_the_workers_do_not_change_it(searched):
    again = prune(planted_chain(), calib=calibration_arrays(SAMPLES), max_drift=0.01, metric="rel", jobs=2)
    assert {g: list(v) for g, v in again.removed.items()} == {g: list(v) for g, v in searched.removed.items()}
    assert again.budget.probes == searched.budget.probes
    assert [c.to_dict() for c in again.budget.curves] == [c.to_dict() for c in searched.budget.curves]


def test_a_budget_no_step_meets_fails_and_names_the_most_sensitive_groups():
    with pytest.raises(ValidationFailed, match=r"no pruning meets --max-drift 1e-09.*most sensitive: "
                                               r"fc1 \(Gemm\): w1\[axis 0\].*nothing was written"):
        prune(planted_chain(), calib=calibration_arrays(SAMPLES), max_drift=1e-9, metric="rel", jobs=1)


def test_the_gate_on_a_ratio_says_by_how_much_it_missed():
    with pytest.raises(DriftBudgetExceeded) as caught:
        prune(planted_chain(), calib=calibration_arrays(SAMPLES), ratio=0.5, max_drift=0.01, metric="rel")
    result = caught.value.result
    feeds = [{"x": x} for x in calibration_arrays(SAMPLES)["x"][HELD]]
    independent = _rel_drift(planted_chain(), result.model, feeds)
    assert not result.gate.passed and result.gate.drift == pytest.approx(independent, rel=1e-4)
    assert result.gate.to_dict()["missed_by"] == pytest.approx(independent - 0.01, rel=1e-3)
    assert f"MISSED by {independent - 0.01:.4g}" in str(caught.value)
    assert any(line.startswith("drift budget: MISSED by") for line in result.summary_lines())
    passed = prune(planted_chain(), calib=calibration_arrays(SAMPLES), ratio=0.5, max_drift=0.5, metric="rel")
    assert passed.gate.passed and passed.gate.drift == pytest.approx(independent, rel=1e-6)


def test_a_missed_final_check_rolls_back_the_most_sensitive_step(monkeypatch):
    real_check, calls = compose.check, []

    def first_check_misses(pruned, source, options, split=None, original=None):
        checked = real_check(pruned, source, options, split, original)
        calls.append(checked.gate.drift)
        if len(calls) == 1:  # as if the held-out samples disagreed with the calibration samples
            from dataclasses import replace
            return replace(checked, gate=replace(checked.gate, drift=1.0))
        return checked

    monkeypatch.setattr(compose, "check", first_check_misses)
    result = prune(planted_chain(), calib=calibration_arrays(SAMPLES), max_drift=0.01, metric="rel", jobs=1)
    record = result.budget
    assert len(calls) == 2 and [c["passed"] for c in record.checks] == [False, True]
    # the group whose step at 16 slots drifts most alone goes back one step (to 12 slots)
    worst = max((0, 2), key=lambda g: record.curve(g).point(16).drift)
    assert record.checks[0]["rolled_back"] == record.curve(worst).title
    assert record.counts == {worst: 12, 2 - worst: 16} and len(result.removed[worst]) == 12
    assert result.gate.drift == calls[1] and record.evaluations["final check"] == 2


def test_calibration_data_makes_the_default_data_driven_with_repair():
    result = prune(planted_chain(), calib=calibration_arrays(12), ratio=0.25)
    assert result.importance == "fluctuation" and result.compensation is not None
    assert "held-out samples" in result.drift.data and result.drift.samples == 3


def test_without_data_the_summary_says_the_drift_is_on_random_inputs_and_how_to_measure():
    lines = prune(planted_chain(), ratio=0.25).summary_lines()
    moved = next(line for line in lines if line.startswith("outputs moved by cosine"))
    assert "seeded random inputs" in moved
    assert any("random inputs say little" in line and "--data" in line and "--calib" in line for line in lines)


@pytest.mark.parametrize("options,flag", [
    ({"max_drift": 0.01}, "--calib"),
    ({"max_drift": 0.01, "data": calibration_arrays(4)}, "--calib"),
    ({"max_drift": 0.01, "ratio": 0.3}, "--calib PATH .* or --data"),
    ({"max_drift": -1.0, "calib": calibration_arrays(4)}, "--max-drift"),
    ({"max_drift": 0.01, "calib": calibration_arrays(4), "metric": "l1"}, "--metric"),
    ({"ratio": 0.3, "objective": "macs"}, "--objective"),
    ({"max_drift": 0.01, "calib": calibration_arrays(4), "eval_split": 1.0}, "--eval-split"),
    ({"max_drift": 0.01, "calib": calibration_arrays(4), "jobs": 0}, "--jobs"),
    ({"max_drift": 0.01, "calib": calibration_arrays(4), "validate": False}, "--no-validate"),
    ({"max_drift": 0.01, "calib": calibration_arrays(4), "global_rank": True}, "--global"),
])
def test_usage_errors_name_the_flag(options, flag):
    with pytest.raises(UsageError, match=flag):
        prune(planted_chain(), **options)


def test_other_objectives():
    params = prune(planted_chain(), calib=calibration_arrays(SAMPLES), max_drift=0.01, metric="rel",
                   objective="params", jobs=1)
    assert params.budget.counts == {0: 16, 2: 16} and params.budget.objective == "params"
    assert params.budget.saved == params.params_before - params.params_after  # parameters are exactly additive
    latency = prune(planted_chain(), calib=calibration_arrays(SAMPLES), max_drift=0.01, metric="rel",
                    objective="latency", jobs=1)
    assert latency.budget.objective == "latency" and 0 < latency.budget.saved < latency.budget.total
    assert set(latency.budget.counts) <= {0, 2}  # the sensitive layer stays whatever the objective


def test_a_top1_budget_orders_by_cosine_curves_and_checks_top1_agreement():
    result = prune(planted_chain(), calib=calibration_arrays(SAMPLES), max_drift=0.05, metric="top1", jobs=1,
                   repair="mean")  # (the sequential re-fit lets the top-1 budget take 8 of the sensitive layer too)
    assert result.budget.counts == {0: 16, 2: 16}
    assert all(len(c.points) == 7 for c in result.budget.curves)  # top-1 curves have no ceiling
    feeds = [{"x": x} for x in calibration_arrays(SAMPLES)["x"][HELD]]
    agree = [np.argmax(run(planted_chain(), f)["y"]) == np.argmax(run(result.model, f)["y"]) for f in feeds]
    assert result.gate.metric == "top1" and result.gate.drift == pytest.approx(1 - np.mean(agree))
