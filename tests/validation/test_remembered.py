"""validation.remembered: a pruned model's runs on the oracle's feeds answer the drift's first feeds;
the check reports the same numbers as when every feed is run."""
from __future__ import annotations

import numpy as np
import pytest

from graphprune.api import prune
from graphprune.validation import remembered as remembered_module
from graphprune.validation.remembered import RememberedRuns
from graphprune.validation.runner import is_session, make_session, run_session
from models.zoo import build
from tests.helpers.models import small_cnn


class _Counting:
    """An onnxruntime session that counts its runs."""

    def __init__(self, session):
        self.session, self.runs = session, 0

    def get_inputs(self):
        return self.session.get_inputs()

    def get_outputs(self):
        return self.session.get_outputs()

    def run(self, names, feed, run_options=None):
        self.runs += 1
        return self.session.run(names, feed, run_options)


@pytest.fixture(scope="module")
def session():
    return make_session(small_cnn(width=4, batch=1), exact=True, label="cnn")


def _feed(session, seed):
    shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
    return {session.get_inputs()[0].name: np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}


def test_a_feed_run_before_is_answered_from_memory(session):
    counting = _Counting(session)
    remembered = RememberedRuns(counting, keep=2)
    assert is_session(remembered)
    a, b, c = _feed(session, 0), _feed(session, 1), _feed(session, 2)
    first = run_session(remembered, a)
    run_session(remembered, b)
    run_session(remembered, c)  # a third feed is run, not remembered (keep=2)
    assert counting.runs == 3
    again = run_session(remembered, {k: v.copy() for k, v in a.items()})  # equal values, other arrays
    assert counting.runs == 3 and remembered.replayed == 1
    assert all(np.array_equal(first[k], again[k]) for k in first)
    run_session(remembered, c)
    assert counting.runs == 4 and remembered.replayed == 1


def test_a_feed_that_differs_in_one_value_or_dtype_is_run(session):
    counting = _Counting(session)
    remembered = RememberedRuns(counting, keep=4)
    a = _feed(session, 0)
    run_session(remembered, a)
    name = next(iter(a))
    changed = a[name].copy()
    changed.flat[5] += 1e-6
    run_session(remembered, {name: changed})
    assert counting.runs == 2 and remembered.replayed == 0
    nothing = RememberedRuns(counting, keep=0)
    run_session(nothing, a)
    run_session(nothing, a)
    assert counting.runs == 4 and nothing.replayed == 0


def test_the_check_runs_the_drifts_first_feeds_once_and_reports_the_same_drift(monkeypatch):
    made = []

    class Recording(RememberedRuns):
        def __init__(self, session, keep):
            super().__init__(session, keep)
            made.append(self)

    class Forgetting(Recording):
        def __init__(self, session, keep):
            super().__init__(session, 0)

    monkeypatch.setattr(remembered_module, "RememberedRuns", Recording)  # the check imports it when it runs
    remembering = prune(build("resnet18"), ratio=0.4)
    assert len(made) == 1 and made[0].keep == 2 and made[0].replayed == 2  # 2 oracle feeds, 4 drift feeds
    monkeypatch.setattr(remembered_module, "RememberedRuns", Forgetting)
    running = prune(build("resnet18"), ratio=0.4)
    assert made[1].replayed == 0
    assert remembering.drift.samples == running.drift.samples == 4
    assert remembering.drift == running.drift
    assert remembering.model.SerializeToString() == running.model.SerializeToString()
