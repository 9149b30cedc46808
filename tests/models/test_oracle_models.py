"""Both correctness oracles on every reference architecture, third-party model and light model."""
from __future__ import annotations

import pytest

from models.zoo import ZOO, build
from tests.helpers.paths import LIGHT_MODELS, light_models, shared_model
from tests.helpers.oracle import ORACLE_RTOL, dead_channel_check, pruning_oracle_check, ratio_zero_check

SHARED = ["ultraface-slim-320.onnx", "yolox-nano.onnx", "road-segmentation-adas-nhwc.onnx", "fastestdet.onnx",
          "mnist-cntk.onnx", "image-classifier32.onnx"]
#: third-party models where every group reaches a graph output or input (nothing can be pruned)
NOTHING_PRUNABLE: set[str] = set()
LIGHT = [p.name for p in light_models()]


def _source(kind: str, name: str):
    if kind == "zoo":
        return build(name, opset=17)
    if kind == "shared":
        return shared_model(name)
    path = LIGHT_MODELS / name
    if not path.exists():
        pytest.fail(f"onnx light model {path} not found", pytrace=False)
    return path


CASES = ([("zoo", n) for n in ZOO] + [("shared", n) for n in SHARED] + [("light", n) for n in LIGHT])


@pytest.mark.parametrize("kind,name", CASES, ids=[f"{k}-{n}" for k, n in CASES])
def test_dead_channels_are_removed_and_outputs_unchanged(kind, name):
    res = dead_channel_check(_source(kind, name), ratio=0.25)
    assert res.output_shapes_equal
    assert res.dead_removed_exactly, "L2 did not remove exactly the killed slots"
    assert res.max_rel_error <= ORACLE_RTOL, f"outputs changed by {res.max_rel_error:.3g}"
    if name in NOTHING_PRUNABLE:
        assert res.prunable == 0 and res.removed_slots == 0
        assert res.params_after == res.params_before
    else:
        assert res.prunable >= 1 and res.removed_slots >= 1
        assert res.params_after < res.params_before
    # every blocked group names why
    for g in res.analysis.blocked_groups:
        assert g.barriers and all(b.reason for b in g.barriers)


@pytest.mark.parametrize("kind,name", CASES, ids=[f"{k}-{n}" for k, n in CASES])
def test_pruning_oracle_at_half(kind, name):
    res = pruning_oracle_check(_source(kind, name), ratio=0.5, importance="l2")
    assert res.output_shapes_equal
    assert res.max_rel_error <= ORACLE_RTOL, f"pruned model differs from its oracle by {res.max_rel_error:.3g}"
    if name not in NOTHING_PRUNABLE:
        assert res.params_after < res.params_before


@pytest.mark.parametrize("kind,name", CASES, ids=[f"{k}-{n}" for k, n in CASES])
def test_ratio_zero_changes_nothing(kind, name):
    assert ratio_zero_check(_source(kind, name)) == 0.0
