"""Nothing lost: atomic writes, the input never overwritten, external data in and out.

The 2 GB switch to external data is tested with the threshold lowered (monkeypatch) instead of
writing gigabytes; ``benchmarks/bench_memory.py`` measures a real >2 GB model.
"""
from __future__ import annotations

import io
import os
import re

import numpy as np
import onnx
import pytest

import graphprune.graph.write as gwrite
import graphprune.io.write as gio
from graphprune.errors import EXIT_OUTPUT, OutputError
from graphprune.graph import infer_shapes
from graphprune.io import load_model, model_byte_size, save_model
from tests.helpers import robust as rm
from tests.helpers.onnxrt import random_feeds, run, session
from tests.helpers.robust import assert_one_line, run_cli, save


@pytest.fixture
def model_path(tmp_path):
    return save(rm.small_cnn(), tmp_path / "model.onnx")


def _state(path):
    return path.read_bytes(), path.stat().st_mtime_ns


def _external_input(folder, location="model.onnx.data"):
    path = folder / "model.onnx"
    onnx.save_model(rm.small_cnn(), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    return path, folder / location


def _no_temporaries(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".graphprune-")] == []


# --------------------------------------------------------------------------- atomic writes
def test_failed_rename_leaves_the_previous_output_and_no_temporary(tmp_path, monkeypatch):
    out = tmp_path / "out.onnx"
    out.write_bytes(b"previous output")
    monkeypatch.setattr(gio.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OutputError, match=re.escape(f"{out}: cannot write (No space left on device)")):
        save_model(rm.small_cnn(), out)
    assert out.read_bytes() == b"previous output"
    assert _no_temporaries(tmp_path)


def test_interrupted_write_leaves_the_previous_output(tmp_path, monkeypatch):
    out = tmp_path / "out.onnx"
    out.write_bytes(b"previous output")

    write_model = gwrite.write_model

    def half_then_fail(graph, fh, external=None):
        whole = io.BytesIO()
        write_model(graph, whole, external)
        fh.write(whole.getvalue()[: len(whole.getvalue()) // 2])
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(gwrite, "write_model", half_then_fail)
    with pytest.raises(OutputError, match="cannot write"):
        save_model(rm.small_cnn(), out)
    assert out.read_bytes() == b"previous output"
    assert _no_temporaries(tmp_path)


def test_cli_write_failure_is_one_line_exit_4(model_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gio.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(13, "Permission denied")))
    out = tmp_path / "out.onnx"
    code, _, err = run_cli(capsys, "prune", model_path, "-o", out, "--ratio", "0.5")
    assert code == EXIT_OUTPUT
    assert_one_line(err, f"graphprune: error: {re.escape(str(out))}: cannot write \\(Permission denied\\)")
    assert not out.exists() and _no_temporaries(tmp_path)


# --------------------------------------------------------------------------- the input is never overwritten
@pytest.mark.parametrize("command", ["prune", "fold"])
def test_output_on_the_input_needs_force(model_path, capsys, command):
    before = _state(model_path)
    code, _, err = run_cli(capsys, command, model_path, "-o", model_path)
    assert code == EXIT_OUTPUT
    assert_one_line(err, f"graphprune: error: {re.escape(str(model_path))}: is the input model; refusing to "
                         r"overwrite it \(choose another -o, or pass --force\)")
    assert _state(model_path) == before


def test_output_through_a_symlink_to_the_input_is_refused(model_path, tmp_path, capsys):
    link = tmp_path / "link.onnx"
    link.symlink_to(model_path)
    before = _state(model_path)
    code, _, err = run_cli(capsys, "prune", model_path, "-o", link)
    assert code == EXIT_OUTPUT and "is the input model" in err
    assert _state(model_path) == before and link.is_symlink()


@pytest.mark.parametrize("command", ["prune", "fold"])
def test_force_replaces_the_input(model_path, capsys, command):
    code, _, err = run_cli(capsys, command, model_path, "-o", model_path, "--force")
    assert code == 0, err
    out = onnx.load(str(model_path))
    onnx.checker.check_model(out, full_check=True)
    if command == "prune":
        assert next(t for t in out.graph.initializer if t.name == "w1").dims[0] == 6  # ratio 0.3 of 8 slots


def test_output_on_the_inputs_data_file_is_refused(tmp_path, capsys):
    path, data = _external_input(tmp_path)
    before = _state(data)
    code, _, err = run_cli(capsys, "prune", path, "-o", data)
    assert code == EXIT_OUTPUT
    assert_one_line(err, f"graphprune: error: {re.escape(str(data))}: is an external data file of the input model "
                         f"{re.escape(str(path))}; refusing to overwrite it")
    assert _state(data) == before


# --------------------------------------------------------------------------- external data
def test_external_data_in_is_read_and_left_untouched(tmp_path, capsys):
    path, data = _external_input(tmp_path, "weights.bin")
    before = _state(data), _state(path)
    code, _, err = run_cli(capsys, "prune", path, "-o", tmp_path / "out.onnx", "--ratio", "0.5")
    assert code == 0, err
    assert (_state(data), _state(path)) == before
    out = onnx.load(str(tmp_path / "out.onnx"))
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in out.graph.initializer)  # small: one file
    assert next(t for t in out.graph.initializer if t.name == "w1").dims[0] == 4


def test_large_output_goes_to_external_data_beside_it(model_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gio, "EXTERNAL_DATA_THRESHOLD", 1000)  # stands in for 2 GB
    monkeypatch.setattr(gio, "EXTERNAL_TENSOR_MIN_BYTES", 500)  # w2 and w4 (576 bytes) go, w1 (432) stays
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "slim.onnx"
    code, _, err = run_cli(capsys, "prune", model_path, "-o", out, "--ratio", "0.5")
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["slim.onnx", "slim.onnx.data"]
    skeleton = onnx.load(str(out), load_external_data=False)
    external = [t for t in skeleton.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert {t.name for t in external} == {"w2", "w4"}
    for t in external:
        info = {e.key: e.value for e in t.external_data}
        assert info["location"] == "slim.onnx.data" and int(info["offset"]) % gio.EXTERNAL_ALIGNMENT == 0
    assert os.path.getsize(out) < 2000
    # the result loads back (ours and onnx's loader) and runs from its path in onnxruntime
    ours, theirs = load_model(out), onnx.load(str(out))
    for a, b in zip(ours.graph.initializer, theirs.graph.initializer, strict=True):
        np.testing.assert_array_equal(onnx.numpy_helper.to_array(a), onnx.numpy_helper.to_array(b))
    feeds = random_feeds(ours)
    sess_outputs = session(str(out)).run(None, feeds)
    np.testing.assert_array_equal(sess_outputs[0], run(ours, feeds)["y"])


def test_external_output_never_clobbers_the_inputs_data(tmp_path, capsys, monkeypatch):
    """Input a.onnx keeps its weights in b.onnx.data; writing b.onnx with external data would overwrite them."""
    monkeypatch.setattr(gio, "EXTERNAL_DATA_THRESHOLD", 1000)
    path = tmp_path / "a.onnx"
    onnx.save_model(rm.small_cnn(), str(path), save_as_external_data=True, location="b.onnx.data", size_threshold=0)
    data = tmp_path / "b.onnx.data"
    before = _state(data)
    out = tmp_path / "b.onnx"
    code, _, err = run_cli(capsys, "prune", path, "-o", out)
    assert code == EXIT_OUTPUT
    assert_one_line(err, f"graphprune: error: {re.escape(str(out))}: its external data file b\\.onnx\\.data belongs "
                         r"to the input model .*a\.onnx; refused \(choose another -o\)")
    assert _state(data) == before and not out.exists() and _no_temporaries(tmp_path)


def test_force_on_the_input_rewrites_its_data_consistently(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gio, "EXTERNAL_DATA_THRESHOLD", 1000)
    path, data = _external_input(tmp_path)
    code, _, err = run_cli(capsys, "prune", path, "-o", path, "--ratio", "0.5", "--force")
    assert code == 0, err
    reloaded = load_model(path)
    assert next(t for t in reloaded.graph.initializer if t.name == "w1").dims[0] == 4
    session(str(path)).run(None, random_feeds(reloaded))


def test_no_data_file_when_no_tensor_is_large_enough(tmp_path):
    save_model(rm.small_cnn(), tmp_path / "out.onnx", external_data=True)  # every tensor < 1024 bytes but w2, w4
    save_model(rm.make([], [], [], []), tmp_path / "empty.onnx", external_data=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.onnx", "out.onnx", "out.onnx.data"]


def test_save_never_modifies_the_model_and_round_trips(tmp_path):
    model = load_model(rm.save(rm.small_cnn(), tmp_path / "in.onnx"))
    before = model.SerializeToString()
    save_model(model, tmp_path / "ext.onnx", external_data=True)
    save_model(model, tmp_path / "inline.onnx", external_data=False)
    assert model.SerializeToString() == before
    assert load_model(tmp_path / "ext.onnx").SerializeToString() == before
    assert (tmp_path / "inline.onnx").read_bytes() == before


def test_model_byte_size_is_a_close_upper_bound(tmp_path):
    for model in (rm.small_cnn(), rm.transformer_block(), rm.if_node(), rm.float16_cnn()):
        actual, estimate = model.ByteSize(), model_byte_size(model)
        assert actual <= estimate <= actual * 1.05 + 256, (actual, estimate)


# --------------------------------------------------------------------------- nothing written elsewhere
def test_shape_inference_writes_nothing_into_the_working_directory(tmp_path, capsys, monkeypatch):
    """onnxruntime's symbolic shape inference saves sym_shape_infer_temp.onnx into the CWD when it cannot
    infer every shape (here: a custom-domain op); graphprune must not leave that file behind."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    path = save(rm.custom_domain(), tmp_path / "in" / "model.onnx")
    shapes = infer_shapes(onnx.load(str(path)))
    assert shapes.get("a3") is None or None in (shapes["a3"][0] or (None,))  # inference really was incomplete
    code, _, err = run_cli(capsys, "inspect", path)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["model.onnx"]
