"""Data-driven scores of slots that span several positions (a head dimension in every head, a whole
head), and of groups whose channels only meet each other (queries against keys).

The groups are written by hand over a tiny graph, so the expected scores follow from the
criteria's definitions (module docstring of graphprune.importance.data) by plain numpy.
"""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from graphprune.analysis.types import Group, ParamSlice
from graphprune.importance import make_importance
from graphprune.rules.base import CONSUMER, Space
from tests.helpers.scoring import seeded_stats as _stats
from tests.helpers.scoring import small_index as _index

#: slot of each of the 4 positions: two "heads" of two dimensions each
HEADS = np.array([0, 0, 1, 1])
SLOT_OF_SIX = np.array([0, 0, 0, 1, 1, 2])  # slot 0 covers three positions, slot 2 one


def _group(slot_of: dict, params=(), contractions=()) -> Group:
    spaces = tuple(slot_of)
    return Group(0, spaces, {s: len(v) for s, v in slot_of.items()}, (), tuple(params), (),
                 n_slots=int(max(v.max() for v in slot_of.values())) + 1, slot_of=dict(slot_of),
                 contractions=tuple(contractions))


def _consumer_case(weight_slots: np.ndarray):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((len(weight_slots), 5)).astype(np.float32)
    index = _index([helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")], [("x", [2, 7, 6])], ["y"],
                   {"w": weight})
    x, w = Space("x", 2), Space("w", 0)
    group = _group({x: SLOT_OF_SIX, w: weight_slots}, [ParamSlice(w, frozenset({CONSUMER}), frozenset({"weight"}))])
    stats, arrays = _stats(rng, {x: (2, 7, 6)})
    return group, index, stats, arrays[x], (weight.astype(np.float64) ** 2).sum(1)


def test_multi_position_slots_sum_their_positions():
    group, index, stats, x, norms = _consumer_case(SLOT_OF_SIX)
    variance, energy, mean_abs = x.var(0), (x * x).mean(0), np.abs(x).mean(0)
    per_slot = lambda values: np.bincount(SLOT_OF_SIX, values)  # noqa: E731
    np.testing.assert_allclose(make_importance("fluctuation", stats=stats).score(group, index),
                               per_slot(variance * norms), rtol=1e-10)
    np.testing.assert_allclose(make_importance("energy", stats=stats).score(group, index),
                               per_slot(energy * norms), rtol=1e-10)
    np.testing.assert_allclose(make_importance("activation", stats=stats).score(group, index),
                               per_slot(mean_abs) / np.bincount(SLOT_OF_SIX), rtol=1e-10)
    assert not np.allclose(per_slot(variance * norms), per_slot(energy * norms))  # the means matter


def test_unaligned_weight_axis_uses_the_slot_mean_statistic():
    """Activation positions and weight rows not one to one (a grouped contraction): the slot's mean
    variance times the slot's total weight norm."""
    weight_slots = np.array([0, 1, 1, 2])
    group, index, stats, x, norms = _consumer_case(weight_slots)
    mean_variance = np.bincount(SLOT_OF_SIX, x.var(0)) / np.bincount(SLOT_OF_SIX)
    np.testing.assert_allclose(make_importance("fluctuation", stats=stats).score(group, index),
                               mean_variance * np.bincount(weight_slots, norms), rtol=1e-10)


def _attention_index(with_output_projection: bool):
    """q, k, v [2, 5, 4]; scores = q @ kᵀ; context = scores @ v; optionally context @ w_o."""
    rng = np.random.default_rng(1)
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], name="transpose", perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["scores"], name="scores"),
             helper.make_node("MatMul", ["scores", "v"], ["context"], name="context")]
    weights = {}
    if with_output_projection:
        weights["w_o"] = rng.standard_normal((4, 3)).astype(np.float32)
        nodes.append(helper.make_node("MatMul", ["context", "w_o"], ["y"], name="output_projection"))
    index = _index(nodes, [(n, [2, 5, 4]) for n in "qkv"], ["y" if weights else "context"], weights)
    return index, weights.get("w_o")


def test_queries_and_keys_are_scored_at_their_contraction():
    index, _ = _attention_index(False)
    q, kt = Space("q", 2), Space("kt", 1)
    group = _group({q: HEADS, kt: HEADS}, contractions=[q])
    stats, arrays = _stats(np.random.default_rng(2), {q: (2, 5, 4), kt: (2, 4, 5)})
    second = {s: (a * a).mean(0) for s, a in arrays.items()}
    expected = np.bincount(HEADS, second[q] * second[kt])  # E[q_d²]·E[k_d²], summed over the head's dims
    for name in ("fluctuation", "energy"):
        np.testing.assert_allclose(make_importance(name, stats=stats).score(group, index), expected, rtol=1e-10)
    mean_abs = {s: np.abs(a).mean(0) for s, a in arrays.items()}
    np.testing.assert_allclose(make_importance("activation", stats=stats).score(group, index),
                               np.bincount(HEADS, mean_abs[q] * mean_abs[kt]), rtol=1e-10)


def test_a_head_is_scored_by_its_share_of_the_output_projection():
    """A head slot reaching both the q·kᵀ contraction and the output projection: the projection's
    input energy per head, Σ over the head's dims of E[x_d²]·‖W_o[d, :]‖² (the contraction is left
    out: its logits disappear with the head)."""
    index, w_o = _attention_index(True)
    q, kt, context, w = Space("q", 2), Space("kt", 1), Space("context", 2), Space("w_o", 0)
    group = _group({q: HEADS, kt: HEADS, context: HEADS, w: HEADS},
                   [ParamSlice(w, frozenset({CONSUMER}), frozenset({"weight"}))], contractions=[q])
    stats, arrays = _stats(np.random.default_rng(3), {q: (2, 5, 4), kt: (2, 4, 5), context: (2, 5, 4)})
    norms = (w_o.astype(np.float64) ** 2).sum(1)
    energy = (arrays[context] ** 2).mean(0)
    np.testing.assert_allclose(make_importance("energy", stats=stats).score(group, index),
                               np.bincount(HEADS, energy * norms), rtol=1e-10)
    np.testing.assert_allclose(make_importance("fluctuation", stats=stats).score(group, index),
                               np.bincount(HEADS, arrays[context].var(0) * norms), rtol=1e-10)


@pytest.mark.parametrize("name", ["fluctuation", "energy", "activation"])
def test_slots_no_site_reads_are_removed_last(name):
    group, index, stats, x, norms = _consumer_case(SLOT_OF_SIX)
    extra = Space("unread", 0)
    group = _group({**group.slot_of, extra: np.array([0, 1, 2, 3])}, group.params)  # slot 3: only here
    scores = make_importance(name, stats=stats).score(group, index)
    assert scores.shape == (4,) and scores[3] == scores[:3].max()
