"""Sessions without graph optimizations compute with the detached arrays' own memory; optimized
sessions are given copies (onnxruntime would fold constants before the arrays are put in)."""
from __future__ import annotations

import tempfile

import numpy as np
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
