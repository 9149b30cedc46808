"""Sizes for dynamic input dims: ladder, the model's own hints, solved constraints, overrides, errors.

Each model below runs at exactly the sizes its arithmetic allows (stated next to it), so the
expected size is known without running graphprune.
"""
from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphprune.errors import UsageError
from graphprune.validation import make_feeds, resolve_input_shapes, validate
from graphprune.validation.inputs import model_inputs
from graphprune.validation.sizes import IMAGE_SIZES, SEQUENCE_LENGTHS, dim_groups
from tests.helpers.models import model, priors_model

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _relu(dims) -> onnx.ModelProto:
    return model([helper.make_node("Relu", ["x"], ["y"])], [("x", F, dims)], [("y", F, dims)])


def _flatten_into_gemm() -> onnx.ModelProto:
    """x [N, 1, H, W] -> Conv 3x3 (4 channels, no padding) -> Flatten -> Gemm with K = 4 * 26 * 26.

    The Gemm runs only when (H - 2) * (W - 2) = 676: H = W = 28 on a square input."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Flatten", ["c"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc")]
    inits = {"w": rng.standard_normal((4, 1, 3, 3)).astype(np.float32),
             "fc": rng.standard_normal((4 * 26 * 26, 5)).astype(np.float32)}
    return model(nodes, [("x", F, ["N", 1, "H", "W"])], [("y", F, ["N", 5])], inits)


def _resize_plus_skip() -> onnx.ModelProto:
    """x [1, 1, H, W] -> Resize to constant sizes 24 x 40 -> Add x: runs only at H, W = 24, 40."""
    nodes = [helper.make_node("Resize", ["x", "", "", "sizes"], ["r"], mode="nearest", name="resize"),
             helper.make_node("Add", ["r", "x"], ["y"], name="skip")]
    return model(nodes, [("x", F, [1, 1, "H", "W"])], [("y", F, [1, 1, "H", "W"])],
                 {"sizes": np.array([1, 1, 24, 40], np.int64)})


def _positional(length: int = 48, ids_dims=("batch", "seq")) -> onnx.ModelProto:
    """ids [batch, seq] -> embedding [10, 8] -> + positional table [1, length, 8]: seq must be ``length``."""
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], name="embed"),
             helper.make_node("Add", ["e", "pos"], ["y"], name="add_positions")]
    rng = np.random.default_rng(2)
    inits = {"table": rng.standard_normal((10, 8)).astype(np.float32),
             "pos": rng.standard_normal((1, length, 8)).astype(np.float32)}
    return model(nodes, [("ids", I64, list(ids_dims))], [("y", F, [ids_dims[0], length, 8])], inits)


def test_model_that_runs_at_any_size_gets_the_first_ladder_size():
    m = _relu(["N", 3, "H", "W"])
    resolved = resolve_input_shapes(m)
    assert IMAGE_SIZES[0] == 224
    assert resolved.shapes == {"x": (1, 3, 224, 224)}
    assert (resolved.source, resolved.chosen, resolved.how) == ("chosen", (("H", 224), ("W", 224)), "the first size tried")
    assert resolved.summary() == ("input shape of the checks: x: 1x3x224x224 (dynamic H=224, W=224: the first size tried; "
                                  "--input-shape sets them)")
    assert make_feeds(m, 1)[0]["x"].shape == (1, 3, 224, 224)


def test_flatten_into_a_fixed_gemm_is_solved_from_the_gemm():
    m = _flatten_into_gemm()
    resolved = resolve_input_shapes(m)
    assert resolved.shapes == {"x": (1, 1, 28, 28)}
    assert resolved.how == "Gemm node 'fc' needs 2704 positions on axis -1 of 'f'"
    report = validate(m, m, samples=1, progress=False)
    assert report.passed and report.inputs.shapes == {"x": (1, 1, 28, 28)} and report.output("y").shape == (1, 5)


def test_non_square_size_fixed_by_constant_priors_is_found_at_height_width_3_to_4():
    resolved = resolve_input_shapes(priors_model())
    assert resolved.shapes == {"x": (1, 2, 12, 16)}
    assert dict(resolved.chosen) == {"H": 12, "W": 16}
    assert resolved.how == "Mul node 'priors_mul' needs 192 positions on axis -2 of 't'"


def test_resize_to_constant_sizes_names_the_input_size():
    resolved = resolve_input_shapes(_resize_plus_skip())
    assert resolved.shapes == {"x": (1, 1, 24, 40)}
    assert resolved.how == "a Resize in the model targets 24x40"


def test_sequence_length_fixed_by_a_positional_table_is_solved():
    assert 48 not in SEQUENCE_LENGTHS
    resolved = resolve_input_shapes(_positional(48))
    assert resolved.shapes == {"ids": (1, 48)} and dict(resolved.chosen) == {"seq": 48}
    assert resolved.how == "Add node 'add_positions' needs 48 positions on axis -2 of 'e'"
    report = validate(_positional(48), _positional(48), samples=2, progress=False)
    assert report.passed and report.output("y").shape == (1, 48, 8)


def test_paddle_dim_names_and_shared_names_take_one_size():
    """Paddle2ONNX names every dynamic dim ``p2o.DynamicDimension.N``; two inputs sharing one get one size."""
    b, s = "p2o.DynamicDimension.0", "p2o.DynamicDimension.1"
    nodes = [helper.make_node("Cast", ["ids"], ["c"], to=F), helper.make_node("Mul", ["c", "mask"], ["y"])]
    m = model(nodes, [("ids", I64, [b, s]), ("mask", F, [b, s])], [("y", F, [b, s])])
    resolved = resolve_input_shapes(m)
    assert resolved.shapes == {"ids": (1, SEQUENCE_LENGTHS[0]), "mask": (1, SEQUENCE_LENGTHS[0])}
    assert resolved.chosen == ((s, 16),)


def test_question_marks_and_unnamed_dims_are_independent_unknowns():
    m = model([helper.make_node("Identity", ["a"], ["y"]), helper.make_node("Identity", ["b"], ["z"])],
              [("a", F, [1, "?", 5]), ("b", F, [1, None, "?"])], [("y", F, [1, None, 5]), ("z", F, [1, None, None])])
    groups = dim_groups(model_inputs(m))
    assert [(g.label, g.role, g.members) for g in groups] == [
        ("a axis 1", "sequence", (("a", 1),)), ("b axis 1", "sequence", (("b", 1),)),
        ("b axis 2", "sequence", (("b", 2),))]
    assert resolve_input_shapes(m).shapes == {"a": (1, 16, 5), "b": (1, 16, 16)}


def test_given_shape_overrides_and_fixes_dims_of_the_same_name_elsewhere():
    nodes = [helper.make_node("Add", ["a", "b"], ["y"])]
    m = model(nodes, [("a", F, ["N", "S"]), ("b", F, ["N", "S"])], [("y", F, ["N", "S"])])
    resolved = resolve_input_shapes(m, {"a": (1, 5)})
    assert resolved.shapes == {"a": (1, 5), "b": (1, 5)} and resolved.source == "given"
    assert resolve_input_shapes(_flatten_into_gemm(), {"x": (1, 1, 28, 28)}).source == "given"


def test_static_and_batch_only_models_are_not_probed():
    assert resolve_input_shapes(_relu([2, 3, 8, 8])).source == "model"
    resolved = resolve_input_shapes(_relu(["N", 3, 8, 8]))
    assert resolved.shapes == {"x": (1, 3, 8, 8)} and resolved.source == "model" and resolved.chosen == ()
    assert resolved.summary() == "input shape of the checks: x: 1x3x8x8"


def test_no_size_that_runs_asks_for_input_shape():
    """2 x S elements can never be reshaped into 7."""
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"], name="to_seven")]
    m = model(nodes, [("x", F, [1, 2, "S"])], [("y", F, [1, 7])], {"shape": np.array([1, 7], np.int64)})
    with pytest.raises(UsageError) as info:
        resolve_input_shapes(m)
    text = str(info.value)
    assert text.startswith("input 'x' axis 2 is dynamic ('S') and no size graphprune tried runs (tried 16; 8; 32; 128")
    assert "Name:'to_seven'" in text and "graphprune_probe" not in text and "onnxruntime_src" not in text
    assert text.endswith("give its size with --input-shape x:1x2xS (API: input_shapes={name: shape})")


def test_declared_output_shapes_prefer_the_size_that_produces_them():
    """A Relu runs at any size; the declared output 1x3x64x64 picks 64 out of the ladder."""
    m = model([helper.make_node("Relu", ["x"], ["y"])], [("x", F, [1, 3, "H", "W"])], [("y", F, [1, 3, 64, 64])])
    resolved = resolve_input_shapes(m)
    assert resolved.shapes == {"x": (1, 3, 64, 64)} and resolved.how == "the first of the sizes tried that runs with the declared output shapes"


def test_report_records_the_shapes_and_the_model_keeps_its_dynamic_dims(caplog):
    m = _relu(["N", 3, "H", "W"])
    with caplog.at_level(logging.INFO, logger="graphprune.validation.sizes"):
        report = validate(_relu(["N", 3, "H", "W"]), m, samples=1, progress=False)
    assert report.passed and report.inputs.shapes == {"x": (1, 3, 224, 224)}
    assert report.summary_lines()[-1].startswith("input shape of the checks: x: 1x3x224x224 (dynamic H=224, W=224")
    assert report.to_dict()["inputs"] == {"shapes": {"x": [1, 3, 224, 224]}, "source": "chosen",
                                          "chosen": {"H": 224, "W": 224}, "how": "the first size tried"}
    assert [d.dim_param for d in m.graph.input[0].type.tensor_type.shape.dim] == ["N", "", "H", "W"]
    from_data = validate(m, m, data={"x": np.ones((1, 3, 5, 7), np.float32)}, progress=False)
    assert from_data.inputs.shapes == {"x": (1, 3, 5, 7)} and from_data.inputs.source == "data"


def test_a_resolution_is_remembered_for_the_same_model():
    m = priors_model()
    first = resolve_input_shapes(m)
    again = resolve_input_shapes(priors_model())
    assert again is first
    assert resolve_input_shapes(priors_model(count=300)).shapes == {"x": (1, 2, 15, 20)}   # 15 x 20 = 300
