"""``kept_positions`` (one slot mask per group) gives what ``Group.kept_positions`` gives space by space,
intersected where a space is in several groups (heads and head dims of attention)."""
from __future__ import annotations

import numpy as np
import pytest

from graphprune.errors import PruningError
from graphprune.surgery.apply import kept_positions
from models.transformers.scale import transformer_chain
from models.zoo import build
from tests.helpers.planning import analysed

MODELS = {"chain": lambda: transformer_chain(100), "shufflenetv2": lambda: build("shufflenetv2"),
          "opzoo_b": lambda: build("opzoo_b")}


def _space_by_space(analysis, removed):
    """The definition: every group's kept positions of each of its spaces, intersected across groups."""
    out = {}
    for group in analysis.groups:
        slots = np.asarray(removed.get(group.id, ()), dtype=np.int64)
        if slots.size == 0:
            continue
        for space in group.spaces:
            kept = group.kept_positions(space, slots)
            out[space] = np.intersect1d(out[space], kept) if space in out else kept
    return {space: kept for space, kept in out.items() if kept.size != _size(analysis, space)}


def _size(analysis, space):
    return next(g.sizes[space] for g in analysis.groups if space in g.sizes)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_kept_positions_are_the_groups_own_space_by_space(name):
    _, analysis = analysed(MODELS[name]())
    rng = np.random.default_rng(0)
    removed = {g.id: np.sort(rng.choice(g.n_slots, g.n_slots // 2, replace=False)) for g in analysis.prunable_groups}
    first = analysis.prunable_groups[0]
    removed[first.id] = np.concatenate([removed[first.id], [-1, first.n_slots]])  # ids outside the group: no slot
    got, expected = kept_positions(analysis, removed), _space_by_space(analysis, removed)
    assert got.keys() == expected.keys() and len(got) > 0
    for space, kept in got.items():
        assert kept.dtype == np.int64 and np.array_equal(kept, expected[space]), space
    shared = [s for s in got if sum(s in g.spaces for g in analysis.prunable_groups if len(removed[g.id])) > 1]
    assert bool(shared) == (name == "chain")  # heads and head dims share the chain's attention axes
    for space in shared:  # a shared axis loses what each of its groups removes: fewer than any one keeps
        own = [g.kept_positions(space, np.asarray(removed[g.id])).size for g in analysis.prunable_groups
               if space in g.spaces and len(removed[g.id])]
        assert len(own) > 1 and got[space].size < min(own)


def test_removing_every_slot_of_a_group_is_refused():
    _, analysis = analysed(build("opzoo_b"))
    group = analysis.prunable_groups[0]
    with pytest.raises(PruningError, match="removes every position"):
        kept_positions(analysis, {group.id: np.arange(group.n_slots)})
