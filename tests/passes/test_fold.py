"""fold(): the library API, and acceptance on real and reference models."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from graphprune.graph.model import from_proto, to_proto
from graphprune.passes.fold import count_batchnorm, fold
from graphprune.passes.normalize import normalize
from tests.helpers.fold import GraphBuilder, assert_fold_exact, fold_checked, op_counts
from tests.helpers.paths import light_models, shared_model

#: BNs the light models keep: DenseNet-121's pre-activation BNs (Concat/MaxPool/AveragePool ->
#: BN -> Mul -> Add -> Relu -> Conv). No linear node precedes them with a single reader, and a
#: Relu follows them, so no exact fold exists; their Mul/Add are folded into them instead.
LIGHT_KEPT = {"light_densenet121": 62}
#: zoo models whose pre-activation BNs (BN -> Relu, after Concat/MaxPool) cannot fold exactly
ZOO_KEPT = {"densenet": 33}


def _tiny_model():
    b = GraphBuilder()
    h = b.bn(b.conv(b.input([1, 3, 6, 6]), 3, 4), 4)
    h = b.op("Add", [b.op("Mul", [h, b.const(shape=(4, 1, 1))]), b.const(shape=(1, 4, 1, 1))])
    keep = b.bn(b.op("Concat", [h, h], axis=1), 8)
    return b.model(b.op("Relu", [keep]))


# ----------------------------------------------------------------------------- API
def _batchnorms(model: onnx.ModelProto) -> int:
    return count_batchnorm(from_proto(model))


def test_fold_in_place_returns_the_same_model():
    model = _tiny_model()
    graph = from_proto(model)
    result = fold(graph)
    assert result.graph is graph and count_batchnorm(graph) == 1
    assert _batchnorms(model) == 2  # the ModelProto under the editable graph is never edited


def test_fold_on_a_copy_leaves_the_input_alone():
    model = _tiny_model()
    graph = from_proto(model)
    before = to_proto(graph).SerializeToString()
    result = fold(graph, inplace=False)
    assert to_proto(graph).SerializeToString() == before == model.SerializeToString()
    assert result.graph is not graph and count_batchnorm(result.graph) == 1
    assert _batchnorms(result.model) == 1


def test_result_lists_folds_and_kept_batchnorms():
    result = fold_checked(_tiny_model())
    assert op_counts(result.model) == {"Conv": 1, "Concat": 1, "BatchNormalization": 1, "Relu": 1}
    assert (result.batchnorm_before, result.folded_batchnorm, result.batchnorm_after) == (2, 1, 1)
    assert sorted(f.op_type for f in result.folded) == ["Add", "BatchNormalization", "Mul"]
    (kept, reason), = result.skipped
    assert "Concat" in reason and "Relu" in reason
    lines = result.summary_lines()
    assert lines[0].startswith("folded 1 of 2 BatchNormalization nodes") and lines[0].endswith("1 left")
    assert "folded 2 per-channel Mul/Add/Sub/Div nodes" in lines
    assert any(line.strip().startswith(f"{kept}:") for line in lines)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["batchnorm"] == {"before": 2, "folded": 1, "after": 1}
    assert data["skipped"] == [{"node": kept, "reason": reason}] and data["affine_folded"] == 2


def test_fold_twice_changes_nothing_the_second_time():
    first = fold(from_proto(_tiny_model()))
    frozen = first.model.SerializeToString()
    second = fold(first.graph)
    assert first.modified and not second.modified and second.folded == []
    assert first.model.SerializeToString() == frozen
    assert second.summary_lines()[-1] == "nothing to fold: the model is unchanged"


def test_keeping_batchnorm_leaves_every_bn_untouched():
    model = _tiny_model()
    result = fold(from_proto(model), batchnorm=False)
    bn_params = {i for n in model.graph.node if n.op_type == "BatchNormalization" for i in n.input[1:]}
    after = {t.name: t for t in result.model.graph.initializer}
    before = {t.name: t for t in model.graph.initializer}
    assert count_batchnorm(result.graph) == 2 and result.skipped == [] and result.folded == []
    assert all(after[name] == before[name] for name in bn_params)


def test_affine_stage_can_be_switched_off():
    result = fold_checked(_tiny_model(), affine=False)
    assert op_counts(result.model) == {"Conv": 1, "Mul": 1, "Add": 1, "Concat": 1, "BatchNormalization": 1,
                                       "Relu": 1}


# ----------------------------------------------------------------------------- real models
def test_ultraface_every_batchnorm_folds():
    model = onnx.load(str(shared_model("ultraface-slim-320.onnx")))
    assert _batchnorms(model) == 25
    result = fold_checked(model)
    assert (result.folded_batchnorm, result.batchnorm_after, result.skipped) == (25, 0, [])
    assert op_counts(result.model)["Conv"] == op_counts(model)["Conv"]
    assert [o.name for o in result.model.graph.output] == [o.name for o in model.graph.output]


def _randomize(model: onnx.ModelProto, seed: int = 0) -> None:
    """Replace the light models' constant fills by seeded random weights (in place).

    Their fills make every class score equal, so output equality would prove nothing; He-scaled
    weights and non-trivial BN statistics make the outputs depend on every folded value.
    """
    rng = np.random.default_rng(seed)
    role = {name: (node.op_type, i) for node in model.graph.node for i, name in enumerate(node.input)}
    for tensor in model.graph.initializer:
        value = numpy_helper.to_array(tensor)
        if value.dtype != np.float32 or tensor.name not in role:
            continue
        op, index = role[tensor.name]
        if op == "BatchNormalization":
            low, high = {1: (0.5, 1.5), 4: (0.5, 2.0)}.get(index, (-0.3, 0.3))
            new = rng.uniform(low, high, value.shape)
        elif op in ("Conv", "Gemm") and index == 1:
            new = rng.standard_normal(value.shape) * np.sqrt(2.0 / (value.size / value.shape[0]))
        elif op == "Mul":
            new = rng.uniform(0.5, 1.5, value.shape)
        else:
            new = rng.normal(0.0, 0.1, value.shape)
        tensor.CopyFrom(numpy_helper.from_array(new.astype(np.float32), tensor.name))


@pytest.mark.parametrize("path", [p for p in light_models() if "densenet" in p.name or "resnet" in p.name
                                  or "inception_v2" in p.name or "shufflenet" in p.name], ids=lambda p: p.stem)
def test_light_models_fold(path):
    graph = from_proto(onnx.load(str(path)))
    normalize(graph)
    model = to_proto(graph)
    _randomize(model)
    for node in model.graph.node:  # random logits saturate Softmax: compare the logits too
        if node.op_type == "Softmax":
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(node.input[0]))
    before = _batchnorms(model)
    result = fold(from_proto(model))
    assert_fold_exact(model, result.model, seeds=(0,))
    kept = LIGHT_KEPT.get(path.stem, 0)
    assert before > 0 and (result.folded_batchnorm, result.batchnorm_after) == (before - kept, kept)
    assert len(result.skipped) == kept
    assert all("feeds Relu" in reason for _, reason in result.skipped)


@pytest.mark.parametrize("opset", [9, 17])
def test_every_zoo_model_folds(opset):
    zoo = pytest.importorskip("models.zoo", reason="models/zoo.py (the reference zoo) is not in this checkout")
    for name in sorted(zoo.ZOO):
        model = zoo.build(name, opset=opset, keep_bn=True, size="small")
        result = fold(from_proto(model))
        assert_fold_exact(model, result.model, seeds=(0,))
        kept = ZOO_KEPT.get(name, 0)
        assert result.batchnorm_before > 0, name
        assert (result.batchnorm_after, len(result.skipped)) == (kept, kept), (name, result.skipped[:2])
        assert all("feeds Relu" in reason for _, reason in result.skipped), name
