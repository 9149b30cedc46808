"""``validate`` end to end on hand-made models: verdicts, worst output, feeds, error messages."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphprune.errors import DataError, InvalidModelError, ModelLoadError, UsageError
from graphprune.validation import ValidationReport, make_feeds, validate
from tests.helpers.models import logits, model, save, small_cnn, two_outputs


def _integer_feeds(count: int, shape=(2, 3)):
    """Integer-valued floats: adding 0.25 to them is exact, so errors are known to the bit."""
    rng = np.random.default_rng(7)
    return [{"x": rng.integers(-5, 6, shape).astype(np.float32)} for _ in range(count)]


def test_identical_models_pass_with_zero_error():
    m = small_cnn()
    report = validate(m, m, samples=3, progress=False)
    assert isinstance(report, ValidationReport)
    assert report.passed and report.samples == 3
    (y,) = report.outputs
    assert (y.name, y.shape) == ("y", (1, 10))
    assert (y.max_abs, y.mean_abs, y.cosine, y.top1, y.top5) == (0.0, 0.0, 1.0, 1.0, 1.0)
    assert report.worst == "y"


def test_one_output_perturbed_by_a_known_amount_is_the_worst():
    mask = np.zeros((2, 3), np.float32)
    mask[1, 2] = 0.25
    feeds = _integer_feeds(5)
    report = validate(two_outputs(), two_outputs(mask), data=feeds, progress=False)
    allowed = min(1e-5 + 1e-4 * abs(float(f["x"][1, 2])) for f in feeds)
    assert not report.passed and report.samples == 5       # all of the data, not a default cap
    assert report.worst == "out"
    out, relu = report.output("out"), report.output("relu")
    assert out.max_abs == 0.25 and out.mean_abs == pytest.approx(0.25 / 6)
    assert not out.passed and out.violation == pytest.approx(0.25 / allowed)
    assert relu.passed and relu.max_abs == 0.0
    lines = report.summary_lines()
    assert lines[0].startswith("validation FAILED: 2 output(s), 5 sample(s)")
    assert lines[3].startswith("out <- worst") and lines[3].rstrip().endswith("FAIL")
    assert lines[4].startswith("relu") and lines[4].rstrip().endswith("ok")


def test_perturbation_inside_the_tolerance_passes():
    mask = np.full((2, 3), 2.0**-20, np.float32)              # exact on integers below 8
    report = validate(two_outputs(), two_outputs(mask), data=_integer_feeds(2), atol=1e-5, progress=False)
    assert report.passed
    assert report.output("out").max_abs == 2.0**-20


def test_logits_with_a_known_top1_disagreement():
    # rows whose reference arg-max is class 0 keep it; a +100 boost of class 0 steals every other row
    classes = 10
    winners = [0, 3, 0, 7, 9, 0, 1, 2]
    x = np.zeros((len(winners), classes), np.float32)
    x[np.arange(len(winners)), winners] = 5.0
    report = validate(logits(classes), logits(classes, boost=100.0), data={"x": x}, progress=False)
    m = report.output("logits")
    assert m.top1 == pytest.approx(3 / 8)
    assert m.top5 == pytest.approx(1.0)                     # the old winner is second
    assert m.max_abs == 100.0 and not report.passed


def test_report_to_dict_round_trips_through_json():
    report = validate(two_outputs(), two_outputs(np.ones((2, 3))), samples=2, progress=False)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["passed"] is False and data["worst"] == "out" and data["samples"] == 2
    assert [o["name"] for o in data["outputs"]] == ["relu", "out"]
    assert data["outputs"][1]["max_abs"] == pytest.approx(1.0, rel=1e-6)


def test_paths_and_protos_give_the_same_report(tmp_path):
    m = small_cnn()
    a = save(m, tmp_path / "a.onnx")
    from_paths = validate(a, a, samples=2, progress=False)
    from_protos = validate(m, m, samples=2, progress=False)
    assert from_paths.to_dict()["outputs"] == from_protos.to_dict()["outputs"]


def test_different_output_shape_fails_with_a_reason():
    f = TensorProto.FLOAT
    ref = model([helper.make_node("Identity", ["x"], ["y"])], [("x", f, [2, 3])], [("y", f, [2, 3])])
    cand = model([helper.make_node("Flatten", ["x"], ["y"], axis=0)], [("x", f, [2, 3])], [("y", f, [1, 6])])
    report = validate(ref, cand, samples=1, progress=False)
    assert not report.passed
    assert report.output("y").problem == "shape 1x6 differs from the reference's 2x3"


def test_missing_output_fails_and_says_which():
    f = TensorProto.FLOAT
    cand = model([helper.make_node("Relu", ["x"], ["relu"])], [("x", f, [2, 3])], [("relu", f, [2, 3])])
    report = validate(two_outputs(), cand, samples=1, progress=False)
    assert not report.passed
    assert report.notes == ("candidate lacks output(s) ['out']",)
    assert [m.name for m in report.outputs] == ["relu"]


def test_outputs_without_common_names_are_paired_by_position():
    f = TensorProto.FLOAT
    renamed = model([helper.make_node("Identity", ["x"], ["other"])], [("x", f, [2, 3])], [("other", f, [2, 3])])
    ref = model([helper.make_node("Identity", ["x"], ["y"])], [("x", f, [2, 3])], [("y", f, [2, 3])])
    report = validate(ref, renamed, samples=1, progress=False)
    assert report.passed
    assert report.notes[0].startswith("no output names in common; outputs compared by position: y~other")


def test_dynamic_dims_take_input_shapes():
    report = validate(small_cnn(), small_cnn(), input_shapes={"x": (3, 3, 16, 16)}, samples=1, progress=False)
    assert report.output("y").shape == (3, 10)


def test_make_feeds_is_seeded_and_honours_dtypes():
    f, i = TensorProto.FLOAT, TensorProto.INT64
    m = model([helper.make_node("Cast", ["ids"], ["c"], to=f), helper.make_node("Add", ["x", "c"], ["y"])],
              [("x", f, ["N", 4]), ("ids", i, ["N", 4])], [("y", f, ["N", 4])])
    a = make_feeds(m, 3, seed=5, input_shapes={"x": (2, 4), "ids": (2, 4)})
    b = make_feeds(m, 3, seed=5, input_shapes={"x": (2, 4), "ids": (2, 4)})
    c = make_feeds(m, 3, seed=6, input_shapes={"x": (2, 4), "ids": (2, 4)})
    assert len(a) == 3
    assert a[0]["x"].dtype == np.float32 and a[0]["ids"].dtype == np.int64
    assert a[0]["x"].shape == (2, 4) and a[0]["ids"].min() >= 0 and a[0]["ids"].max() < 10
    assert all(np.array_equal(p[k], q[k]) for p, q in zip(a, b) for k in p)
    assert not np.array_equal(a[0]["x"], c[0]["x"])
    assert not np.array_equal(a[0]["x"], a[1]["x"])          # samples differ from each other
    assert make_feeds(m, 1, seed=0)[0]["x"].shape == (1, 4)  # batch defaults to 1


@pytest.mark.parametrize("shapes,message", [
    ({"nope": (1, 3)}, r"input shape given for 'nope', but the model's inputs are \['x'\]"),
    ({"x": (1, 3, 16)}, r"input 'x' has rank 4 \(Nx3x16x16\); the given shape 1x3x16 has rank 3"),
    ({"x": (1, 4, 16, 16)}, r"input 'x' axis 1 is fixed to 3 in the model"),
])
def test_bad_input_shapes_are_usage_errors(shapes, message):
    with pytest.raises(UsageError, match=message):
        validate(small_cnn(), small_cnn(), input_shapes=shapes, progress=False)


def test_model_that_onnxruntime_cannot_load_is_one_clean_line():
    f = TensorProto.FLOAT
    broken = model([helper.make_node("NoSuchOp", ["x"], ["y"])], [("x", f, [2, 3])], [("y", f, [2, 3])])
    with pytest.raises(InvalidModelError) as info:
        validate(two_outputs(), broken, progress=False)
    text = str(info.value)
    assert text.startswith("candidate: onnxruntime cannot load it:") and "NoSuchOp" in text
    assert "\n" not in text and "onnxruntime_src" not in text


def test_missing_file_is_a_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no such file"):
        validate(tmp_path / "missing.onnx", small_cnn(), progress=False)


def test_data_without_an_input_is_a_data_error():
    with pytest.raises(DataError, match=r"no array for input\(s\) \['x'\]; it holds \['a', 'b'\]"):
        validate(two_outputs(), two_outputs(), data={"a": np.zeros(1), "b": np.zeros(1)}, progress=False)


@pytest.mark.parametrize("kwargs", [{"rtol": -1.0}, {"samples": 0}])
def test_nonsense_options_are_usage_errors(kwargs):
    with pytest.raises(UsageError):
        validate(two_outputs(), two_outputs(), progress=False, **kwargs)


def test_newer_ir_version_is_run_anyway():
    m = small_cnn()
    m.ir_version = onnx.IR_VERSION                            # newer than onnxruntime may read
    assert validate(m, m, samples=1, progress=False).passed
