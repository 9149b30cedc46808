"""The check stage's sessions on a model whose original session was not made during the pruning
(above pipeline.check.EARLY_SESSION_BYTES): how many weight copies are alive at once."""
from __future__ import annotations

import gc
import weakref

import onnx

from graphprune import api
from graphprune.graph.detached import Detached
import importlib
from graphprune.validation import compare
from tests.helpers.models import small_cnn


def test_the_oracle_session_is_gone_before_the_original_s_is_made_detached(monkeypatch):
    check_stage = importlib.import_module("graphprune.pipeline.check")
    monkeypatch.setattr(check_stage, "EARLY_SESSION_BYTES", 0)   # the original's session waits for the check
    seen = {}
    real_pending, real_make = compare.pending_reference, compare.make_session

    def pending(model, **kwargs):
        made = real_pending(model, **kwargs)
        seen["oracle"] = weakref.ref(made.result())
        return made

    def make(model, **kwargs):
        if "oracle" in seen and kwargs.get("label") == "reference":   # the drift's reference: the original
            gc.collect()
            seen["oracle alive"] = seen["oracle"]() is not None
            seen["reference"] = model
        return real_make(model, **kwargs)

    monkeypatch.setattr(compare, "pending_reference", pending)
    monkeypatch.setattr(compare, "make_session", make)
    m = small_cnn()
    result = api.prune(m, ratio=0.5, progress=False)
    assert result.oracle.passed and result.drift is not None and result.drift.samples == 4
    assert seen["oracle alive"] is False
    reference = seen["reference"]
    assert isinstance(reference, Detached)   # weights handed over as arrays, never serialized
    assert [n.op_type for n in reference.proto.graph.node] == [n.op_type for n in m.graph.node]
    weights = lambda model: {t.name: onnx.numpy_helper.to_array(t).tobytes() for t in model.graph.initializer}  # noqa: E731
    assert weights(reference.to_proto()) == weights(m)   # the original's weights, as given
