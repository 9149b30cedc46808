"""The API never modifies a model it is given: every stage edits an editable graph over the
model's bytes, never the ModelProto itself."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import graphprune
from graphprune.api import inspect, plan, prune
from graphprune.errors import InvalidModelError
from models.zoo import build


def _feeds(n=4):
    return [{"input": np.random.default_rng(i).standard_normal((1, 3, 64, 64)).astype(np.float32)} for i in range(n)]


@pytest.mark.parametrize("kwargs", [dict(), dict(importance="fluctuation", calib="feeds"), dict(target_macs=0.6)])
def test_prune_and_plan_leave_the_given_model_untouched(kwargs):
    model = build("demo")
    before = model.SerializeToString()
    kwargs = {k: (_feeds() if v == "feeds" else v) for k, v in kwargs.items()}
    result = prune(model, ratio=0.3, **kwargs)
    assert model.SerializeToString() == before
    assert result.params_after < result.params_before
    plan(model, ratio=0.3, **kwargs)
    inspect(model)
    assert model.SerializeToString() == before


def test_every_other_api_function_leaves_the_given_model_untouched():
    model = build("demo")
    before = model.SerializeToString()
    planned = graphprune.plan(model, ratio=0.3)
    applied = graphprune.apply(model, planned.plan, validate=False)
    assert applied.params_after < applied.params_before
    masks = graphprune.export_masks(planned)
    assert masks and all(kept for axes in masks.values() for kept in axes.values())
    folded = graphprune.fold(model)
    assert folded.batchnorm_before == folded.folded_batchnorm > 0
    scan = graphprune.sensitivity(model, ratios=(0.5,), samples=1)
    assert scan.ratios == (0.5,) and scan.rows and all(len(r["drift"]) == 1 and r["drift"][0] >= 0 for r in scan.rows)
    assert graphprune.validate(model, model, samples=1).passed
    assert graphprune.profile(model, progress=False).total_params > 0
    assert model.SerializeToString() == before


def test_non_finite_weights_are_a_model_error_naming_the_initializer():
    model = build("resnet18")
    weight = next(t for t in model.graph.initializer if t.name.endswith("Conv_0.weight") and len(t.dims) == 4)
    arr = onnx.numpy_helper.to_array(weight).copy()
    arr.flat[0] = np.nan
    weight.CopyFrom(onnx.numpy_helper.from_array(arr, weight.name))
    with pytest.raises(InvalidModelError, match=f"initializer '{weight.name}' holds NaN or infinite values"):
        prune(model, ratio=0.3, keep_bn=True, validate=False)


@pytest.mark.parametrize("kwargs", [dict(), dict(target_macs=0.6, global_rank=True), dict(keep_bn=True)])
def test_validation_does_not_change_the_result(kwargs):
    """The checks run on the result, never into it: with and without validation, the same bytes."""
    unchecked = prune(build("resnet18"), ratio=0.4, validate=False, **kwargs)
    model = build("resnet18")
    before = model.SerializeToString()
    checked = prune(model, ratio=0.4, validate=True, **kwargs)
    assert checked.model.SerializeToString() == unchecked.model.SerializeToString()
    assert (checked.params_before, checked.macs_before) == (unchecked.params_before, unchecked.macs_before)
    assert checked.macs_after == unchecked.macs_after
    assert model.SerializeToString() == before and checked.drift is not None and checked.oracle.passed
