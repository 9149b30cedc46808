"""Hostile input: external data outside the model's directory, and sizes meant to exhaust memory.

"Nothing outside is read" is proved with a Python audit hook (PEP 578): every ``open`` made by
graphprune while the command runs is recorded, and no recorded path may lie outside the model's
directory. A positive control shows the hook does see the data files graphprune legitimately
reads. "No unbounded allocation" is measured with tracemalloc (numpy and Python buffers are
traced): the peak stays within a few megabytes while the model declares gigabytes.
"""
from __future__ import annotations

import os
import re
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from graphprune.errors import EXIT_BAD_MODEL
from graphprune.graph.model import from_proto
from graphprune.passes.normalize import normalize
from graphprune.input_checks import MAX_TENSOR_ELEMENTS
from tests.helpers import robust as rm
from tests.helpers.robust import assert_one_line, run_cli, save

_OPENED: list[str] | None = None


def _audit(event: str, args) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one only records while _OPENED is a list


def _run_recording_opens(capsys, *args) -> tuple[int, str, list[Path]]:
    global _OPENED
    _OPENED = []
    try:
        code, _, err = run_cli(capsys, *args)
        opened = [Path(p).resolve() for p in _OPENED]
    finally:
        _OPENED = None
    return code, err, opened


def _external_model(model_dir: Path, location: str) -> Path:
    """small_cnn whose weight w1 (864 bytes) is external at ``location``; the rest inline."""
    model = rm.small_cnn()
    w1 = next(t for t in model.graph.initializer if t.name == "w1")
    w1.ClearField("raw_data")
    w1.data_location = T.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "864")):
        entry = w1.external_data.add()
        entry.key, entry.value = key, value
    return save(model, model_dir / "model.onnx")


@pytest.fixture
def layout(tmp_path):
    """model/ (the model's directory) and outside/secret.bin (a valid-size file that must never be read)."""
    model_dir, outside = tmp_path / "model", tmp_path / "outside"
    model_dir.mkdir()
    outside.mkdir()
    (outside / "secret.bin").write_bytes(np.ones(216, np.float32).tobytes())
    return model_dir, outside


HOSTILE = [
    ("absolute", lambda d, o: str(o / "secret.bin"),
     r"tensor 'w1': external data location '.*secret\.bin' is absolute; refused \(only files inside the model's "
     r"directory are read\)"),
    ("dotdot", lambda d, o: "../outside/secret.bin",
     r"tensor 'w1': external data location '\.\./outside/secret\.bin' leaves the model's directory; refused"),
    ("dotdot_backslash", lambda d, o: "..\\outside\\secret.bin",
     r"tensor 'w1': external data location '\.\.\\\\outside\\\\secret\.bin' leaves the model's directory; refused"),
    ("symlink_file", lambda d, o: (d / "weights.bin").symlink_to(o / "secret.bin") or "weights.bin",
     r"tensor 'w1': external data location 'weights\.bin' resolves to .*secret\.bin, outside the model's directory "
     r".* \(symbolic link\?\); refused \(copy the data file beside the model\)"),
    ("symlink_dir", lambda d, o: (d / "data").symlink_to(o, target_is_directory=True) or "data/secret.bin",
     r"tensor 'w1': external data location 'data/secret\.bin' resolves to .*secret\.bin, outside the model's "
     r"directory .* \(symbolic link\?\); refused \(copy the data file beside the model\)"),
    ("nul_byte", lambda d, o: "weights\0/../../outside/secret.bin",
     r"tensor 'w1': external data location contains a NUL byte; refused"),
]


@pytest.mark.parametrize("command", ["prune", "inspect", "fold", "validate"])
@pytest.mark.parametrize("case,location,message", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_external_data_outside_the_model_directory_is_refused_unread(layout, capsys, command, case, location,
                                                                      message):
    model_dir, outside = layout
    model = _external_model(model_dir, location(model_dir, outside))
    out = model_dir / "out.onnx"
    argv = {"prune": ["prune", model, "-o", out], "inspect": ["inspect", model], "fold": ["fold", model, "-o", out],
            "validate": ["validate", model, model]}[command]
    code, err, opened = _run_recording_opens(capsys, *argv)
    assert code == EXIT_BAD_MODEL
    assert_one_line(err, "graphprune: error: " + message)
    assert not out.exists()
    assert [p for p in opened if outside.resolve() in p.parents] == []  # nothing outside was opened
    assert Path(model).resolve() in opened  # the hook saw the model itself being read


def test_data_inside_the_directory_is_read_and_the_hook_sees_it(layout, capsys):
    """Positive control: a data file inside the directory (also through an inner symlink) is read."""
    model_dir, _ = layout
    (model_dir / "real").mkdir()
    reference = rm.small_cnn()
    w1 = next(t for t in reference.graph.initializer if t.name == "w1")
    (model_dir / "real" / "w1.bin").write_bytes(w1.raw_data)
    (model_dir / "link.bin").symlink_to(model_dir / "real" / "w1.bin")
    model = _external_model(model_dir, "link.bin")
    code, err, opened = _run_recording_opens(capsys, "prune", model, "-o", model_dir / "out.onnx", "--ratio", "0.5")
    assert code == 0, err
    assert (model_dir / "real" / "w1.bin").resolve() in opened
    pruned = onnx.load(str(model_dir / "out.onnx"))
    w1_out = next(t for t in pruned.graph.initializer if t.name == "w1")
    assert list(w1_out.dims) == [4, 3, 3, 3] and not w1_out.external_data


@pytest.mark.parametrize("key,value,message", [
    ("offset", "-5", r"tensor 'w1': external data offset '-5' is not a non-negative integer \(corrupted file\?\)"),
    ("length", "12abc",
     r"tensor 'w1': external data length '12abc' is not a non-negative integer \(corrupted file\?\)"),
    ("length", "8", r"tensor 'w1' declares shape \[8, 3, 3, 3\] \(864 bytes\) but its external data length is 8 "
                    r"\(corrupted file\?\)"),
])
def test_external_data_numbers_are_checked(layout, capsys, key, value, message):
    model_dir, _ = layout
    (model_dir / "w.bin").write_bytes(bytes(864))
    model_path = _external_model(model_dir, "w.bin")
    model = onnx.load(str(model_path), load_external_data=False)
    entry = next(e for e in model.graph.initializer[0].external_data if e.key == key)
    entry.value = value
    save(model, model_path)
    code, _, err = run_cli(capsys, "inspect", model_path)
    assert code == EXIT_BAD_MODEL
    assert_one_line(err, f"graphprune: error: {re.escape(str(model_path))}: " + message)


# --------------------------------------------------------------------------- memory
def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _huge_initializer(tmp_path, dims, raw: bytes) -> Path:
    model = rm.small_cnn()
    model.graph.initializer.append(onnx.TensorProto(name="huge", data_type=T.FLOAT, dims=dims, raw_data=raw))
    return save(model, tmp_path / "model.onnx")


def _huge_external(tmp_path) -> Path:
    """A tensor declaring 2**31 floats (8 GiB) backed by a 16-byte file."""
    (tmp_path / "huge.bin").write_bytes(bytes(16))
    model = rm.small_cnn()
    tensor = onnx.TensorProto(name="huge", data_type=T.FLOAT, dims=[2**31], data_location=T.EXTERNAL)
    for key, value in (("location", "huge.bin"), ("offset", "0")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    model.graph.initializer.append(tensor)
    return save(model, tmp_path / "model.onnx")


def _huge_input(tmp_path) -> Path:
    model = rm.small_cnn()
    model.graph.input.append(h.make_tensor_value_info("other", T.FLOAT, [1, 2**20, 2**20]))
    return save(model, tmp_path / "model.onnx")


HUGE = [
    ("declared_elements", lambda p: _huge_initializer(p, [2**20, 2**20], bytes(4)),
     rf"{{path}}: tensor 'huge' declares 1,099,511,627,776 elements \(dims \[1048576, 1048576\]\), more than the "
     rf"{MAX_TENSOR_ELEMENTS:,} graphprune accepts; refused before allocating anything"),
    ("declared_vs_held", lambda p: _huge_initializer(p, [2**15, 2**15], bytes(4)),
     r"{path}: tensor 'huge' declares shape \[32768, 32768\] \(4,294,967,296 bytes\) but holds 4 bytes \(truncated or "
     r"corrupted file\?\)"),
    ("external_length", _huge_external,
     r"{path}: external data for tensor 'huge' needs bytes 0\.\.8,589,934,592 of 'huge\.bin', which has only 16 "
     r"\(truncated\?\)"),
    ("graph_input", _huge_input,
     r"{path}: tensor 'other' declares 1,099,511,627,776 elements \(dims \[1, 1048576, 1048576\]\), more than the "
     rf"{MAX_TENSOR_ELEMENTS:,} graphprune accepts; refused before allocating anything"),
]


@pytest.mark.parametrize("case,make,message", HUGE, ids=[c[0] for c in HUGE])
def test_huge_declared_sizes_fail_before_allocating(tmp_path, capsys, case, make, message):
    model = make(tmp_path)
    result = {}
    peak = _peak_bytes(lambda: result.update(zip(("code", "out", "err"),
                                                 run_cli(capsys, "prune", model, "-o", tmp_path / "out.onnx"))))
    assert result["code"] == EXIT_BAD_MODEL
    assert_one_line(result["err"], "graphprune: error: " + message.format(path=re.escape(str(model))))
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB while refusing"
    assert not (tmp_path / "out.onnx").exists()


def test_huge_constant_fill_is_not_materialised(tmp_path, capsys):
    """ConstantOfShape of 2**30 floats (4 GiB) is valid: it stays a node and the rest still prunes."""
    nodes, inits = rm.stem()
    nodes += [h.make_node("ConstantOfShape", ["big_shape"], ["huge"], name="fill",
                          value=nh.from_array(np.array([1.0], np.float32))),
              h.make_node("ReduceSum", ["huge"], ["total"], name="sum", keepdims=0),
              rm.conv("r2", "w4", "a4", "c4"), h.make_node("Mul", ["total", "zero"], ["z"], name="times_zero"),
              h.make_node("Add", ["a4", "z"], ["y"], name="add")]
    inits += [nh.from_array(np.array([2**15, 2**15], np.int64), "big_shape"), rm.weight("w4", 4, 8, 3, 3),
              nh.from_array(np.array(0.0, np.float32), "zero")]
    model = rm.make(nodes, [rm.image()], [rm.image("y", 4)], inits)
    path = save(model, tmp_path / "model.onnx")
    result = {}
    peak = _peak_bytes(lambda: result.update(zip(("code", "out", "err"), run_cli(
        capsys, "prune", path, "-o", tmp_path / "out.onnx", "--ratio", "0.5", "--no-validate"))))
    assert result["code"] == 0, result["err"]
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    pruned = onnx.load(str(tmp_path / "out.onnx"))
    assert "fill" in [n.name for n in pruned.graph.node]  # still a node, never a 4 GiB initializer
    assert next(t for t in pruned.graph.initializer if t.name == "w1").dims[0] == 4


def test_many_fills_stay_within_the_lift_budget(monkeypatch):
    """Below the per-node cap, lifted constants still stop at the total budget."""
    import graphprune.passes.normalize as norm

    monkeypatch.setattr(norm, "MAX_LIFTED_ELEMENTS", 3000)
    nodes = [h.make_node("ConstantOfShape", ["shape"], [f"fill{i}"], name=f"fill{i}") for i in range(5)]
    nodes.append(h.make_node("Sum", [f"fill{i}" for i in range(5)], ["y"], name="sum"))
    model = rm.make(nodes, [], [h.make_tensor_value_info("y", T.FLOAT, [1000])],
                    [nh.from_array(np.array([1000], np.int64), "shape")])
    graph = from_proto(model)
    normalize(graph)
    assert [n.name for n in graph.graph] == ["fill3", "fill4", "sum"]
    assert sorted(graph.graph.initializers) == ["fill0", "fill1", "fill2", "shape"]
