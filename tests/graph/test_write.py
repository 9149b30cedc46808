"""graph/write.py: the streaming writer gives exactly ``to_proto(model).SerializeToString()``, and
with external data a model that onnx loads and onnxruntime runs, its tensors at aligned offsets."""
from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from graphprune.graph import edit
from graphprune.graph.model import from_proto, to_proto
from graphprune.graph.write import External, serialized_size, write_model
from graphprune.io import EXTERNAL_ALIGNMENT, EXTERNAL_TENSOR_MIN_BYTES, save_model
from graphprune.passes.fold import fold
from models.zoo import build
from tests.helpers import robust as rm
from tests.helpers.onnxrt import random_feeds, run

MODELS = {"resnet18": lambda: build("resnet18"), "rich": rm.rich_model, "ir3": rm.initializers_as_inputs,
          "float16": rm.float16_cnn, "loop": rm.loop_node}


def _written(graph, external=None) -> bytes:
    buffer = io.BytesIO()
    write_model(graph, buffer, external)
    return buffer.getvalue()


def _rewrite_some(graph) -> list[str]:
    """Rewrite every other float initializer (scaled by 0.5) and add one: the array-tensor path."""
    names = [n for n, v in graph.graph.initializers.items() if v.const_value.dtype.is_floating_point()][::2]
    for name in names:
        value = graph.graph.initializers[name]
        edit.write_initializer(value, np.asarray(value.const_value.numpy()) * 0.5)
    edit.add_initializer(graph, "graphprune_test_extra", np.arange(600, dtype=np.float32))
    return names


@pytest.mark.parametrize("name", sorted(MODELS))
def test_unedited_model_streams_its_own_bytes(name):
    model = MODELS[name]()
    graph = from_proto(model)
    data = _written(graph)
    assert data == to_proto(graph).SerializeToString() == model.SerializeToString()
    assert serialized_size(graph) == len(data)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_rewritten_initializers_stream_like_to_proto(name):
    graph = from_proto(MODELS[name]())
    assert _rewrite_some(graph)
    data = _written(graph)
    assert data == to_proto(graph).SerializeToString()
    assert serialized_size(graph) == len(data)


def test_folded_model_streams_like_to_proto():
    graph = fold(from_proto(build("mobilenetv3", keep_bn=True))).graph
    data = _written(graph)
    assert data == to_proto(graph).SerializeToString() and serialized_size(graph) == len(data)


def _external_tensors(model: onnx.ModelProto) -> dict[str, dict]:
    return {t.name: {e.key: e.value for e in t.external_data} for t in model.graph.initializer
            if t.data_location == onnx.TensorProto.EXTERNAL}


@pytest.mark.parametrize("rewritten", [False, True], ids=["as-loaded", "rewritten"])
def test_external_data_is_aligned_loads_and_runs(tmp_path, rewritten):
    graph = from_proto(build("resnet18"))
    if rewritten:
        _rewrite_some(graph)
    expected = to_proto(graph)
    path, data_path = tmp_path / "model.onnx", tmp_path / "model.onnx.data"
    with open(data_path, "wb") as data, open(path, "wb") as fh:
        external = External(data, "model.onnx.data", min_bytes=1024, alignment=4096)
        assert write_model(graph, fh, external)
    assert path.stat().st_size == serialized_size(graph, External(io.BytesIO(), "model.onnx.data", 1024, 4096))
    skeleton = onnx.load(str(path), load_external_data=False)
    refs = _external_tensors(skeleton)
    sizes = {t.name: len(t.raw_data) for t in expected.graph.initializer}
    assert set(refs) == {n for n, size in sizes.items() if size >= 1024} and refs
    blob = data_path.read_bytes()
    by_name = {t.name: t for t in expected.graph.initializer}
    for name, ref in refs.items():
        offset, length = int(ref["offset"]), int(ref["length"])
        assert ref["location"] == "model.onnx.data" and offset % 4096 == 0 and length == sizes[name]
        assert blob[offset:offset + length] == by_name[name].raw_data
    loaded = onnx.load(str(path))
    assert [t.name for t in loaded.graph.initializer] == list(by_name)
    for tensor in loaded.graph.initializer:
        np.testing.assert_array_equal(numpy_helper.to_array(tensor), numpy_helper.to_array(by_name[tensor.name]))
    _assert_runs_like(path, expected)


def _assert_runs_like(path, expected: onnx.ModelProto) -> None:
    """The model file at ``path`` (onnxruntime reads its external data itself) computes ``expected``."""
    feeds = random_feeds(expected)
    got = run(str(path), feeds)
    for name, value in run(expected, feeds).items():
        np.testing.assert_array_equal(got[name], value)


def test_nothing_big_enough_writes_no_external_data():
    graph = from_proto(rm.small_cnn())
    data = io.BytesIO()
    assert not write_model(graph, io.BytesIO(), External(data, "m.data", min_bytes=10**9))
    assert data.getvalue() == b""


def test_save_model_with_external_data_loads_and_runs(tmp_path):
    graph = from_proto(build("resnet18"))
    path = save_model(graph, tmp_path / "out.onnx", external_data=True)
    refs = _external_tensors(onnx.load(str(path), load_external_data=False))
    assert refs and all(int(r["offset"]) % EXTERNAL_ALIGNMENT == 0 for r in refs.values())
    assert all(int(r["length"]) >= EXTERNAL_TENSOR_MIN_BYTES for r in refs.values())
    _assert_runs_like(path, to_proto(graph))
