"""The API never mutates a model it is given, even when the CLI hands it over without a copy."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from graphprune.api import inspect, plan, prune
from graphprune.errors import InvalidModelError
from models.zoo import build


def _feeds(n=4):
    return [{"input": np.random.default_rng(i).standard_normal((1, 3, 64, 64)).astype(np.float32)} for i in range(n)]


@pytest.mark.parametrize("owned", [False, True])
@pytest.mark.parametrize("kwargs", [dict(), dict(importance="fluctuation", calib="feeds"), dict(target_macs=0.6)])
def test_prune_and_plan_leave_the_given_model_untouched(owned, kwargs):
    model = build("demo")
    before = model.SerializeToString()
    kwargs = {k: (_feeds() if v == "feeds" else v) for k, v in kwargs.items()}
    result = prune(model, ratio=0.3, _owned=owned, **kwargs)
    assert model.SerializeToString() == before
    assert result.params_after < result.params_before
    plan(model, ratio=0.3, _owned=owned, **kwargs)
    inspect(model)
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
def test_consuming_the_model_gives_the_same_result(kwargs):
    """`prune --no-validate` prunes the loaded model itself (no working copy): same output, same plan."""
    reference = prune(build("resnet18"), ratio=0.4, validate=False, **kwargs)
    consumed = prune(build("resnet18"), ratio=0.4, validate=False, _owned=True, _consume=True, **kwargs)
    assert consumed.model.SerializeToString() == reference.model.SerializeToString()
    assert consumed.plan.model_sha256 == reference.plan.model_sha256
    assert (consumed.params_before, consumed.macs_before) == (reference.params_before, reference.macs_before)
    assert consumed.macs_after == reference.macs_after


def test_consume_is_ignored_when_the_original_is_still_needed():
    model = build("resnet18")
    before = model.SerializeToString()
    result = prune(model, ratio=0.4, validate=True, _owned=True, _consume=True)   # drift needs the original
    assert model.SerializeToString() == before and result.drift is not None
