"""graph/model.py: a model that goes through the editable graph without an edit gives back its
bytes; the ModelProto under an editable graph is never modified by edits; copies are independent."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from graphprune.graph import edit
from graphprune.graph.model import SKELETON_KEEP_ELEMENTS, copy_model, from_proto, to_proto
from models.zoo import ZOO, build
from tests.helpers import robust as rm
from tests.helpers.paths import light_models, shared_model

SHARED = ["ultraface-slim-320.onnx", "yolox-nano.onnx", "road-segmentation-adas-nhwc.onnx", "fastestdet.onnx",
          "mnist-cntk.onnx", "image-classifier32.onnx"]
#: hand-made models with what exporters write rarely: functions, metadata and docs everywhere,
#: subgraphs, IR 3 initializer inputs, custom domains, quantization, float16/bfloat16, an old IR
UNUSUAL = {"rich": rm.rich_model, "if": rm.if_node, "loop": rm.loop_node, "scan": rm.scan_node,
           "ir3-initializer-inputs": rm.initializers_as_inputs, "custom-domain": rm.custom_domain,
           "qdq": rm.qdq, "qlinear-conv": rm.qlinear_conv, "float16": rm.float16_cnn, "bfloat16": rm.bfloat16_mlp,
           "opset9-ir4": lambda: rm.with_versions(opset=9, ir=4), "shape-subgraph": rm.shape_subgraph,
           "transformer-block": rm.transformer_block}


def _assert_round_trip(model: onnx.ModelProto) -> None:
    data = model.SerializeToString()
    assert to_proto(from_proto(model)).SerializeToString() == data
    assert model.SerializeToString() == data


@pytest.mark.parametrize("name", sorted(ZOO))
@pytest.mark.parametrize("opset", [9, 17])
def test_zoo_round_trip_is_byte_exact(name, opset):
    _assert_round_trip(build(name, opset=opset, keep_bn=True))


@pytest.mark.parametrize("name", SHARED)
def test_shared_models_round_trip_byte_exact(name):
    _assert_round_trip(onnx.load(str(shared_model(name))))


@pytest.mark.parametrize("path", light_models(), ids=lambda p: p.stem)
def test_light_models_round_trip_byte_exact(path):
    _assert_round_trip(onnx.load(str(path)))


@pytest.mark.parametrize("name", sorted(UNUSUAL))
def test_unusual_models_round_trip_byte_exact(name):
    _assert_round_trip(UNUSUAL[name]())


def test_explicit_default_fields_are_written_again():
    """Fields set to their default value (empty doc strings, domain "") come back as set."""
    model = rm.small_cnn()
    model.doc_string, model.graph.doc_string = "", ""
    model.graph.node[0].domain = ""
    model.graph.node[1].doc_string = ""
    assert model.HasField("doc_string") and model.graph.node[0].HasField("domain")
    _assert_round_trip(model)


def test_edits_never_touch_the_proto_under_the_graph():
    model = build("resnet18")
    before = model.SerializeToString()
    graph = from_proto(model)
    name, value = next((n, v) for n, v in graph.graph.initializers.items() if len(v.shape) == 4)
    edit.write_initializer(value, np.zeros(value.shape.numpy(), np.float32))
    edit.set_attribute(next(iter(graph.graph)), "group", 1)
    edited = to_proto(graph)
    assert model.SerializeToString() == before
    assert not numpy_helper.to_array(next(t for t in edited.graph.initializer if t.name == name)).any()
    assert numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == name)).any()


def test_copy_model_is_independent():
    graph = from_proto(build("demo"))
    copy = copy_model(graph)
    assert to_proto(copy).SerializeToString() == to_proto(graph).SerializeToString()
    name, value = next(iter(copy.graph.initializers.items()))
    ones = np.ones(value.shape.numpy(), value.const_value.numpy().dtype)
    edit.write_initializer(value, ones)

    def array(model):
        return numpy_helper.to_array(next(t for t in to_proto(model).graph.initializer if t.name == name))

    assert np.array_equal(array(copy), ones)
    assert not np.array_equal(array(graph), ones)


def test_skeleton_and_none_copies():
    model = build("resnet18")
    graph = from_proto(model)
    sizes = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    skeleton = to_proto(graph, tensors="skeleton")
    assert [t.name for t in skeleton.graph.initializer] == [t.name for t in model.graph.initializer]
    for t, original in zip(skeleton.graph.initializer, model.graph.initializer):
        assert list(t.dims) == list(original.dims) and t.data_type == original.data_type
        big = sizes[t.name] > SKELETON_KEEP_ELEMENTS and t.data_type != onnx.TensorProto.INT64
        assert (t.ByteSize() < 64 + len(t.name)) if big else (t.SerializeToString() == original.SerializeToString())
    assert any(n > SKELETON_KEEP_ELEMENTS for n in sizes.values())
    empty = to_proto(graph, tensors="none")
    assert len(empty.graph.initializer) == 0 and list(empty.graph.node) == list(model.graph.node)
    with pytest.raises(ValueError, match="tensors must be all, skeleton or none"):
        to_proto(graph, tensors="some")
