"""A reference made on a worker thread runs validate's seeded random feeds there; validate reuses
its outputs only when it would make the same feeds."""
from __future__ import annotations

import numpy as np

import graphprune.validation.compare as compare
from graphprune.validation import validate
from graphprune.validation.compare import pending_reference
from graphprune.validation.feeds import random_feeds
from graphprune.validation.runner import make_session
from models.zoo import build


def _counting(monkeypatch) -> list[str]:
    labels: list[str] = []
    real = compare.run_session

    def counted(session, feed, *, label="model", sample=None):
        labels.append(label)
        return real(session, feed, label=label, sample=sample)

    monkeypatch.setattr(compare, "run_session", counted)
    return labels


def test_the_worker_runs_the_seeded_feeds_validate_would_make():
    model = build("resnet50", size="small", batch=1)
    pending = pending_reference(model, exact=True, label="original model", samples=3, seed=5)
    expected, _ = random_feeds(model, 3, seed=5)
    assert len(pending.feeds) == 3
    session = make_session(model)
    for feed, want, got in zip(pending.feeds, expected, pending.outputs()):
        np.testing.assert_array_equal(feed["input"], want["input"])
        np.testing.assert_array_equal(got["logits"], session.run(["logits"], feed)[0])


def test_validate_reuses_the_outputs_only_for_the_same_feeds(monkeypatch):
    model = build("resnet50", size="small", batch=1)
    candidate = build("resnet50", size="small", batch=1)
    labels = _counting(monkeypatch)
    same = validate(pending_reference(model, exact=True, label="original model", samples=3, seed=5), candidate,
                    samples=3, seed=5, progress=False)
    assert same.passed and same.samples == 3 and same.data == "seeded random inputs (seed 5)"
    assert labels == ["candidate"] * 3  # the reference's three outputs came from the worker
    labels.clear()
    other = validate(pending_reference(model, exact=True, label="original model", samples=3, seed=5), candidate,
                     samples=3, seed=6, progress=False)
    assert other.passed and other.samples == 3 and other.data == "seeded random inputs (seed 6)"
    assert sorted(labels) == ["candidate"] * 3 + ["reference"] * 3
    assert other.outputs[0].max_abs == same.outputs[0].max_abs == 0.0
