"""Plan files: contents, round trip, apply = prune, refusal for another model, edits, masks."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from graphprune.api import apply, plan, prune
from graphprune.errors import DataError
from graphprune.planning.plan_file import PLAN_FORMAT, PruningPlan, model_fingerprint
from models.zoo import build
from tests.helpers.onnxrt import random_feeds, relative_error, run


@pytest.fixture(scope="module")
def planned():
    return plan(build("resnet18"), target_macs=0.6, global_rank=True, round_to=2)


def _shapes(model) -> dict:
    return {t.name: tuple(t.dims) for t in model.graph.initializer}


def test_plan_lists_every_group_with_kept_indices(planned, tmp_path):
    data = json.loads(planned.plan.save(tmp_path / "p.json").read_text())
    assert data["format"] == PLAN_FORMAT and data["version"] == 1
    assert data["model"]["sha256"] == model_fingerprint(build("resnet18"))
    assert [g["id"] for g in data["groups"]] == [g.id for g in planned.analysis.groups]
    statuses = {g["status"] for g in data["groups"]}
    assert "pruned" in statuses and "blocked" in statuses
    for g in data["groups"]:
        if g["status"] == "blocked":
            assert g["reason"] and "parameters" not in g
            continue
        group = planned.analysis.groups[g["id"]]
        assert len(g["parameters"]) == len(group.params)
        for p in g["parameters"]:
            kept = group.kept_positions(next(q.space for q in group.params if q.initializer == p["initializer"]
                                             and q.axis == p["axis"]), np.array(g["removed_slots"], np.int64))
            assert p["kept"] == kept.tolist() and p["size"] == group.sizes[next(
                q.space for q in group.params if q.initializer == p["initializer"] and q.axis == p["axis"])]
    assert data["predicted"]["macs"]["after"] / data["predicted"]["macs"]["before"] == pytest.approx(0.6, abs=0.01)
    assert data["options"]["target_macs"] == 0.6 and data["options"]["global_rank"] is True
    assert PruningPlan.load(tmp_path / "p.json") == planned.plan


def test_apply_equals_prune(planned, tmp_path):
    path = planned.plan.save(tmp_path / "p.json")
    applied = apply(build("resnet18"), path)
    pruned = prune(build("resnet18"), target_macs=0.6, global_rank=True, round_to=2, validate=False)
    assert _shapes(applied.model) == _shapes(pruned.model)
    feeds = random_feeds(applied.model)
    a, b = run(applied.model, feeds), run(pruned.model, feeds)
    assert relative_error(a["logits"], b["logits"]) < 1e-6
    assert applied.oracle.passed and applied.macs_after == planned.plan.predicted["macs"]["after"]


def test_a_plan_for_another_model_is_refused(planned):
    other = build("resnet18", seed=1)
    with pytest.raises(DataError, match="made for a different model"):
        apply(other, planned.plan)


def test_fingerprint_ignores_storage_but_not_values():
    model = build("demo")
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy.doc_string = "re-saved"
    t = copy.graph.initializer[0]
    arr = numpy_helper.to_array(t)
    t.ClearField("raw_data")
    t.float_data.extend(arr.reshape(-1).tolist())  # same values, other storage
    assert model_fingerprint(copy) == model_fingerprint(model)
    t.float_data[0] += 1.0
    assert model_fingerprint(copy) != model_fingerprint(model)


def test_edited_plan_drops_whole_slots_and_says_so(planned):
    data = planned.plan.to_dict()
    entry = next(g for g in data["groups"] if g["status"] == "kept" or g["status"] == "pruned")
    param = entry["parameters"][0]
    dropped = param["kept"].pop(0)
    result = apply(build("resnet18"), PruningPlan.from_dict(data), validate=False)
    assert any(f"group {entry['id']}:" in n and "positions of one slot go together" in n for n in result.notes)
    group = result.analysis.groups[entry["id"]]
    for p in group.params:
        if p.space.tensor == param["initializer"] and p.axis == param["axis"]:
            slot = group.slot_of[p.space][dropped]
            assert slot in result.removed[entry["id"]]


@pytest.mark.parametrize("edit,error", [
    (lambda d: d.update(format="x"), "not a graphprune plan"),
    (lambda d: d.update(version=9), "version"),
    (lambda d: d["groups"][0].pop("id") or d["groups"].append({"parameters": [{"initializer": 1}]}), "malformed"),
])
def test_malformed_plans(planned, edit, error):
    data = json.loads(json.dumps(planned.plan.to_dict()))
    edit(data)
    with pytest.raises(DataError, match=error):
        PruningPlan.from_dict(data)


def test_plans_naming_unknown_or_blocked_axes_are_refused(planned):
    data = json.loads(json.dumps(planned.plan.to_dict()))
    pruned = next(g for g in data["groups"] if g["status"] == "pruned")
    pruned["parameters"][0]["initializer"] = "no_such_weight"
    with pytest.raises(DataError, match="not a prunable axis"):
        apply(build("resnet18"), PruningPlan.from_dict(data), validate=False)
    data = json.loads(json.dumps(planned.plan.to_dict()))
    pruned = next(g for g in data["groups"] if g["status"] == "pruned")
    pruned["parameters"][0]["kept"] = [10_000]
    with pytest.raises(DataError, match="out of range"):
        apply(build("resnet18"), PruningPlan.from_dict(data), validate=False)


def test_masks_name_the_model_as_given(planned):
    masks = planned.masks()
    pruned = apply(build("resnet18"), planned.plan, validate=False).model
    shapes = _shapes(pruned)
    bn = [name for name in masks if "BatchNormalization" in name]
    assert bn, "BatchNorm parameters are part of the source model's masks"
    for name, axes in masks.items():
        for axis, kept in axes.items():
            assert kept == sorted(set(kept))
            if name in shapes:
                assert shapes[name][int(axis)] == len(kept), name
    gamma = next(n for n in bn if n.endswith(".weight"))
    conv = gamma.replace("BatchNormalization", "Conv")
    assert masks[gamma]["0"] == masks[conv]["0"]
