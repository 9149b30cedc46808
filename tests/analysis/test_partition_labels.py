"""Slots of a hand-made component whose axis is split into heads and head dims.

A weight axis ``p`` of 6 positions is the activation axis ``x``; ``x`` is reshaped into 2 heads
(stride 3) of 3 dims (stride 1), and the heads and dims are read as axes of ``r``. The dims also
reach ``v`` through a permutation. By the reshape, position ``q`` of ``x`` is head ``q // 3`` and
dim ``q % 3``, so the heads group has 2 slots and the dims group 3, numbered in order of first
appearance in the sorted spaces (``p`` comes first).
"""
from __future__ import annotations

import numpy as np

from graphprune.analysis.components import ranges
from graphprune.analysis.partitions import _segment_max, partition_component
from graphprune.rules.base import HEADS, Link, Space

P, X = Space("p", 0), Space("x", 2)
X_HEADS, X_DIMS = Space("x", 2, (3, 2)), Space("x", 2, (1, 3))
R_HEADS, R_DIMS = Space("r", 2), Space("r", 3)
V = Space("v", 1)
#: v[2] is dim 0, v[0] dim 1, v[1] dim 2
PERMUTATION = np.array([[0, 2], [1, 0], [2, 1]], dtype=np.int64)


def component(v_size: int = 3):
    links = [Link(P, X), Link(X_HEADS, R_HEADS), Link(X_DIMS, R_DIMS), Link(R_DIMS, V, PERMUTATION)]
    sizes = {P: 6, X: 6, X_HEADS: 2, X_DIMS: 3, R_HEADS: 2, R_DIMS: 3, V: v_size}
    return sorted(sizes), links, sizes


def test_heads_and_dims_are_two_partitions_with_their_slots():
    spaces, links, sizes = component()
    parts = partition_component(spaces, links, sizes, {X_HEADS: HEADS})
    by_kind = {p.kind: p for p in parts}
    assert sorted(by_kind) == ["dims", "heads"]
    heads, dims = by_kind["heads"], by_kind["dims"]
    assert (heads.n_slots, dims.n_slots) == (2, 3)
    assert set(heads.spaces) == {P, X, X_HEADS, R_HEADS}
    assert set(dims.spaces) == {P, X, X_DIMS, R_DIMS, V}
    q = np.arange(6)
    np.testing.assert_array_equal(heads.labels[P], q // 3)
    np.testing.assert_array_equal(heads.labels[X], q // 3)
    np.testing.assert_array_equal(heads.labels[R_HEADS], [0, 1])
    np.testing.assert_array_equal(dims.labels[P], q % 3)
    np.testing.assert_array_equal(dims.labels[R_DIMS], [0, 1, 2])
    np.testing.assert_array_equal(dims.labels[V], [1, 2, 0])
    # each partition keeps the links between its own spaces
    assert {(lk.a, lk.b) for lk in heads.links} == {(P, X), (X_HEADS, R_HEADS)}
    assert {(lk.a, lk.b) for lk in dims.links} == {(P, X), (X_DIMS, R_DIMS), (R_DIMS, V)}


def test_positions_no_link_ties_are_slots_of_their_own():
    spaces, links, sizes = component(v_size=5)  # v[3] and v[4] follow no dim
    dims = next(p for p in partition_component(spaces, links, sizes, {X_HEADS: HEADS}) if p.kind == "dims")
    assert dims.n_slots == 5
    np.testing.assert_array_equal(dims.labels[V], [1, 2, 0, 3, 4])
    np.testing.assert_array_equal(dims.labels[P], np.arange(6) % 3)


def test_parts_that_do_not_tile_their_axis_fail_the_component():
    links = [Link(P, X), Link(X_HEADS, R_HEADS)]  # heads of stride 3 without the dims below them
    sizes = {P: 6, X: 6, X_HEADS: 2, R_HEADS: 2}
    assert partition_component(sorted(sizes), links, sizes, {X_HEADS: HEADS}) is False


def test_a_component_without_split_axes_has_no_partitions():
    links = [Link(P, X)]
    assert partition_component([P, X], links, {P: 6, X: 6}, {}) is None


def test_ranges_lists_each_run_one_after_another():
    out = ranges(np.array([5, 0, 9], dtype=np.int64), np.array([2, 0, 3], dtype=np.int64))
    np.testing.assert_array_equal(out, [5, 6, 9, 10, 11])


def test_segment_max_of_segments_one_after_another_with_empty_ones():
    values = np.array([3, 1, 7, 2, 2, 0, 5], dtype=np.int64)
    sizes = np.array([0, 3, 1, 0, 3, 0], dtype=np.int64)
    starts = np.cumsum(sizes) - sizes
    assert _segment_max(values, starts, sizes) == [-1, 7, 2, -1, 5, -1]


def test_slot_count_is_one_more_than_the_largest_slot_of_a_fully_reached_space():
    spaces, links, sizes = component()
    for part in partition_component(spaces, links, sizes, {X_HEADS: HEADS}):
        assert part.n_slots == max(int(part.labels[s].max()) for s in part.spaces) + 1
