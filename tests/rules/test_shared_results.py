"""What rules share between nodes to stay cheap per node (position maps, segment cuts, the
entries of ``Shape(x)``) must be the same as what a fresh computation gives, and safe to share:
a rule or the analysis that changes what it was handed must not change what the next node reads."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from graphprune.rules.factors import _segment_atoms, refine
from graphprune.rules.pairs import SHARED_PAIRS, offset_pairs
from graphprune.rules.reshape import _segments, align_segments
from graphprune.rules.shapevalue import ShapeValues
from tests.helpers.rule_graphs import graph, ints, tensor


@pytest.mark.parametrize("count,offset", [(1, 0), (3, 5), (SHARED_PAIRS, 7), (SHARED_PAIRS + 1, 2)])
def test_offset_pairs_map_each_position_to_its_offset(count, offset):
    pairs = offset_pairs(count, offset)
    assert pairs.dtype == np.int64 and pairs.shape == (count, 2)
    assert pairs.tolist() == [[c, c + offset] for c in range(count)]


def test_small_offset_maps_are_shared_and_read_only_large_ones_are_fresh():
    small = offset_pairs(4, 2)
    assert offset_pairs(np.int64(4), np.int64(2)) is small  # numpy sizes hit the same map
    with pytest.raises(ValueError):
        small[0, 0] = 9
    large = offset_pairs(SHARED_PAIRS + 1, 0)
    assert large is not offset_pairs(SHARED_PAIRS + 1, 0) and large.flags.writeable


@pytest.mark.parametrize("ins,outs", [
    ((1, 64, 7, 7), (1, 3136)),
    (("N", 8, 4, 4), ("N", 2, 4, 16)),
    ((1, 8, None), (1, 8, 3)),
    (("batch", "seq", 32), ("batch", "seq", 4, 8)),
])
def test_cached_segments_are_the_segments_as_tuples(ins, outs):
    expected = [(tuple(a), tuple(b), known) for a, b, known in align_segments(ins, outs)]
    assert list(_segments(ins, outs)) == expected
    assert _segments(ins, outs) is _segments(tuple(ins), tuple(outs))


def test_cached_atoms_are_refine_with_where_each_atom_sits():
    spans, in_atoms, out_atoms, where_in, where_out = _segment_atoms((32,), (4, 8))
    assert (spans, in_atoms, out_atoms) == refine([32], [4, 8])
    # the atom of 8 (flat positions 1..8) is the inner part of the 32 axis and all of output axis 1
    assert where_in[(1, 8)] == (0, 1) and where_out[(1, 8)] == (1, 1)
    assert where_in[(8, 32)] == (0, 8) and where_out[(8, 32)] == (0, 1)
    assert _segment_atoms((2, 3), (3, 2)) is None


def test_two_shape_nodes_of_one_tensor_give_equal_entries_that_do_not_share_a_list():
    nodes = [helper.make_node("Shape", ["x"], ["s0"], name="shape0"),
             helper.make_node("Shape", ["x"], ["s1"], name="shape1"),
             helper.make_node("Shape", ["x"], ["tail"], start=1, name="shape_tail"),
             helper.make_node("Concat", ["s0", "s1"], ["both"], axis=0, name="concat")]
    index = graph(nodes, [tensor("x", ["batch", 4, 5])], [tensor("both", [6], TensorProto.INT64)],
                  [ints("unused", [0])], opset=17)
    values = ShapeValues(index)
    first, second = values.value("s0"), values.value("s1")
    assert [e.value for e in first] == [None, 4, 5]
    assert [e.dim_source for e in first] == [("x", 0), ("x", 1), ("x", 2)]
    assert first == second and first is not second
    assert [e.dim_source for e in values.value("tail")] == [("x", 1), ("x", 2)]
    assert [e.dim_source for e in values.value("both")] == [("x", a) for a in (0, 1, 2)] * 2
    first.append(None)  # a reader that extends one Shape's list leaves the other Shape's entries alone
    assert len(values.value("s1")) == 3
