"""The ONNX checker on the pruned model (``apply``): the checker's copy is made from the editable
graph without a second copy of the model, and a pruned model that fails the checker is refused."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphprune.errors import PruningError
from graphprune.graph import edit
from graphprune.graph.model import from_proto, to_proto
from graphprune.input_checks import CHECKER_KEEP_ELEMENTS, checker_copy
from graphprune.pipeline.apply import _check_pruned, _checker_weights
from tests.helpers.models import graph_model

F = TensorProto.FLOAT
BIG = CHECKER_KEEP_ELEMENTS + 4  # elements of a weight the checker's copy declares as a graph input


def _matmuls(ir_version=None, external_dir=None):
    """x [2, 4] @ w1 [4, n] @ w2 [n, 4] + b [4], then Gather of BIG columns by a big int64 index
    constant (n = BIG / 4: both weights and the index hold more than CHECKER_KEEP_ELEMENTS)."""
    n = BIG // 4
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
             helper.make_node("MatMul", ["h", "w2"], ["z"], name="mm2"),
             helper.make_node("Add", ["z", "b"], ["s"], name="add"),
             helper.make_node("Gather", ["s", "index"], ["y"], axis=1, name="gather")]
    inits = [numpy_helper.from_array(np.ones((4, n), np.float32), "w1"),
             numpy_helper.from_array(np.ones((n, 4), np.float32), "w2"),
             numpy_helper.from_array(np.ones(4, np.float32), "b"),
             numpy_helper.from_array(np.zeros(BIG, np.int64), "index")]
    m = graph_model(nodes, inits, [helper.make_tensor_value_info("x", F, [2, 4])],
                    [helper.make_tensor_value_info("y", F, [2, BIG])])
    if ir_version is not None:
        m.ir_version = ir_version
        m.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in inits)
    if external_dir is not None:  # b (small) lives in a file next to the model
        (external_dir / "b.bin").write_bytes(np.ones(4, np.float32).tobytes())
        b = m.graph.initializer[2]
        b.ClearField("raw_data")
        b.data_location = TensorProto.EXTERNAL
        b.external_data.add(key="location", value="b.bin")
    return m


@pytest.mark.parametrize("variant", ["ir10", "ir3", "external"])
def test_frame_and_weights_read_as_the_checkers_copy_of_the_skeleton(variant, tmp_path):
    proto = _matmuls(ir_version=3 if variant == "ir3" else None,
                     external_dir=tmp_path if variant == "external" else None)
    model = from_proto(proto)
    frame = to_proto(model, tensors="none")
    merged = onnx.ModelProto.FromString(frame.SerializeToString() + _checker_weights(model, frame).SerializeToString())
    assert merged == checker_copy(to_proto(model, tensors="skeleton"))
    # the small float bias keeps its values (unless in a file); the big weights and the big shape are typed inputs
    kept = {t.name for t in merged.graph.initializer}
    assert kept == (set() if variant == "external" else {"b"})
    inputs = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in merged.graph.input}
    assert inputs["w1"] == [4, BIG // 4] and inputs["w2"] == [BIG // 4, 4] and inputs["index"] == [BIG]
    assert list(inputs)[0] == "x" and len(inputs) == (5 if variant == "ir3" or variant == "external" else 4)


def test_a_pruned_model_failing_the_checker_is_refused_unless_the_original_fails_too():
    source = _matmuls()
    model = from_proto(source)
    onnx.checker.check_model(source, full_check=True)  # the original passes
    assert _check_pruned(model, source, counted=False) is None
    skeleton = _check_pruned(model, source, counted=True)
    assert skeleton == to_proto(model, tensors="skeleton")
    # w2 loses rows that h still has: MatMul's inner sizes disagree (2 x n @ n-1 x 4)
    edit.write_initializer(model.graph.initializers["w2"], np.ones((BIG // 4 - 1, 4), np.float32))
    with pytest.raises(PruningError, match="pruned model fails the ONNX checker .*mm2.*nothing was written"):
        _check_pruned(model, source, counted=False)
    failing = onnx.ModelProto()
    failing.CopyFrom(source)
    failing.graph.node[2].op_type = "NoSuchOp"  # the original fails the checker too: nothing to compare with
    assert _check_pruned(model, failing, counted=False) is None
