"""Scores and compensation when a group's spaces are parts of an axis (the heads, or the head dims,
of a ``heads * head_dim`` axis), as whole-head analysis describes them: ``part = (stride, size)``,
position ``c`` of the part is every position ``p`` of the axis with ``(p // stride) % size == c``.

The spaces here stand in for the analysis' (same fields: tensor, axis, part), so the scoring and
compensation code is exercised exactly as on a model analysed into heads. Expected numbers follow
from the definitions by plain numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import helper

from graphprune.analysis.types import Analysis, Group, ParamSlice
from graphprune.calibration import CalibrationStats
from graphprune.calibration.sites import axis_slots, whole, whole_slots
from graphprune.compensation.apply import _refittable
from graphprune.compensation.means import compensation_data, removed_mask
from graphprune.importance import make_importance
from graphprune.rules.base import CONSUMER, Space
from tests.helpers.scoring import seeded_stats as _stats
from tests.helpers.scoring import small_index as _index

#: an axis of 3 heads x 2 dims: head of position p is p // 2, dim is p % 2
HEAD_OF = np.array([0, 0, 1, 1, 2, 2])
DIM_OF = np.array([0, 1, 0, 1, 0, 1])


@dataclass(frozen=True, order=True)
class PartSpace:
    tensor: str
    axis: int
    part: tuple = ()


X, W = Space("x", 2), Space("w", 0)
HEADS_PART, DIMS_PART = PartSpace("x", 2, (2, 3)), PartSpace("x", 2, (1, 2))


def _model():
    rng = np.random.default_rng(4)
    weight = rng.standard_normal((6, 4)).astype(np.float32)
    index = _index([helper.make_node("MatMul", ["x", "w"], ["y"], name="output_projection")], [("x", [2, 5, 6])],
                   ["y"], {"w": weight})
    stats, arrays = _stats(rng, {X: (2, 5, 6)})
    return index, stats, arrays[X], (weight.astype(np.float64) ** 2).sum(1)


def _group(gid: int, slot_of: dict) -> Group:
    on_weight = next(s for s in slot_of if s.tensor == "w")
    weight = ParamSlice(on_weight, frozenset({CONSUMER}), frozenset({"weight"}))
    return Group(gid, tuple(slot_of), {s: len(v) for s, v in slot_of.items()}, (), (weight,), (),
                 n_slots=int(max(v.max() for v in slot_of.values())) + 1, slot_of=dict(slot_of))


HEADS = {X: HEAD_OF, HEADS_PART: np.arange(3), W: HEAD_OF}   # the axis and its heads part, as analysis gives them
DIMS = {X: DIM_OF, DIMS_PART: np.arange(2), W: DIM_OF}
HEADS_PARTS_ONLY = {HEADS_PART: np.arange(3), PartSpace("w", 0, (2, 3)): np.arange(3)}


def test_whole_axis_slots_follow_the_part_coordinates():
    group = _group(0, HEADS_PARTS_ONLY)
    assert whole(HEADS_PART) == X and whole(X) == X
    np.testing.assert_array_equal(whole_slots(group, HEADS_PART, 6), HEAD_OF)
    np.testing.assert_array_equal(whole_slots(_group(1, DIMS), DIMS_PART, 6), DIM_OF)
    np.testing.assert_array_equal(axis_slots(group, X, 6), HEAD_OF)
    assert axis_slots(group, Space("y", 2), 4) is None


def test_a_head_scores_the_sum_over_its_dimensions_once():
    index, stats, x, norms = _model()
    energy, variance = (x * x).mean(0), x.var(0)
    for slot_of in (HEADS, HEADS_PARTS_ONLY):  # the axis read twice (whole and heads part) counts once
        group = _group(0, slot_of)
        np.testing.assert_allclose(make_importance("energy", stats=stats).score(group, index),
                                   np.bincount(HEAD_OF, energy * norms), rtol=1e-10)
        np.testing.assert_allclose(make_importance("fluctuation", stats=stats).score(group, index),
                                   np.bincount(HEAD_OF, variance * norms), rtol=1e-10)
    np.testing.assert_allclose(make_importance("fluctuation", stats=stats).score(_group(1, DIMS), index),
                               np.bincount(DIM_OF, variance * norms), rtol=1e-10)


def test_removed_heads_and_dims_compensate_their_union():
    index, _, x, _ = _model()
    analysis = Analysis(index, [_group(0, HEADS), _group(1, DIMS)], [], {})
    removed = {0: [1], 1: [0]}  # head 1 (positions 2, 3) and dim 0 of every head (0, 2, 4)
    np.testing.assert_array_equal(np.nonzero(removed_mask(analysis, removed, X, 6))[0], [0, 2, 3, 4])
    stats = CalibrationStats()
    stats.add_space(X, 6, gram=True).update(x.reshape(2, 5, 6))
    data = compensation_data(analysis, removed, stats, refit=True)
    assert [d.space for d in data] == [X]
    np.testing.assert_array_equal(data[0].positions, [0, 2, 3, 4])
    np.testing.assert_array_equal(data[0].kept, [1, 5])
    np.testing.assert_allclose(data[0].values, x.mean(0)[[0, 2, 3, 4]], rtol=1e-12)
    assert data[0].matrix.shape == (4, 2)  # removed positions regressed on the two kept ones


def test_refit_needs_the_weight_axis_aligned_in_every_group():
    index = _model()[0]
    site = type("Site", (), {"activation": HEADS_PART, "weight": W})()
    means = type("Means", (), {"refit": True, "positions": np.array([2, 3]), "kept": np.array([0, 1, 4, 5])})()
    aligned = Analysis(index, [_group(0, HEADS), _group(1, DIMS)], [], {})
    assert _refittable(aligned, site, means)
    shuffled = Analysis(index, [_group(0, HEADS), _group(1, {**DIMS, W: DIM_OF[::-1]})], [], {})
    assert not _refittable(shuffled, site, means)
