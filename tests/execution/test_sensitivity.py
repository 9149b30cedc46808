"""Sensitivity: drift per group and ratio equals what pruning that group alone does; the table."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphprune.api import sensitivity
from graphprune.graph.model import to_proto
from graphprune.importance import MagnitudeImportance
from graphprune.oracle import kill_slots
from graphprune.planning.select import select_by_ratio
from graphprune.surgery.apply import apply_removal
from models.zoo import build
from tests.helpers.onnxrt import run
from tests.helpers.planning import analysed, decide, feed_list


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
    m, analysis = analysed(model)
    group = analysis.groups[group_id]
    slots = select_by_ratio(group, MagnitudeImportance(2).score(group, analysis.index), ratio)
    reference = [run(m, f) for f in feeds]
    apply_removal(m, analysis, {group_id: slots})
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
    feeds = feed_list(model, 3, seed=4)
    result = sensitivity(model, ratios=(0.25, 0.5), calib=feeds, keep_bn=True, importance="l2")  # not the data default
    assert result.ratios == (0.25, 0.5) and result.samples == 3
    rows = result.rows
    assert [r["group"] for r in rows] == [g.id for g in analysed(model)[1].prunable_groups]
    for row in rows[:3]:
        for j, ratio in enumerate(result.ratios):
            assert row["drift"][j] == pytest.approx(_direct_drift(model, row["group"], ratio, feeds), rel=1e-4,
                                                    abs=1e-6)
    assert all(d > 0 for r in rows for d in r["drift"])


def test_dead_slots_cost_nothing():
    m, analysis = analysed(build("mobilenetv2"))
    dead = decide(analysis, ratio=0.5, importance="random", seed=2).removed
    kill_slots(m, analysis, dead)
    result = sensitivity(to_proto(m), ratios=(0.5, 0.7), keep_bn=True, samples=2)
    for row in result.rows:
        if row["group"] in dead:
            assert row["drift"][0] < 1e-5, row
    assert max(r["drift"][1] for r in result.rows) > 1e-3
    lines = result.summary_lines()
    assert lines[1].split()[:4] == ["group", "slots", "@0.5", "@0.7"]
    assert len(lines) == len(result.rows) + 3 and lines[-1].startswith("most sensitive at 0.7")
