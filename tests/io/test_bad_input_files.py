"""Bad input: every command answers with one line, a documented exit code, and writes nothing.

Each broken file is built in the test. For each case, every command that reads a model (prune,
fold, inspect, profile, validate) must exit 3 with the same one-line message, leave no output
file and no temporary file behind, and leave the input byte-identical.
"""
from __future__ import annotations

import os
import re

import numpy as np
import onnx
import pytest
from onnx import numpy_helper as nh

from graphprune.errors import EXIT_BAD_MODEL, EXIT_OUTPUT, EXIT_USAGE
from graphprune.importance import IMPORTANCE_NAMES
from tests.helpers import robust as rm
from tests.helpers.robust import assert_one_line, run_cli, save


def _external(tmp_path, truncate: bool) -> tuple:
    """small_cnn with every weight in weights.bin; the file is then deleted or cut in half."""
    model = rm.small_cnn()
    path = tmp_path / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    data = tmp_path / "weights.bin"
    if truncate:
        data.write_bytes(data.read_bytes()[:100])
    else:
        data.unlink()
    return path


def _raw_mismatch(tmp_path):
    model = rm.small_cnn()
    w1 = next(t for t in model.graph.initializer if t.name == "w1")
    w1.raw_data = w1.raw_data[:10]
    return save(model, tmp_path / "model.onnx")


def _typed_mismatch(tmp_path):
    model = rm.small_cnn()
    w2 = next(t for t in model.graph.initializer if t.name == "w2")
    values = nh.to_array(w2).reshape(-1)[:7]
    w2.ClearField("raw_data")
    w2.float_data.extend(values.tolist())
    return save(model, tmp_path / "model.onnx")


def _bytes(data: bytes):
    def make(tmp_path):
        path = tmp_path / "model.onnx"
        path.write_bytes(data)
        return path
    return make


def _model(build):
    return lambda tmp_path: save(build(), tmp_path / "model.onnx")


def _truncated(tmp_path):
    data = rm.small_cnn().SerializeToString()
    return _bytes(data[: len(data) // 2])(tmp_path)


def _fifo(tmp_path):
    path = tmp_path / "model.onnx"
    os.mkfifo(path)
    return path


BAD_MODELS = [
    ("missing", lambda p: p / "model.onnx", r"{path}: no such file"),
    ("directory", lambda p: p, r"{path}: is a directory, expected an \.onnx file"),
    ("fifo", _fifo, r"{path}: is not a regular file \(a device, pipe or socket\); expected an \.onnx file"),
    ("empty", _bytes(b""), r"{path}: file is empty"),
    ("text", _bytes(b"this is not an onnx model\n" * 4),
     r"{path}: not an ONNX model \(protobuf parse failed: truncated or corrupted file\?\)"),
    ("zip", _bytes(b"PK\x03\x04" + b"\0" * 60),
     r"{path}: is a zip archive \(a PyTorch checkpoint\?\), not an ONNX model"),
    ("truncated", _truncated, r"{path}: not an ONNX model \(protobuf parse failed: truncated or corrupted file\?\)"),
    ("raw_data_short", _raw_mismatch,
     r"{path}: tensor 'w1' declares shape \[8, 3, 3, 3\] \(864 bytes\) but holds 10 bytes \(truncated or corrupted "
     r"file\?\)"),
    ("float_data_short", _typed_mismatch,
     r"{path}: tensor 'w2' declares shape \[8, 8, 3, 3\] \(576 elements\) but holds 7 values in float_data "
     r"\(corrupted file\?\)"),
    ("dangling_input", _model(rm.dangling_input),
     r"{path}: not a valid ONNX model: Add node 'relu1' reads 'ghost', which no node produces and which is neither a "
     r"graph input nor an initializer \(dangling input\)"),
    ("cycle", _model(rm.cycle),
     r"{path}: not a valid ONNX model: the nodes form a cycle \('relu1' -> 'c2' -> 'relu2' -> 'relu1'\); an ONNX "
     r"graph must be acyclic"),
    ("self_loop", _model(rm.self_loop),
     r"{path}: not a valid ONNX model: the nodes form a cycle \('relu1' -> 'relu1'\); an ONNX graph must be acyclic"),
    ("dangling_in_subgraph", _model(rm.dangling_in_subgraph),
     r"{path}: not a valid ONNX model: If node 'branch' reads 'phantom', which no node produces and which is neither "
     r"a graph input nor an initializer \(dangling input\)"),
    ("duplicate_output_name", _model(rm.duplicate_output_name),
     r"{path}: not a valid ONNX model: tensor 'r1' is produced twice \(by Relu node 'relu1' and Relu node 'relu2'\); "
     r"an ONNX graph assigns every tensor once"),
    ("output_not_produced", _model(rm.output_not_produced),
     r"{path}: not a valid ONNX model: graph output 'nowhere' is not produced by any node"),
    ("unknown_element_type", _model(rm.unknown_element_type), r"{path}: tensor 'b1' has an unknown element type 99"),
    ("non_utf8_name", lambda p: _bytes(rm.non_utf8_name())(p),
     r"{path}: not a valid ONNX model: node #1 has a name that is not UTF-8 text \(b'\\xff\\xfe\\xfd\\xfc\\xfb'; "
     r"corrupted file\?\)"),
    ("duplicate_graph_output", _model(rm.duplicate_graph_output),
     r"{path}: not a valid ONNX model: graph output 'y' is listed twice"),
    ("bad_attribute", _model(rm.bad_attribute),
     r"{path}: not a valid ONNX model: \[ShapeInferenceError\] Inference error\(s\): \(op_type:Conv, node name: c1\): "
     r"\[ShapeInferenceError\] Attribute pads has incorrect size \(and errors that follow from it\)"),
    ("unknown_opset", _model(lambda: rm.with_versions(opset=99)),
     r"{path}: opset 99 of domain 'ai\.onnx' is unknown to onnx [\d.]+ \(it knows up to \d+\); re-export with opset "
     r"<= \d+ or upgrade onnx"),
    ("unknown_ir_version", _model(lambda: rm.with_versions(ir=99)),
     r"{path}: IR version 99 is newer than this onnx [\d.]+ reads \(up to \d+\); upgrade onnx or re-export the model "
     r"with an older IR version"),
    ("no_ir_version", _model(lambda: rm.with_versions(ir=0)),
     r"{path}: the model has no IR version \(not a complete ONNX model\)"),
    ("missing_external_data", lambda p: _external(p, truncate=False),
     r"{path}: external data file 'weights\.bin' for tensor 'w1' is missing \(expected .*weights\.bin\)"),
    ("truncated_external_data", lambda p: _external(p, truncate=True),
     r"{path}: external data for tensor 'w1' needs bytes 0\.\.864 of 'weights\.bin', which has only 100 "
     r"\(truncated\?\)"),
]

COMMANDS = {
    "prune": lambda m, out: ["prune", m, "-o", out],
    "fold": lambda m, out: ["fold", m, "-o", out],
    "inspect": lambda m, out: ["inspect", m],
    "profile": lambda m, out: ["profile", m],
    "validate": lambda m, out: ["validate", m, m],
}


def _snapshot(folder) -> dict:
    return {p.name: (p.read_bytes() if p.is_file() else None) for p in folder.iterdir()} if folder.is_dir() else {}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case,make,message", BAD_MODELS, ids=[c[0] for c in BAD_MODELS])
def test_bad_model_is_one_line_exit_3_and_nothing_written(tmp_path, capsys, command, case, make, message):
    work = tmp_path / "work"
    work.mkdir()
    model = make(work)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = _snapshot(work)
    code, stdout, err = run_cli(capsys, *COMMANDS[command](model, out_dir / "out.onnx"))
    assert code == EXIT_BAD_MODEL
    assert_one_line(err, "graphprune: error: " + message.format(path=re.escape(str(model))))
    assert stdout == ""
    assert list(out_dir.iterdir()) == []  # no output, no temporary file
    assert _snapshot(work) == before  # the input (and its data) untouched


def test_device_file_is_refused_without_reading(capsys, tmp_path):
    """/dev/zero never ends: reading it would hang; it is refused from its file type."""
    code, _, err = run_cli(capsys, "inspect", "/dev/zero")
    assert code == EXIT_BAD_MODEL
    assert_one_line(err, r"graphprune: error: /dev/zero: is not a regular file \(a device, pipe or socket\); "
                         r"expected an \.onnx file")


def test_unsorted_graph_is_sorted_and_prunes(tmp_path, capsys):
    """A graph listed out of order is valid once sorted: it loads, prunes and the output is sorted."""
    model = save(rm.unsorted(), tmp_path / "model.onnx")
    code, _, err = run_cli(capsys, "prune", model, "-o", tmp_path / "out.onnx", "--ratio", "0.5")
    assert code == 0, err
    out = onnx.load(str(tmp_path / "out.onnx"))
    onnx.checker.check_model(out, full_check=True)
    assert [n.name for n in out.graph.node] == ["c1", "relu1", "c2", "relu2", "c4"]
    assert next(t for t in out.graph.initializer if t.name == "w1").dims[0] == 4


def test_random_corruption_never_crashes(tmp_path, capsys):
    """Four random bytes changed, 120 times: always exit 0 or 3 with one line, never an internal error."""
    data = rm.small_cnn().SerializeToString()
    path = tmp_path / "model.onnx"
    codes = {0: 0, EXIT_BAD_MODEL: 0}
    for seed in range(120):
        rng = np.random.default_rng(seed)
        corrupted = bytearray(data)
        for pos in rng.integers(0, len(corrupted), 4):
            corrupted[pos] = int(rng.integers(0, 256))
        path.write_bytes(bytes(corrupted))
        code, _, err = run_cli(capsys, "inspect", path)
        assert code in codes, f"seed {seed}: exit {code}: {err}"
        assert len(err.splitlines()) == (0 if code == 0 else 1), f"seed {seed}: {err}"
        codes[code] += 1
    assert codes[EXIT_BAD_MODEL] >= 20 and codes[0] >= 20  # both kinds really happened


# --------------------------------------------------------------------------- nonsense options
@pytest.fixture
def good_model(tmp_path):
    return save(rm.small_cnn(), tmp_path / "model.onnx")


@pytest.mark.parametrize("ratio", ["1.5", "-1", "1", "nan", "abc"])
def test_ratio_out_of_range_is_a_usage_error_naming_the_range(good_model, tmp_path, capsys, ratio):
    code, _, err = run_cli(capsys, "prune", good_model, "-o", tmp_path / "out.onnx", "--ratio", ratio)
    assert code == EXIT_USAGE
    assert_one_line(err, r"graphprune: error: prune: argument --ratio: .*\[0, 1\).*")
    assert not (tmp_path / "out.onnx").exists()


def test_unknown_importance_lists_the_valid_choices(good_model, tmp_path, capsys):
    code, _, err = run_cli(capsys, "prune", good_model, "-o", tmp_path / "out.onnx", "--importance", "magic")
    assert code == EXIT_USAGE
    assert_one_line(err, r"graphprune: error: prune: argument --importance: invalid choice: "
                         r"'magic' \(choose from .*\)")
    for name in IMPORTANCE_NAMES:
        assert name in err
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize("command", ["prune", "fold"])
def test_output_in_missing_directory(good_model, tmp_path, capsys, command):
    out = tmp_path / "no" / "such" / "out.onnx"
    code, _, err = run_cli(capsys, command, good_model, "-o", out)
    assert code == EXIT_USAGE
    assert_one_line(err, f"graphprune: error: {re.escape(str(out))}: directory {re.escape(str(out.parent))} does "
                         r"not exist \(create it first, or choose another -o\)")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("command", ["prune", "fold"])
def test_output_that_is_a_directory_or_a_device(good_model, tmp_path, capsys, command):
    code, _, err = run_cli(capsys, command, good_model, "-o", tmp_path)
    assert code == EXIT_OUTPUT
    assert_one_line(err, f"graphprune: error: {re.escape(str(tmp_path))}: is a directory; give a file name for "
                         "the output model")
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    code, _, err = run_cli(capsys, command, good_model, "-o", fifo)
    assert code == EXIT_OUTPUT
    assert_one_line(err, f"graphprune: error: {re.escape(str(fifo))}: exists and is not a regular file \\(a device "
                         r"or pipe\); refusing to replace it")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "pipe.onnx"]


def test_missing_command_argument_is_a_usage_error(capsys):
    code, _, err = run_cli(capsys, "prune")
    assert code == EXIT_USAGE
    assert_one_line(err, r"graphprune: error: prune: the following arguments are required: .*")


# --------------------------------------------------------------------------- failures inside a command
def test_closed_stdout_stops_quietly(good_model, capsys, monkeypatch):
    """``graphprune inspect m.onnx | head -1``: the reader leaving is not an error."""
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    code = rm.main(["inspect", str(good_model)])
    assert code == 0
    assert capsys.readouterr().err == ""


def test_out_of_memory_is_one_line(good_model, capsys, monkeypatch):
    def exhausted(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr("graphprune.api.inspect", exhausted)
    code, _, err = run_cli(capsys, "inspect", good_model)
    assert code == 70
    assert_one_line(err, r"graphprune: error: out of memory: this model needs more memory than is available; "
                         r"nothing was written")


def test_unexpected_multiline_error_is_one_line(good_model, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("first line\nsecond line\n\tthird")

    monkeypatch.setattr("graphprune.api.inspect", broken)
    code, _, err = run_cli(capsys, "inspect", good_model)
    assert code == 70
    assert_one_line(err, r"graphprune: internal error: RuntimeError: first line second line third \(rerun with "
                         r"--debug for the traceback\)")
