"""Tensor shapes (graph/shapes.py) against onnxruntime's symbolic inference on every model we have:
declaring the sizes computed at run time must find every shape that onnx's inference refined by
onnxruntime's symbolic inference finds, the same, and spare the symbolic pass where it can."""
from __future__ import annotations

import onnx
import pytest

import graphprune.graph.shapes as shapes
from graphprune.graph.model import from_proto, to_proto
from graphprune.pipeline import Options, load, prepare
from models.transformers.registry import build_transformer
from models.transformers.scale import transformer_chain
from models.zoo import ZOO, build
from tests.helpers.heads import CASES, case_id
from tests.helpers.paths import light_models, load_named_model

SHARED = ("fastestdet.onnx", "image-classifier32.onnx", "mnist-cntk.onnx", "road-segmentation-adas-nhwc.onnx",
          "ultraface-slim-320.onnx", "yolox-nano.onnx")


def symbolic_reference(light: onnx.ModelProto) -> dict:
    """The shapes without declared sizes: onnx's inference, refined by onnxruntime's symbolic
    inference wherever it leaves a shape unknown (graphprune's shapes before this change)."""
    plain = shapes._onnx_inference(light)
    result: dict = {}
    shapes._collect_shapes(plain.graph, result)
    if not shapes._complete(result, light):
        shapes._refine_with_symbolic_inference(plain, result)
    result.update((t.name, (tuple(t.dims), t.data_type)) for t in light.graph.initializer)
    return result


def assert_as_good_as_symbolic(proto: onnx.ModelProto, prepared: bool = False) -> tuple[dict, dict]:
    """``prepared``: compare on the model as the analysis sees it (normalized and folded)."""
    graph = prepare(load(proto), Options()).model if prepared else from_proto(proto)
    light = to_proto(graph, tensors="skeleton")
    reference, found = symbolic_reference(light), shapes.skeleton_shapes(light)
    lost = {name: (entry, found.get(name)) for name, entry in reference.items()
            if entry[0] is not None and found.get(name) != entry
            and not (found.get(name) and _refines(found[name][0], entry[0]))}
    assert not lost, f"{len(lost)} shapes differ from onnxruntime's symbolic inference, e.g. {list(lost.items())[:3]}"
    return reference, found


def _refines(shape, reference) -> bool:
    """``shape`` equals ``reference`` wherever ``reference`` knows a size (and may know more)."""
    return len(shape) == len(reference) and all(r is None or s == r for s, r in zip(shape, reference))


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_shapes_match_symbolic_inference(name):
    reference, found = assert_as_good_as_symbolic(build(name))
    assert found == reference


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_transformer_shapes_match_symbolic_inference(case):
    name, style, kw = case
    reference, found = assert_as_good_as_symbolic(build_transformer(name, style=style, **dict(kw)))
    if name != "bert_attention23":  # onnxruntime's symbolic inference fails on it: sizes stay unknown
        assert found == reference
    else:
        assert found["/embeddings/Slice_0_out0"] == (("sequence", 32), onnx.TensorProto.FLOAT)
        assert reference["/embeddings/Slice_0_out0"] == ((None, None), onnx.TensorProto.FLOAT)


@pytest.mark.parametrize("name", SHARED + tuple(p.name for p in light_models()))
def test_file_model_shapes_match_symbolic_inference(name):
    reference, found = assert_as_good_as_symbolic(load_named_model(name))
    assert found == reference


@pytest.mark.parametrize("name", SHARED)
def test_prepared_file_model_shapes_match_symbolic_inference(name):
    reference, found = assert_as_good_as_symbolic(load_named_model(name), prepared=True)
    assert found == reference


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_prepared_transformer_shapes_match_symbolic_inference(case):
    name, style, kw = case
    reference, found = assert_as_good_as_symbolic(build_transformer(name, style=style, **dict(kw)), prepared=True)
    if name != "bert_attention23":
        assert found == reference


def test_transformer_chain_needs_one_onnx_inference_and_no_symbolic_pass(monkeypatch):
    passes = []
    onnx_inference = shapes._onnx_inference
    monkeypatch.setattr(shapes, "_onnx_inference", lambda light: passes.append(1) or onnx_inference(light))
    monkeypatch.setattr(shapes, "_refine_with_symbolic_inference", lambda *a: pytest.fail("symbolic inference ran"))
    chain = transformer_chain(300)
    found = shapes.infer_shapes(chain)
    assert len(passes) == 1
    layers = sum(1 for n in chain.graph.node if n.op_type == "Softmax")
    assert layers == 3
    for layer in range(layers):
        softmax = f"/model/layers.{layer}/self_attn/Softmax_0_out0"
        assert found[softmax] == (("batch", 4, "sequence", "sequence"), onnx.TensorProto.FLOAT)
    assert found["/model/Slice_1_out0"] == (("sequence", "sequence"), onnx.TensorProto.FLOAT)


def test_ops_without_a_declared_size_fall_back_to_symbolic_inference(monkeypatch):
    # GPT-2's torchscript export sizes its position ids with Range: onnxruntime's pass is still needed
    calls = []
    refine = shapes._refine_with_symbolic_inference
    monkeypatch.setattr(shapes, "_refine_with_symbolic_inference", lambda *a: calls.append(1) or refine(*a))
    found = shapes.infer_shapes(build_transformer("gpt2", style="torchscript"))
    assert calls == [1]
    assert found["/transformer/Range_0_out0"][0] == ("sequence",)


def test_value_infos_of_one_type_read_alike_and_each_size_kind_is_read():
    """_collect_shapes reads each distinct type once: tensors of one type get equal entries, and every
    kind of size reads as it should (static, named, onnx's ``unk__`` names and negative sizes as unknown,
    no shape as None, a non-tensor type as (None, 0)); a later shape fills an earlier unknown one."""
    make = onnx.helper.make_tensor_value_info
    sequence = onnx.helper.make_value_info("seq", onnx.helper.make_sequence_type_proto(
        onnx.helper.make_tensor_type_proto(onnx.TensorProto.FLOAT, [2])))
    negative = make("neg", onnx.TensorProto.FLOAT, [3])
    negative.type.tensor_type.shape.dim[0].dim_value = -1
    graph = onnx.helper.make_graph(
        [], "g", [make("x", onnx.TensorProto.FLOAT, ["batch", 8]), make("late", onnx.TensorProto.INT64, None)],
        [make("y", onnx.TensorProto.FLOAT, ["batch", 8])],
        value_info=[make("a", onnx.TensorProto.FLOAT, ["batch", 8]), make("b", onnx.TensorProto.FLOAT, ["unk__4", 8]),
                    make("c", onnx.TensorProto.FLOAT16, ["batch", 8]), make("d", onnx.TensorProto.FLOAT, ["batch", 8]),
                    make("late", onnx.TensorProto.INT64, [5]), make("x", onnx.TensorProto.FLOAT, [1, 8]),
                    sequence, negative])
    result: dict = {}
    shapes._collect_shapes(graph, result)
    assert result == {"x": (("batch", 8), 1), "late": ((5,), 7), "a": (("batch", 8), 1), "b": ((None, 8), 1),
                      "c": (("batch", 8), 10), "d": (("batch", 8), 1), "seq": (None, 0), "neg": ((None,), 1),
                      "y": (("batch", 8), 1)}


@pytest.mark.parametrize("redeclared", [False, True])
def test_declared_sizes_are_appended_to_the_value_infos_a_skeleton_has(redeclared):
    """The declarations onnx's inference is given: the skeleton's own value infos, those of the
    declared tensors replaced (a copy), then the declared ones, whether they reach onnx as bytes
    (no value info of a declared tensor: the skeleton's bytes and a graph of only the declarations)
    or as a copy. Either way the skeleton itself is left as it was."""
    make = onnx.helper.make_tensor_value_info
    light = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["h"]), onnx.helper.make_node("Relu", ["h"], ["y"])], "g",
        [make("x", onnx.TensorProto.FLOAT, ["batch", 3])], [make("y", onnx.TensorProto.FLOAT, None)],
        value_info=[make("h", onnx.TensorProto.FLOAT, None)]))
    before = light.SerializeToString()
    seeds = {"y": (("batch", 3), onnx.TensorProto.FLOAT)} | ({"h": ((2, 3), onnx.TensorProto.FLOAT)} if redeclared else {})
    declared = shapes._declared(light, seeds)
    assert isinstance(declared, bytes) == (not redeclared)
    model = onnx.load_from_string(declared) if isinstance(declared, bytes) else declared
    expected = onnx.ModelProto()
    expected.CopyFrom(light)
    if redeclared:
        del expected.graph.value_info[:]
    expected.graph.value_info.extend(make(name, elem, list(dims)) for name, (dims, elem) in seeds.items())
    assert model.SerializeToString() == expected.SerializeToString()
    assert [vi.name for vi in model.graph.value_info] == (["y", "h"] if redeclared else ["h", "y"])
    assert shapes._dims(model.graph.value_info[-1].type.tensor_type) == ((2, 3) if redeclared else ("batch", 3))
    assert light.SerializeToString() == before
