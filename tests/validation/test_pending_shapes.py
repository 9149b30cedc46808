"""Sizes for dynamic input dims found on a worker thread while a command analyses the model."""
from __future__ import annotations

import threading

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphprune import api
from graphprune.errors import UsageError
from graphprune.validation import sizes as sizes_module
from graphprune.validation.probe import PROBE_NODE_PREFIX, numbered_bytes
from graphprune.validation.runner import make_session
from graphprune.validation.sizes import PendingShapes, resolve_input_shapes
from tests.helpers.models import model, priors_model

F = TensorProto.FLOAT


@pytest.fixture(autouse=True)
def _nothing_remembered():
    sizes_module._CACHE.clear()
    yield
    sizes_module._CACHE.clear()


def _gemm_chain(dims) -> onnx.ModelProto:
    """x [N, S, 8] -> MatMul 8x16 -> Relu -> MatMul 16x4: prunable, runs at any S."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="up"), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"], name="down")]
    inits = {"w1": rng.standard_normal((8, 16)).astype(np.float32),
             "w2": rng.standard_normal((16, 4)).astype(np.float32)}
    return model(nodes, [("x", F, dims)], [("y", F, dims[:2] + [4])], inits)


def test_sizes_are_found_on_a_worker_and_equal_the_ones_found_in_place():
    m = priors_model()
    before = m.SerializeToString()
    pending = PendingShapes(m)
    assert not pending.ready and sizes_module._CACHE == {}
    # the worker never edits the proto it reads: names and bytes stay while it probes
    assert [n.name for n in m.graph.node] == ["flat", "last", "priors_mul"]
    resolved = pending.result()
    assert m.SerializeToString() == before
    assert resolved.shapes == {"x": (1, 2, 12, 16)} and dict(resolved.chosen) == {"H": 12, "W": 16}
    assert resolved.how == "Mul node 'priors_mul' needs 192 positions on axis -2 of 't'"
    assert pending.result() is resolved and not pending.ready   # says how it began, also afterwards
    assert resolve_input_shapes(priors_model()) is resolved           # remembered for the same model
    sizes_module._CACHE.clear()
    assert resolve_input_shapes(priors_model()) == resolved


def _size_workers() -> set:
    return {t for t in threading.enumerate() if t.name.startswith("graphprune-sizes")}


def test_known_shapes_are_ready_without_a_worker():
    before = _size_workers()
    static = PendingShapes(_gemm_chain([1, 5, 8]))
    given = PendingShapes(_gemm_chain(["N", "S", 8]), {"x": (2, 3, 8)})
    assert static.ready and static.result().source == "model"
    assert given.ready and given.result().shapes == {"x": (2, 3, 8)} and given.result().source == "given"
    assert _size_workers() - before == set()


def test_a_model_above_the_limit_is_probed_before_the_constructor_returns(monkeypatch):
    monkeypatch.setattr(sizes_module, "BACKGROUND_PROBE_BYTES", 0)
    pending = PendingShapes(priors_model(300))
    assert pending.ready and pending.result().shapes == {"x": (1, 2, 15, 20)}   # 15 x 20 = 300


def test_no_size_that_runs_is_the_same_error_raised_by_result():
    """2 x S elements can never be reshaped into 7."""
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"], name="to_seven")]
    m = model(nodes, [("x", F, [1, 2, "S"])], [("y", F, [1, 7])], {"shape": np.array([1, 7], np.int64)})
    pending = PendingShapes(m)
    with pytest.raises(UsageError) as info:
        pending.result()
    text = str(info.value)
    assert text.startswith("input 'x' axis 2 is dynamic ('S') and no size graphprune tried runs (tried 16; 8; 32")
    assert "Name:'to_seven'" in text and PROBE_NODE_PREFIX not in text
    with pytest.raises(UsageError) as again:
        resolve_input_shapes(m)
    assert str(again.value) == text


def test_numbered_bytes_number_a_copy_and_a_session_reads_bytes():
    m = _gemm_chain([1, "S", 8])
    m.ir_version = 99   # newer than onnxruntime reads: the session lowers it on a parsed copy
    data = numbered_bytes(m)
    assert [n.name for n in m.graph.node] == ["up", "", "down"] and m.ir_version == 99
    copy = onnx.ModelProto.FromString(data)
    assert [n.name for n in copy.graph.node] == [f"{PROBE_NODE_PREFIX}{i}" for i in range(3)]
    session = make_session(data, label="size probe")
    x = np.ones((1, 3, 8), np.float32)
    (y,) = session.run(None, {"x": x})
    w1, w2 = (onnx.numpy_helper.to_array(t) for t in m.graph.initializer)
    np.testing.assert_allclose(y, np.maximum(x @ w1, 0) @ w2, rtol=1e-5)


def test_prune_of_a_dynamic_model_checks_at_the_sizes_found_beside_the_analysis():
    m = _gemm_chain(["N", "S", 8])
    result = api.prune(m, ratio=0.5, progress=False)
    assert [t.name for t in result.model.graph.initializer] == ["w1", "w2"]
    assert [tuple(t.dims) for t in result.model.graph.initializer] == [(8, 8), (8, 4)]
    assert result.oracle.passed and result.drift is not None
    assert result.drift.inputs.shapes == {"x": (1, 16, 8)} and result.drift.inputs.source == "chosen"
    assert sizes_module._CACHE  # the command's resolution is remembered


def test_what_waits_for_the_sizes_runs_on_the_worker_that_found_them():
    pending = PendingShapes(priors_model())
    seen = pending.after(lambda found: (threading.current_thread().name, found.shapes["x"]))
    name, shape = seen.result(timeout=60)
    assert name.startswith("graphprune-sizes") and shape == (1, 2, 12, 16)
    assert pending.result().shapes["x"] == (1, 2, 12, 16)


def test_what_waits_for_known_sizes_runs_at_once_here():
    pending = PendingShapes(_gemm_chain([1, 5, 8]))
    seen = pending.after(lambda found: (threading.current_thread().name, found.source))
    assert seen.done() and seen.result() == (threading.current_thread().name, "model")


def test_a_probe_that_finds_no_size_fails_what_waits_for_it():
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"], name="to_seven")]
    m = model(nodes, [("x", F, [1, 2, "S"])], [("y", F, [1, 7])], {"shape": np.array([1, 7], np.int64)})
    called = []
    seen = PendingShapes(m).after(called.append)
    with pytest.raises(UsageError, match="no size graphprune tried runs"):
        seen.result(timeout=60)
    assert called == []
