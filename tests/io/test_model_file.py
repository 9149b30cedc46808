"""``read_model`` hands back the file as a ModelFile only when the file holds exactly the model it
returns, and a ModelFile tells when a file changed since it was read."""
from __future__ import annotations

import os

import onnx
from onnx import TensorProto, helper

from graphprune.io import read_model
from tests.helpers.models import model, small_cnn

F = TensorProto.FLOAT


def test_a_file_read_as_it_is_comes_back_with_its_stamp(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(small_cnn(), str(path))
    proto, file = read_model(path)
    assert file is not None and file.path == path and file.proto is proto
    assert [f for f, _ in file.stamps] == [path] and file.unchanged()
    onnx.save(small_cnn(seed=1), str(path))   # another model written over it
    assert not file.unchanged()
    path.unlink()
    assert not file.unchanged()


def test_a_file_load_changed_gives_no_model_file(tmp_path):
    minus_one = model([helper.make_node("Relu", ["x"], ["y"])], [("x", F, [-1, 3])], [("y", F, [-1, 3])])
    onnx.save(minus_one, str(tmp_path / "dims.onnx"))
    proto, file = read_model(tmp_path / "dims.onnx")
    assert file is None and not proto.graph.input[0].type.tensor_type.shape.dim[0].HasField("dim_value")

    unsorted = model([helper.make_node("Relu", ["r"], ["y"]), helper.make_node("Neg", ["x"], ["r"])],
                     [("x", F, [1, 3])], [("y", F, [1, 3])])
    onnx.save(unsorted, str(tmp_path / "unsorted.onnx"))
    proto, file = read_model(tmp_path / "unsorted.onnx")
    assert file is None and [n.op_type for n in proto.graph.node] == ["Neg", "Relu"]


def test_external_data_files_are_stamped_too(tmp_path):
    path = tmp_path / "ext.onnx"
    onnx.save(small_cnn(), str(path), save_as_external_data=True, location="ext.data", size_threshold=0)
    _, file = read_model(path)
    assert [f for f, _ in file.stamps] == [path, (tmp_path / "ext.data").resolve()] and file.unchanged()
    data = tmp_path / "ext.data"
    stat = data.stat()
    data.write_bytes(b"\0" * stat.st_size)
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert not file.unchanged()
    # without its external data the proto is not the model the file holds
    assert read_model(path, load_external=False)[1] is None
