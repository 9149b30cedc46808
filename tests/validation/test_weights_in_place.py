"""Sessions without graph optimizations compute with the detached arrays' own memory; optimized
sessions are given copies (onnxruntime would fold constants before the arrays are put in)."""
from __future__ import annotations

import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper

from graphprune.graph.detached import Detached, detach_proto
from graphprune.validation.runner import make_session
from tests.helpers.models import model

N = 256
W = np.random.default_rng(0).standard_normal((N, N)).astype(np.float32)
X = np.random.default_rng(1).standard_normal((1, N)).astype(np.float32)


def _foldable():
    """y = (x + w) @ (w * 2): ``w * 2`` is a constant an optimizer folds."""
    nodes = [helper.make_node("Add", ["x", "w"], ["s"]), helper.make_node("Mul", ["w", "two"], ["w2"]),
             helper.make_node("MatMul", ["s", "w2"], ["y"])]
    return model(nodes, [("x", TensorProto.FLOAT, [N, N])], [("y", TensorProto.FLOAT, [N, N])],
                 {"w": W, "two": np.array(2.0, np.float32)})


def _detached() -> Detached:
    """The model detached, its weight a writable array of this test's own."""
    detached = detach_proto(_foldable())
    assert set(detached.arrays) == {"w"}
    return Detached(detached.proto, {"w": W.copy()})


def _expected(w=W):
    return (np.broadcast_to(X, (N, N)) + w) @ (w * 2)


def test_an_exact_session_computes_with_the_arrays_memory_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    detached = _detached()
    session = make_session(detached, exact=True)
    assert list(tmp_path.iterdir()) == []             # the stubs' empty file is gone once the session is made
    feed = {"x": np.broadcast_to(X, (N, N)).copy()}
    np.testing.assert_allclose(session.run(None, feed)[0], _expected(), rtol=1e-4, atol=1e-3)
    detached.arrays["w"][0, 0] += 1.0                 # the session reads this very memory
    changed = W.copy()
    changed[0, 0] += 1.0
    np.testing.assert_allclose(session.run(None, feed)[0], _expected(changed), rtol=1e-4, atol=1e-3)


def test_an_optimized_session_is_given_copies_and_folds_the_real_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    detached = _detached()
    session = make_session(detached, exact=False)
    feed = {"x": np.broadcast_to(X, (N, N)).copy()}
    np.testing.assert_allclose(session.run(None, feed)[0], _expected(), rtol=1e-4, atol=1e-3)
    detached.arrays["w"][0, 0] += 1.0                 # onnxruntime's own copy: unchanged
    np.testing.assert_allclose(session.run(None, feed)[0], _expected(), rtol=1e-4, atol=1e-3)


def test_a_skeleton_that_refers_to_real_data_files_is_computed_from_them_on_the_copying_route(tmp_path, monkeypatch):
    # a model handed over with its external data not loaded: those tensors stay references to the
    # file (relative to the working directory, as onnxruntime reads a model given as bytes)
    path = tmp_path / "m.onnx"
    onnx.save(_foldable(), str(path), save_as_external_data=True, location="m.data", size_threshold=0)
    monkeypatch.chdir(tmp_path)
    detached = detach_proto(onnx.load(str(path), load_external_data=False))
    assert detached.refers_to_files()
    feed = {"x": np.broadcast_to(X, (N, N)).copy()}
    np.testing.assert_allclose(make_session(detached, exact=True).run(None, feed)[0], _expected(), rtol=1e-4, atol=1e-3)
    assert not _detached().refers_to_files()
