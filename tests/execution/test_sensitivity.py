"""Sensitivity: drift per group and ratio equals what pruning that group alone does; table and plot."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphprune.api import sensitivity
from graphprune.core import analyze_model, apply_decision, as_model, decide, prepare
from graphprune.planning.planner import Decision
from graphprune.importance import MagnitudeImportance
from graphprune.oracle import kill_slots
from graphprune.planning.select import select_by_ratio
from graphprune.planning.sensitivity_report import register
from graphprune.report import render
from models.zoo import build
from tests.helpers.onnxrt import run
from tests.helpers.planning import random_feeds


def _attention() -> "onnx.ModelProto":  # noqa: F821
    """q = x Wq, k = x Wk, y = q kᵀ: the group of Wq/Wk columns meets an activation x activation MatMul."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), n) for n in ("wq", "wk")]
    nodes = [helper.make_node("MatMul", ["x", "wq"], ["q"], name="q"),
             helper.make_node("MatMul", ["x", "wk"], ["k"], name="k"),
             helper.make_node("Transpose", ["k"], ["kt"], name="t", perm=[1, 0]),
             helper.make_node("MatMul", ["q", "kt"], ["y"], name="s")]
    graph = helper.make_graph(nodes, "attn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6, 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _direct_drift(model, group_id: int, ratio: float, feeds) -> float:
    m = prepare(as_model(model))
    analysis = analyze_model(m)
    group = analysis.groups[group_id]
    slots = select_by_ratio(group, MagnitudeImportance(2).score(group, analysis.index), ratio)
    reference = [run(prepare(as_model(model)), f) for f in feeds]
    apply_decision(m, analysis, Decision({group_id: slots}))
    pruned = [run(m, f) for f in feeds]
    worst = 0.0
    for name in reference[0]:
        num = sum(float(np.sum((p[name].astype(np.float64) - r[name]) ** 2)) for r, p in zip(reference, pruned))
        den = sum(float(np.sum(r[name].astype(np.float64) ** 2)) for r in reference)
        worst = max(worst, np.sqrt(num / den))
    return worst


@pytest.mark.parametrize("source", ["resnet18", "attention"])
def test_drift_equals_pruning_the_group_alone(source):
    model = build("resnet18", keep_bn=False) if source == "resnet18" else _attention()
    feeds = random_feeds(model, 3, seed=4)
    result = sensitivity(model, ratios=(0.25, 0.5), calib=feeds, keep_bn=True)
    assert result.ratios == (0.25, 0.5) and result.samples == 3
    rows = result.rows
    assert [r["group"] for r in rows] == [g.id for g in analyze_model(prepare(as_model(model))).prunable_groups]
    for row in rows[:3]:
        for j, ratio in enumerate(result.ratios):
            assert row["drift"][j] == pytest.approx(_direct_drift(model, row["group"], ratio, feeds), rel=1e-4,
                                                    abs=1e-6)
    assert all(d > 0 for r in rows for d in r["drift"])


def test_dead_slots_cost_nothing():
    m = prepare(as_model(build("mobilenetv2")))
    analysis = analyze_model(m)
    dead = decide(analysis, ratio=0.5, importance="random", seed=2).removed
    kill_slots(m, analysis, dead)
    result = sensitivity(m, ratios=(0.5, 0.7), keep_bn=True, samples=2)
    for row in result.rows:
        if row["group"] in dead:
            assert row["drift"][0] < 1e-5, row
    assert max(r["drift"][1] for r in result.rows) > 1e-3
    lines = result.summary_lines()
    assert lines[1].split()[:4] == ["group", "slots", "@0.5", "@0.7"]
    assert len(lines) == len(result.rows) + 3 and lines[-1].startswith("most sensitive at 0.7")


def test_html_section_plots_one_line_per_group():
    result = sensitivity(build("resnet18"), ratios=(0.2, 0.6), samples=2)
    register()
    page = render({"title": "s", "sensitivity": result.to_dict()}, "html")
    assert page.count('class="group"') == len(result.rows)
    assert 'id="chart-sensitivity"' in page and "<script" not in page
    first = result.rows[0]
    assert f'data-group="{first["group"]}"' in page and f"{first['drift'][1]:.4f}" in page
