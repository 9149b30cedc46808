"""A declared dim of -1 (older Paddle2ONNX's dynamic dim) is read as unknown; a stored negative size is not."""
from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphprune.errors import InvalidModelError
from graphprune.io import load_model
from graphprune.validation import model_inputs, validate
from tests.helpers.onnxrt import session
from tests.helpers.models import model

F = TensorProto.FLOAT


def _paddle_style(tmp_path) -> str:
    """x [-1, 3, -1, -1] -> Relu -> y [-1, 3, -1, -1], with a value_info of -1 dims too."""
    m = model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Identity", ["r"], ["y"])],
              [("x", F, [-1, 3, -1, -1])], [("y", F, [-1, 3, -1, -1])])
    m.graph.value_info.append(helper.make_tensor_value_info("r", F, [-1, 3, -1, -1]))
    path = tmp_path / "paddle.onnx"
    onnx.save(m, str(path))
    return str(path)


def _declared(vi: onnx.ValueInfoProto) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in vi.type.tensor_type.shape.dim]


def test_onnxruntime_runs_the_file_as_written(tmp_path):
    (y,) = session(_paddle_style(tmp_path)).run(None, {"x": -np.ones((2, 3, 5, 7), np.float32)})
    assert y.shape == (2, 3, 5, 7) and float(y.max()) == 0.0


def test_minus_one_dims_load_as_unknown(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="graphprune.input_checks"):
        m = load_model(_paddle_style(tmp_path))
    for vi in (m.graph.input[0], m.graph.output[0], m.graph.value_info[0]):
        assert _declared(vi) == [None, 3, None, None]
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'paddle.onnx'}: 9 declared dimension(s) of -1 read as unknown (dynamic)"]
    assert model_inputs(m)[0].dims == (None, 3, None, None)


def test_validate_a_minus_one_model_with_no_options(tmp_path):
    path = _paddle_style(tmp_path)
    report = validate(path, path, samples=1, progress=False)
    assert report.passed and report.inputs.shapes == {"x": (1, 3, 224, 224)}
    assert report.inputs.chosen == (("x axis 2", 224), ("x axis 3", 224))


def test_minus_one_read_as_unknown_without_loading_through_io():
    m = model([helper.make_node("Relu", ["x"], ["y"])], [("x", F, [1, -1])], [("y", F, [1, -1])])
    assert model_inputs(m)[0].dims == (1, None)


def test_a_stored_tensor_of_negative_size_stays_an_error(tmp_path):
    m = model([helper.make_node("Add", ["x", "w"], ["y"])], [("x", F, [1, 2])], [("y", F, [1, 2])],
              {"w": np.zeros((1, 2), np.float32)})
    m.graph.initializer[0].dims[:] = [-1, -2]
    path = tmp_path / "bad.onnx"
    onnx.save(m, str(path))
    with pytest.raises(InvalidModelError, match=r"tensor 'w' has a negative dimension -1"):
        load_model(path)
