"""Sizes computed at run time (graph/shape_values.py): values of int64 shape tensors and the shapes
of the Slice nodes that read them."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from graphprune.graph.shape_values import _sliced_size, computed_shapes
from graphprune.graph.shapes import skeleton_shapes
from tests.helpers.models import model

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _i64(*values) -> np.ndarray:
    return np.array(values, np.int64)


def _declared(m) -> dict:
    """tensor -> (shape, elem type) of the graph inputs and initializers (what round 0 starts from)."""
    out = {vi.name: (tuple(d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim),
                     vi.type.tensor_type.elem_type) for vi in m.graph.input}
    out.update((t.name, (tuple(t.dims), t.data_type)) for t in m.graph.initializer)
    return out


def causal_mask_model(start: int = 0):
    """ids [batch, sequence]; mask [16, 16] sliced to [:sequence, start:sequence] by computed ends."""
    nodes = [helper.make_node("Shape", ["ids"], ["shape"], name="shape"),
             helper.make_node("Gather", ["shape", "one"], ["length"], axis=0, name="gather"),
             helper.make_node("Unsqueeze", ["length", "zero_axis"], ["end"], name="unsqueeze"),
             helper.make_node("Slice", ["mask", "starts0", "end", "zero_axis"], ["rows"], name="rows"),
             helper.make_node("Slice", ["rows", "starts1", "end", "one_axis"], ["square"], name="square"),
             helper.make_node("Add", ["scores", "square"], ["masked"], name="add")]
    inits = {"one": np.array(1, np.int64), "zero_axis": _i64(0), "one_axis": _i64(1), "starts0": _i64(0),
             "starts1": _i64(start), "mask": np.zeros((16, 16), np.float32)}
    return model(nodes, [("ids", I64, ["batch", "sequence"]), ("scores", F, ["batch", 4, "sequence", "sequence"])],
                 [("masked", F, None)], inits)


def test_causal_mask_slices_take_the_sequence_length():
    m = causal_mask_model()
    found = computed_shapes(m.graph, _declared(m), 17, inferred=False)
    assert found == {"rows": (("sequence", 16), F), "square": (("sequence", "sequence"), F)}


def test_skeleton_shapes_carry_the_mask_downstream_without_symbolic_inference(monkeypatch):
    import graphprune.graph.shapes as shapes

    monkeypatch.setattr(shapes, "_refine_with_symbolic_inference", lambda *a: pytest.fail("symbolic inference ran"))
    result = skeleton_shapes(causal_mask_model())
    assert result["masked"] == (("batch", 4, "sequence", "sequence"), F)
    assert result["end"] == ((1,), I64)


def test_a_slice_that_does_not_start_at_zero_is_left_unknown():
    m = causal_mask_model(start=1)  # sequence - 1 columns: not a plain size
    found = computed_shapes(m.graph, _declared(m), 17, inferred=False)
    assert found == {"rows": (("sequence", 16), F)}


@pytest.mark.parametrize("size, start, end, step, kept", [
    (16, 0, 5, 1, 5), (16, -4, 100, 1, 4), (16, 15, -17, -2, 8), (16, 0, "sequence", 1, "sequence"),
    (1, 0, "sequence", 1, 1), ("sequence", 0, 2**63 - 1, 1, "sequence"), ("sequence", 0, "sequence", 1, "sequence"),
    ("sequence", 0, "past", 1, None), ("sequence", 0, 8, 1, None), (16, 2, "sequence", 1, None),
    (16, 0, "sequence", 2, None)])
def test_sliced_size(size, start, end, step, kept):
    assert _sliced_size(size, start, end, step) == kept


def test_constant_parameters_are_left_to_onnx_before_its_inference():
    # a Slice with constant ends: onnx's own inference reads it, round 0 does not declare it
    nodes = [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"], name="slice")]
    m = model(nodes, [("x", F, ["batch", 6])], [("y", F, None)], {"starts": _i64(1), "ends": _i64(4), "axes": _i64(1)})
    assert computed_shapes(m.graph, _declared(m), 17, inferred=False) == {}
    assert computed_shapes(m.graph, _declared(m), 17, inferred=True)["y"] == (("batch", 3), F)


def test_reshape_targets_are_left_to_onnx_and_symbolic_inference():
    # x [batch, 4, 2, sequence, 8] -> Reshape to [batch, 8, -1, 8] with a computed target: not declared
    nodes = [helper.make_node("Shape", ["x"], ["x_shape"], name="shape"),
             helper.make_node("Gather", ["x_shape", "i0"], ["batch"], axis=0, name="gather"),
             helper.make_node("Concat", ["batch", "rest"], ["target"], axis=0, name="concat"),
             helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape")]
    m = model(nodes, [("x", F, ["batch", 4, 2, "sequence", 8])], [("y", F, None)],
              {"i0": _i64(0), "rest": _i64(8, -1, 8)})
    assert computed_shapes(m.graph, _declared(m), 17, inferred=True) == {}


def test_a_length_read_off_a_sliced_tensor_is_the_length_found_for_it():
    """table[:len(mask[:sequence])]: the second Slice's end is Shape(rows)[0], whose size only the
    first Slice's found shape gives (values are followed after the Slices before them are tried);
    the unrelated shape computation of ``other`` is not needed and changes nothing."""
    nodes = [helper.make_node("Shape", ["ids"], ["shape"], name="shape"),
             helper.make_node("Gather", ["shape", "one"], ["length"], axis=0, name="gather"),
             helper.make_node("Unsqueeze", ["length", "zero_axis"], ["end"], name="unsqueeze"),
             helper.make_node("Slice", ["mask", "starts0", "end", "zero_axis"], ["rows"], name="rows"),
             helper.make_node("Shape", ["other"], ["other_shape"], name="other_shape"),
             helper.make_node("Shape", ["rows"], ["rows_shape"], name="rows_shape"),
             helper.make_node("Gather", ["rows_shape", "zero_axis"], ["rows_end"], axis=0, name="rows_end"),
             helper.make_node("Slice", ["table", "starts0", "rows_end", "zero_axis"], ["picked"], name="picked"),
             helper.make_node("Add", ["picked", "picked"], ["out"], name="add")]
    inits = {"one": np.array(1, np.int64), "zero_axis": _i64(0), "starts0": _i64(0),
             "mask": np.zeros((16, 16), np.float32), "table": np.zeros((32, 8), np.float32)}
    m = model(nodes, [("ids", I64, ["batch", "sequence"]), ("other", F, ["batch", 3])], [("out", F, None)], inits)
    found = computed_shapes(m.graph, _declared(m), 17, inferred=False)
    assert found == {"rows": (("sequence", 16), F), "picked": (("sequence", 8), F)}
