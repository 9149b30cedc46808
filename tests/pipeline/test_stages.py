"""The pipeline's stages compose into ``prune``: the composition of the module docstring gives the
same bytes as ``compose.prune``; values are frozen; a source is never modified; the model is
analyzed once; and ``prune`` never builds a PruningPlan (only ``plan`` and ``apply`` meet plan files)."""
from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest

import graphprune.analysis.builder as builder
from graphprune.graph.model import to_proto
from graphprune.pipeline import Options, analyze, apply, check, compose, decide, load, prepare, score
from graphprune.planning.plan_file import PruningPlan
from models.zoo import build

#: the stage modules (``graphprune.pipeline.analyze`` the attribute is the stage function)
analyze_stage = importlib.import_module("graphprune.pipeline.analyze")
plan_module = importlib.import_module("graphprune.pipeline.plan")


def _calibration():
    return [{"input": np.random.default_rng(i).standard_normal((1, 3, 64, 64)).astype(np.float32)} for i in range(3)]


CASES = {
    "l2": dict(ratio=0.5),
    "keep-bn-global": dict(ratio=0.4, keep_bn=True, global_rank=True),
    "target-macs": dict(target_macs=0.6),
    "fluctuation-compensated": dict(ratio=0.3, importance="fluctuation", calib="feeds"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_stage_composition_equals_prune(case):
    keywords = {k: (_calibration() if v == "feeds" else v) for k, v in CASES[case].items()}
    options = Options(**keywords)
    model = build("demo")
    before = model.SerializeToString()
    source = load(model)
    analyzed = analyze(prepare(source, options), options)
    split = compose.data_split(source, options)  # with calibration data a quarter is held out for the checks
    decided = decide(score(analyzed, options, split), options)
    pruned = apply(analyzed, decided.decision.removed, options, compensation=decided.compensation,
                   feeds=compose.repair_feeds(split))
    checked = check(pruned, source, options, split)
    result = compose.prune(model, options)
    assert to_proto(pruned.model).SerializeToString() == result.model.SerializeToString()
    assert (pruned.params_before, pruned.params_after) == (result.params_before, result.params_after)
    assert pruned.params_after < pruned.params_before
    assert checked.oracle.passed and result.oracle.passed
    assert checked.drift.to_dict() == result.drift.to_dict()
    assert (pruned.compensation is not None) == ("calib" in keywords)
    assert model.SerializeToString() == before and source.proto is model


def test_values_are_frozen():
    options = Options(ratio=0.5, validate=False)
    source = load(build("demo"))
    prepared = prepare(source, options)
    analyzed = analyze(prepared, options)
    scored = score(analyzed, options)
    decided = decide(scored, options)
    pruned = apply(analyzed, decided.decision.removed, options)
    for value, field in ((source, "proto"), (prepared, "model"), (analyzed, "analysis"), (scored, "scorer"),
                         (decided, "decision"), (pruned, "removed")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, None)
    assert prepared.source is source and scored.analyzed is analyzed and decided.scored is scored
    assert pruned.model is prepared.model  # apply edits the prepared graph; the source stays as it was


def test_prune_analyzes_the_model_once(monkeypatch):
    calls = []
    real = builder.analyze

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(builder, "analyze", counting)
    monkeypatch.setattr(analyze_stage, "build_analysis", counting)
    result = compose.prune(build("resnet18"), Options(ratio=0.3))
    assert result.oracle.passed and len(calls) == 1


def test_prune_never_builds_a_pruning_plan(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("prune built a PruningPlan")

    monkeypatch.setattr(PruningPlan, "__init__", refuse)
    monkeypatch.setattr(plan_module, "to_plan", refuse)
    monkeypatch.setattr(compose, "to_plan", refuse)
    result = compose.prune(build("demo"), Options(ratio=0.3, target_macs=None))
    assert result.plan is None and result.oracle.passed
    assert result.predicted["t"] == pytest.approx(0.3) and result.groups_pruned > 0
    with pytest.raises(AssertionError, match="prune built a PruningPlan"):
        compose.plan(build("demo"), Options(ratio=0.3))   # the patch does stop plan files being made
