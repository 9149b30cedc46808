"""Scoring groups on worker threads (importance.threads): the same numbers as one by one, in
group order, on workers only for large groups of thread-safe scorers."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from graphprune.importance import FPGMImportance, MagnitudeImportance, RandomImportance
from graphprune.importance import threads
from graphprune.importance.base import STATISTIC_TAGS
from graphprune.importance.threads import param_bytes, score_groups
from models.zoo import build
from tests.helpers.planning import analysed


@pytest.fixture(scope="module")
def analysis():
    return analysed(build("resnet18"))[1]


class _Recording(MagnitudeImportance):
    """L2 scores, noting the thread each group was scored on (and failing on one group if asked)."""

    def __init__(self, fail_on=None, thread_safe=True):
        super().__init__(2)
        self.thread_safe = thread_safe
        self.fail_on = fail_on
        self.threads: dict[int, str] = {}

    def score(self, group, index):
        self.threads[group.id] = threading.current_thread().name
        if group.id == self.fail_on:
            raise RuntimeError(f"group {group.id} cannot be scored")
        return super().score(group, index)


def _one_by_one(groups, scorer, tiebreak, index):
    return [(np.asarray(scorer.score(g, index), dtype=np.float64),
             None if tiebreak is None else tiebreak.score(g, index)) for g in groups]


@pytest.mark.parametrize("scorer,tiebreak", [(MagnitudeImportance(2), None), (MagnitudeImportance(1, "mean"), None),
                                             (RandomImportance(3), None), (FPGMImportance(), MagnitudeImportance(2))])
def test_threads_give_the_scores_of_one_by_one(analysis, monkeypatch, scorer, tiebreak):
    groups = analysis.prunable_groups
    assert len(groups) >= 8
    monkeypatch.setattr(threads, "WORKER_BYTES", 0)  # every group goes to a worker
    got = score_groups(groups, scorer, tiebreak, analysis.index)
    want = _one_by_one(groups, scorer, tiebreak, analysis.index)
    assert len(got) == len(groups)
    for group, (scores, ties), (want_scores, want_ties) in zip(groups, got, want):
        assert scores.dtype == np.float64 and scores.shape == (group.n_slots,)
        np.testing.assert_array_equal(scores, want_scores)
        if tiebreak is None:
            assert ties is None
        else:
            np.testing.assert_array_equal(ties, want_ties)


def test_only_large_groups_go_to_workers(analysis, monkeypatch):
    groups = analysis.prunable_groups
    sizes = sorted(param_bytes(g, analysis.index) for g in groups)
    middle = sizes[len(sizes) // 2]
    monkeypatch.setattr(threads, "WORKER_BYTES", middle)
    scorer = _Recording()
    score_groups(groups, scorer, None, analysis.index)
    main = threading.current_thread().name
    for group in groups:
        on_worker = scorer.threads[group.id] != main
        assert on_worker == (param_bytes(group, analysis.index) >= middle), group.id
    assert any(name.startswith("graphprune-score") for name in scorer.threads.values())


def test_scorers_not_thread_safe_stay_on_the_calling_thread(analysis, monkeypatch):
    monkeypatch.setattr(threads, "WORKER_BYTES", 0)
    scorer = _Recording(thread_safe=False)
    score_groups(analysis.prunable_groups, scorer, None, analysis.index)
    assert set(scorer.threads.values()) == {threading.current_thread().name}


def test_an_error_of_one_group_is_raised(analysis, monkeypatch):
    monkeypatch.setattr(threads, "WORKER_BYTES", 0)
    bad = analysis.prunable_groups[3].id
    with pytest.raises(RuntimeError, match=f"group {bad} cannot be scored"):
        score_groups(analysis.prunable_groups, _Recording(fail_on=bad), None, analysis.index)


def test_param_bytes_counts_each_initializer_once(analysis):
    group = analysis.prunable_groups[0]
    names = {p.initializer for p in group.params}
    want = sum(analysis.index.array(name).nbytes for name in names)
    assert param_bytes(group, analysis.index) == want > 0


def test_workers_keep_the_value_cache_consistent(monkeypatch):
    analysis = analysed(build("resnet18", seed=1))[1]  # a cold cache: the workers fill it at once
    monkeypatch.setattr(threads, "WORKER_BYTES", 0)
    score_groups(analysis.prunable_groups, MagnitudeImportance(2), MagnitudeImportance(1), analysis.index)
    index = analysis.index
    read = {p.initializer for g in analysis.prunable_groups for p in g.params
            if not (p.tags and p.tags <= STATISTIC_TAGS)}  # what L2 and L1 read
    assert set(index._arrays) == read
    assert index._cached_bytes == sum(a.nbytes for a in index._arrays.values())


def test_an_error_drops_the_groups_not_started(analysis, monkeypatch):
    """A failing group (or Ctrl-C) does not wait for every other group to be scored: the groups not
    started when it fails are dropped (each takes 0.1 s here; the failure comes after 0.3 s)."""
    monkeypatch.setattr(threads, "WORKER_BYTES", 0)
    monkeypatch.setattr(threads, "MAX_WORKERS", 2)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    groups = analysis.prunable_groups
    first = groups[0].id

    class Slow(_Recording):
        def score(self, group, index):
            time.sleep(0.3 if group.id == first else 0.1)
            if group.id == first:
                raise RuntimeError("the first group fails")
            return super().score(group, index)

    scorer = Slow()
    with pytest.raises(RuntimeError, match="the first group fails"):
        score_groups(groups, scorer, None, analysis.index)
    assert len(groups) - 1 == 11
    # about 3 groups were scored beside the first (0.3 s at 0.1 s each, plus the one running when
    # it failed); scoring every group would record all 11
    assert 1 <= len(scorer.threads) <= 6
