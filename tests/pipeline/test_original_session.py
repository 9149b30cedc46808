"""The original's session for the drift check is made on a worker while the model is pruned."""
from __future__ import annotations

import dataclasses
import importlib

import onnx

from graphprune.pipeline import Options, compose, load
from graphprune.validation import compare
from graphprune.validation.runner import PendingSession
from models.zoo import build

#: the stage module (``graphprune.pipeline.check`` the attribute is the stage function)
check_stage = importlib.import_module("graphprune.pipeline.check")


def test_the_original_session_starts_before_pruning_only_when_checks_run_and_the_model_is_small(monkeypatch):
    source = load(build("resnet50", size="small", batch=1))
    pending = check_stage.original_session(source, Options(ratio=0.5))
    assert isinstance(pending, PendingSession) and pending.model is source.proto
    assert {o.name for o in pending.result().get_outputs()} == {o.name for o in source.proto.graph.output}
    assert pending.result().get_session_options().intra_op_num_threads == 1  # the pruning has the other core
    assert len(pending.outputs()) == 4 and pending.feeds_key[0] == (4, 0, pending.feeds_key[0][2])
    assert check_stage.original_session(source, Options(ratio=0.5, validate=False)) is None
    monkeypatch.setattr(check_stage, "EARLY_SESSION_BYTES", 1000)
    assert check_stage.original_session(source, Options(ratio=0.5)) is None


def test_the_drift_is_the_same_with_the_session_made_early_or_at_the_check(monkeypatch):
    model = build("resnet50", size="small", batch=1)
    made = []
    real = check_stage.original_session
    monkeypatch.setattr(compose, "original_session", lambda s, o: made.append(real(s, o)) or made[-1])
    early = compose.prune(model, Options(ratio=0.5, progress=False))
    monkeypatch.setattr(compose, "original_session", lambda s, o: None)
    late = compose.prune(model, Options(ratio=0.5, progress=False))
    assert len(made) == 1 and isinstance(made[0], PendingSession)
    assert early.drift.samples == late.drift.samples == 4
    for a, b in zip(early.drift.outputs, late.drift.outputs):
        assert dataclasses.asdict(a) == dataclasses.asdict(b)
    assert early.drift.drift.value("cosine") == late.drift.drift.value("cosine") > 0


def test_a_model_read_from_a_file_has_its_original_session_made_from_the_file(tmp_path, monkeypatch):
    model = build("resnet50", size="small", batch=1)
    path = tmp_path / "r50.onnx"
    onnx.save(model, str(path))
    source = load(path)
    assert source.file is not None and source.file.proto is source.proto and source.file.path == path
    given = []
    real = compare.pending_reference
    monkeypatch.setattr(compare, "pending_reference", lambda m, **k: given.append(m) or real(m, **k))
    from_file = compose.prune(path, Options(ratio=0.5, progress=False))
    assert given[0] is not None and given[0].path == path    # the original's: onnxruntime reads the file
    from_proto = compose.prune(model, Options(ratio=0.5, progress=False))
    assert from_file.drift.samples == from_proto.drift.samples == 4
    for a, b in zip(from_file.drift.outputs, from_proto.drift.outputs):
        assert dataclasses.asdict(a) == dataclasses.asdict(b)
