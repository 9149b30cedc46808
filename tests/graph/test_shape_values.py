"""Sizes computed at run time (graph/shape_values.py): values of int64 shape tensors and the shapes
of the Slice, Reshape, Expand and ConstantOfShape nodes that read them."""
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


def _shape_op_model(op: str, data_shape, target_nodes, inits, out_elem=F):
    nodes = [helper.make_node("Shape", ["x"], ["x_shape"], name="shape"), *target_nodes]
    inputs = [("x", F, data_shape)]
    if op != "ConstantOfShape":
        inputs.append(("data", F, [d for d in data_shape]))
    nodes.append(helper.make_node(op, (["data"] if op != "ConstantOfShape" else []) + ["target"], ["y"], name="op"))
    return model(nodes, inputs, [("y", out_elem, None)], inits)


def _gather_concat(indices: list[int], constants: dict[int, int]) -> list:
    """target = Concat of x_shape[i] (i in indices) and constants at their positions."""
    parts, nodes = [], []
    for pos in range(len(indices) + len(constants)):
        if pos in constants:
            parts.append(f"c{pos}")
        else:
            i = indices[pos - sum(1 for p in constants if p < pos)]
            nodes.append(helper.make_node("Gather", ["x_shape", f"i{i}"], [f"g{pos}"], axis=0, name=f"gather{pos}"))
            parts.append(f"g{pos}")
    nodes.append(helper.make_node("Concat", parts, ["target"], axis=0, name="concat"))
    return nodes


def _index_inits(indices, constants) -> dict:
    return {**{f"i{i}": _i64(i) for i in indices}, **{f"c{p}": _i64(v) for p, v in constants.items()}}


def test_reshape_with_computed_target_divides_out_the_minus_one():
    # x [batch, 4, 2, sequence, 8] -> [batch, 8, -1, 8]: -1 is what is left: sequence
    m = _shape_op_model("Reshape", ["batch", 4, 2, "sequence", 8], _gather_concat([0], {1: 8, 2: -1, 3: 8}),
                        _index_inits([0], {1: 8, 2: -1, 3: 8}))
    assert computed_shapes(m.graph, _declared(m), 17, inferred=False)["y"] == (("batch", 8, "sequence", 8), F)


def test_reshape_whose_minus_one_is_a_product_of_symbols_is_left_unknown():
    # x [batch, sequence, 16] -> [batch, -1, 4]: 4 * sequence is not a plain size
    m = _shape_op_model("Reshape", ["batch", "sequence", 16], _gather_concat([0], {1: -1, 2: 4}),
                        _index_inits([0], {1: -1, 2: 4}))
    assert "y" not in computed_shapes(m.graph, _declared(m), 17, inferred=False)


def test_expand_and_constant_of_shape_read_the_computed_target():
    # x [batch, 1, 3]; target [batch, 5, 3]
    target = _gather_concat([0, 2], {1: 5})
    expand = _shape_op_model("Expand", ["batch", 1, 3], target, _index_inits([0, 2], {1: 5}))
    assert computed_shapes(expand.graph, _declared(expand), 17, inferred=False)["y"] == (("batch", 5, 3), F)
    fill = _shape_op_model("ConstantOfShape", ["batch", 1, 3], target, _index_inits([0, 2], {1: 5}))
    assert computed_shapes(fill.graph, _declared(fill), 17, inferred=False)["y"] == (("batch", 5, 3), F)


def test_constant_parameters_are_left_to_onnx_before_its_inference():
    # a Reshape with a constant target: onnx's own inference reads it, round 0 does not declare it
    nodes = [helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape")]
    m = model(nodes, [("x", F, ["batch", 6])], [("y", F, None)], {"target": _i64(0, 2, 3)})
    assert computed_shapes(m.graph, _declared(m), 17, inferred=False) == {}
    assert computed_shapes(m.graph, _declared(m), 17, inferred=True)["y"] == (("batch", 2, 3), F)
