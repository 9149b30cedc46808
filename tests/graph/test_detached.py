"""Detached models: a skeleton ModelProto for onnxruntime, the large weights beside it as arrays."""
from __future__ import annotations

import gc

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from graphprune.errors import InvalidModelError
from graphprune.graph.detached import STUB_LOCATION, Detached, detach, detach_proto
from graphprune.graph.model import SKELETON_KEEP_ELEMENTS, from_proto, to_proto
from graphprune.validation.runner import PendingSession, make_session
from models.zoo import build
from tests.helpers.models import model
from tests.helpers.onnxrt import random_feeds


def _big(proto: onnx.ModelProto) -> set[str]:
    return {t.name for t in proto.graph.initializer
            if int(np.prod(t.dims)) > SKELETON_KEEP_ELEMENTS and t.data_type != onnx.TensorProto.INT64}


def _outputs(session, feeds) -> list[np.ndarray]:
    return session.run(None, feeds)


def test_large_weights_leave_the_skeleton_and_come_back_unchanged():
    proto = build("resnet50", size="small", batch=1)
    detached = detach(from_proto(proto))
    big = _big(proto)
    assert big and set(detached.arrays) == big
    stubs = [t for t in detached.proto.graph.initializer if t.name in big]
    assert all(t.data_location == onnx.TensorProto.EXTERNAL and not t.raw_data
               and t.external_data[0].value == STUB_LOCATION for t in stubs)
    kept = [t for t in detached.proto.graph.initializer if t.name not in big]
    assert all(t.raw_data or t.float_data or t.int64_data for t in kept)
    weight_bytes = sum(a.nbytes for a in detached.arrays.values())
    assert weight_bytes == sum(int(np.prod(t.dims)) * 4 for t in proto.graph.initializer if t.name in big)
    # the skeleton is the model less the detached bytes (plus a stub's external-data entry each)
    assert 0 <= detached.proto.ByteSize() - (proto.ByteSize() - weight_bytes) <= 64 * len(stubs)
    whole = detached.to_proto()
    assert [t.name for t in whole.graph.initializer] == [t.name for t in proto.graph.initializer]
    for before, after in zip(proto.graph.initializer, whole.graph.initializer):
        np.testing.assert_array_equal(numpy_helper.to_array(after), numpy_helper.to_array(before))
        assert list(after.dims) == list(before.dims) and after.data_type == before.data_type


def test_a_session_of_a_detached_model_computes_what_the_whole_model_computes():
    proto = build("resnet50", size="small", batch=1)
    feeds = random_feeds(proto)
    expected = _outputs(make_session(proto), feeds)
    detached = detach_proto(proto)
    session = make_session(detached)
    del detached
    gc.collect()  # the session keeps the arrays onnxruntime reads
    got = _outputs(session, feeds)
    assert len(got) == len(expected) == 1
    np.testing.assert_array_equal(got[0], expected[0])


def test_fills_are_made_on_copies_when_the_model_is_handed_over_and_only_for_stubs():
    proto = build("resnet50", size="small", batch=1)
    detached = detach_proto(proto)
    name = next(n for n, a in detached.arrays.items() if a.ndim == 4)
    original = detached.arrays[name]
    before = original.copy()
    changed = detached.with_fills([(name, 1, np.array([0, 2]), 0.0), (name, 0, np.array([1]), 0.0)])
    assert changed.proto is detached.proto and changed.arrays[name] is original  # nothing copied yet
    filled = changed.filled()
    np.testing.assert_array_equal(original, before)  # the shared array is never written
    got = filled.arrays[name]
    assert not got[:, [0, 2]].any() and not got[1].any()
    keep = np.ones(got.shape, bool)
    keep[:, [0, 2]] = False
    keep[1] = False
    np.testing.assert_array_equal(got[keep], before[keep])
    others = [n for n in detached.arrays if n != name]
    assert all(filled.arrays[n] is detached.arrays[n] for n in others)
    written = {t.name: numpy_helper.to_array(t) for t in changed.to_proto().graph.initializer}
    np.testing.assert_array_equal(written[name], got)
    with pytest.raises(KeyError, match="not detached initializers"):
        detached.with_fills([("no_such_weight", 0, np.array([0]), 0.0)])


def test_types_onnxruntime_cannot_take_from_numpy_stay_in_the_skeleton():
    rng = np.random.default_rng(0)
    w16 = rng.standard_normal((80, 80)).astype(ml_dtypes.bfloat16)
    w32 = rng.standard_normal((80, 80)).astype(np.float32)
    bf16 = helper.make_tensor("wb", onnx.TensorProto.BFLOAT16, w16.shape, w16.view(np.uint16).tobytes(), raw=True)
    m = model([helper.make_node("Cast", ["wb"], ["wc"], to=onnx.TensorProto.FLOAT),
               helper.make_node("MatMul", ["x", "wc"], ["h"]), helper.make_node("MatMul", ["h", "w"], ["y"])],
              [("x", onnx.TensorProto.FLOAT, [2, 80])], [("y", onnx.TensorProto.FLOAT, [2, 80])], {"w": w32})
    m.graph.initializer.append(bf16)
    detached = detach_proto(m)
    assert set(detached.arrays) == {"w"}
    inline = next(t for t in detached.proto.graph.initializer if t.name == "wb")
    assert len(inline.raw_data) == 80 * 80 * 2
    feeds = {"x": rng.standard_normal((2, 80)).astype(np.float32)}
    np.testing.assert_array_equal(_outputs(make_session(detached), feeds)[0], _outputs(make_session(m), feeds)[0])


def test_a_pending_session_is_made_on_a_worker_and_raises_what_making_it_raised():
    proto = build("resnet50", size="small", batch=1)
    feeds = random_feeds(proto)
    pending = PendingSession(proto, exact=True, label="original model")
    assert pending.model is proto
    np.testing.assert_array_equal(_outputs(pending.result(), feeds)[0], _outputs(make_session(proto), feeds)[0])
    broken = onnx.ModelProto()
    broken.CopyFrom(proto)
    broken.graph.node[0].op_type = "NoSuchOp"
    failing = PendingSession(Detached(broken), exact=True, label="broken model")
    assert failing.model is broken
    with pytest.raises(InvalidModelError, match=r"^broken model: onnxruntime cannot load it: .*NoSuchOp"):
        failing.result()


def test_prune_checks_its_detached_pruned_model_against_the_detached_oracle():
    from graphprune import api

    proto = build("resnet50", size="small", batch=1)
    result = api.prune(proto, ratio=0.5, progress=False)
    assert result.oracle.passed and result.oracle.samples == 2
    assert result.drift.samples == 4 and result.oracle.outputs[0].max_abs < 1e-4
    direct = result.model if isinstance(result.model, onnx.ModelProto) else to_proto(result.model)
    assert sum(int(np.prod(t.dims)) for t in direct.graph.initializer) == result.params_after


def test_fills_set_exactly_the_given_positions_to_the_given_value_on_every_axis_and_type():
    rng = np.random.default_rng(3)
    skeleton = onnx.ModelProto()
    arrays = {"f": rng.standard_normal((6, 5, 3, 2)).astype(np.float32), "i": rng.integers(-9, 9, (4, 7), np.int64),
              "h": rng.standard_normal((5, 8)).astype(np.float16)}
    fills = [("f", 1, np.array([4, 0, 4]), 0.0), ("f", 3, np.array([1]), 2.5), ("f", 0, np.array([], np.int64), 0.0),
             ("i", 1, np.array([-1, 2]), 7), ("h", 0, np.array([0, 3]), 1.0)]
    got = Detached(skeleton, arrays, tuple(fills)).filled().arrays
    for name, array in arrays.items():
        expected = array.copy()
        for n, axis, positions, value in fills:   # what fancy indexing sets, one fill after another
            if n == name:
                index = [slice(None)] * expected.ndim
                index[axis] = positions
                expected[tuple(index)] = value
        assert got[name].dtype == array.dtype and got[name] is not array
        np.testing.assert_array_equal(got[name], expected)
