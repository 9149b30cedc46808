"""The evaluation engine measures what pruning does: zeroed slices equal the pruned model, and a
repaired candidate equals the model the pipeline writes with the same repair."""
from __future__ import annotations

import numpy as np
import pytest

from graphprune.execution.candidates import Candidate, measure, zeroed_drift, zeroing_context
from graphprune.execution.executor import LocalExecutor
from graphprune.pipeline import Options, analyze, apply, load, prepare, score
from graphprune.pipeline.candidates import repair_context, repaired_drift
from graphprune.pipeline.repair import repair_data
from graphprune.validation.drift import measure_drift
from models.zoo import build
from tests.helpers.budget import calibration_arrays, planted_chain
from tests.helpers.onnxrt import random_feeds, run


def _pruned_drift(model, removed, feeds, options, stats=None, repair_feeds=None) -> dict:
    """Prune ``model`` by ``removed`` through the pipeline (optionally repaired) and measure it here."""
    analyzed = analyze(prepare(load(model), options), options)
    data = repair_data(analyzed.analysis, removed, stats, options)
    pruned = apply(analyzed, removed, options, compensation=data, feeds=repair_feeds)
    from graphprune.graph.model import to_proto

    names = [o.name for o in model.graph.output]
    reference = [[run(model, f)[n] for n in names] for f in feeds]
    candidate = [[run(to_proto(pruned.model), f)[n] for n in names] for f in feeds]
    return measure_drift(reference, candidate, names)


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2"])
def test_zeroed_slices_measure_exactly_the_pruned_model(name):
    model = build(name, keep_bn=False)
    options = Options(ratio=0.0, validate=False)
    analyzed = analyze(prepare(load(model), options), options)
    feeds = [random_feeds(model, seed=s) for s in range(2)]
    rng = np.random.default_rng(5)
    groups = analyzed.analysis.prunable_groups
    picks = [groups[0], groups[len(groups) // 2], groups[-1]]
    removed = {g.id: np.sort(rng.choice(g.n_slots, size=g.n_slots // 3, replace=False)) for g in picks}
    cases = [{g.id: removed[g.id]} for g in picks] + [removed]
    with LocalExecutor(1) as executor:
        context = zeroing_context(analyzed.prepared.model, analyzed.analysis, feeds)
        measured = measure(executor, context, [Candidate.of(c) for c in cases])
    for case, drift in zip(cases, measured):
        direct = _pruned_drift(model, case, feeds, options)
        for metric in ("cosine", "rel"):
            assert drift.value(metric) == pytest.approx(direct.value(metric), rel=1e-3, abs=1e-7)
        assert drift.value("rel") > 1e-4  # a third of a group's slots moves the outputs: the check can fail


def test_a_repaired_candidate_is_the_model_the_pipeline_writes():
    model = planted_chain(insensitive=())
    options = Options(calib=calibration_arrays(20), ratio=0.0, validate=False)
    analyzed = analyze(prepare(load(model), options), options)
    scored = score(analyzed, options)
    assert options.compensate and scored.stats is not None
    assert options.repair == ("mean", "sequential")  # the default with data: the re-fit reads samples
    feeds = [{"x": x} for x in calibration_arrays(6, seed=4)["x"]]
    fitted_on = [{"x": x} for x in calibration_arrays(20)["x"][6:]]  # not the measured samples
    removed = {1: np.arange(0, 32, 4), 2: np.arange(1, 32, 3)}
    with LocalExecutor(1) as executor:
        context = repair_context(analyzed, feeds, scored.stats, options, fitted_on)
        (repaired,) = executor.map(repaired_drift, [Candidate.of(removed)], context=context)
        plain_context = zeroing_context(analyzed.prepared.model, analyzed.analysis, feeds)
        (plain,) = executor.map(zeroed_drift, [Candidate.of(removed)], context=plain_context)
    direct = _pruned_drift(model, removed, feeds, options, scored.stats, fitted_on)
    assert repaired.value("rel") == pytest.approx(direct.value("rel"), rel=1e-4)
    assert repaired.value("rel") < plain.value("rel")  # compensation removes part of the error
