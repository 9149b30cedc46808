"""Shapes inferred once: when prepare leaves the graph as given, the analysis reads the skeleton and
shapes prepare made (or a weight-less copy of the source's proto) instead of serializing the graph
and inferring again; both are what serializing the prepared graph gives."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphprune.graph.index import GraphIndex
from graphprune.graph.model import to_proto
from graphprune.graph.proto import weightless_copy
from graphprune.graph.shapes import skeleton_shapes
from graphprune.passes.fold import fold
from graphprune.pipeline import Options, analyze, load, prepare
from models.transformers.registry import TRANSFORMERS, build_transformer
from models.transformers.scale import transformer_chain
from models.zoo import build
from tests.helpers.models import model as make_model

SHARED = ("yolox-nano.onnx", "fastestdet.onnx", "road-segmentation-adas-nhwc.onnx")


def _serialized(prepared) -> onnx.ModelProto:
    return to_proto(prepared.model, tensors="skeleton")


def _unchanged_models():
    from tests.regression.check import SHARED as shared_dir

    yield "chain-1000", transformer_chain(1000)
    for name in sorted(TRANSFORMERS)[:6]:
        yield name, build_transformer(name)
    for name in SHARED:
        yield name, onnx.load(str(shared_dir / name))


@pytest.mark.parametrize("keep_bn", [False, True])
def test_unchanged_graph_reuses_the_same_skeleton_and_shapes(keep_bn):
    checked = 0
    for label, proto in _unchanged_models():
        prepared = prepare(load(proto), Options(ratio=0.3, keep_bn=keep_bn))
        if not prepared.unchanged:
            continue
        checked += 1
        reference = _serialized(prepared)
        index = analyze(prepared, Options(ratio=0.3)).analysis.index
        assert index.skeleton.SerializeToString() == reference.SerializeToString(), label
        assert index.shapes == skeleton_shapes(reference), label
        if keep_bn:
            assert prepared.skeleton is None and prepared.shapes is None
        else:  # the fold's own: the analysis infers nothing again
            assert index.skeleton is prepared.skeleton and index.shapes is prepared.shapes
    assert checked >= 6  # the chain, the transformers without folds, the shared models


def test_a_folded_graph_is_inferred_again():
    prepared = prepare(load(build("resnet18")), Options(ratio=0.3))
    assert not prepared.unchanged and prepared.skeleton is None and prepared.shapes is None
    index = analyze(prepared, Options(ratio=0.3)).analysis.index
    reference = _serialized(prepared)
    assert index.skeleton.SerializeToString() == reference.SerializeToString()
    assert "BatchNormalization" not in {n.op_type for n in index.skeleton.graph.node}


def _with_dead_initializer() -> onnx.ModelProto:
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    return make_model(nodes, [("x", TensorProto.FLOAT, [2, 3])], [("y", TensorProto.FLOAT, [2, 4])],
                      {"w": w, "unused": np.ones(5, np.float32)})


def test_fold_hands_back_its_shapes_only_when_nothing_changed():
    source = _with_dead_initializer()
    cleaned = fold(load(source).editable(), source=source)
    assert cleaned.modified and cleaned.skeleton is None and cleaned.shapes is None  # cleanup dropped "unused"
    kept = weightless_copy(source)
    del kept.graph.initializer[1]
    kept_source = onnx.ModelProto()
    kept_source.CopyFrom(source)
    del kept_source.graph.initializer[1]
    same = fold(load(kept_source).editable(), source=kept_source)
    assert not same.modified
    assert same.skeleton.SerializeToString() == kept.SerializeToString()
    assert same.shapes["y"] == ((2, 4), TensorProto.FLOAT)


def test_an_index_given_a_skeleton_infers_on_it():
    proto = transformer_chain(1000)
    graph = load(proto).editable()
    given = weightless_copy(proto)
    index = GraphIndex(graph, skeleton=given)
    assert index.skeleton is given
    assert index.shapes == GraphIndex(graph).shapes
