"""Whole attention heads, key/value groups and head dims as slots, on every transformer export.

The dead-structure test: in every layer a quarter of the heads, a quarter of the head dims and a
quarter of the MLP neurons are killed (every parameter slice of them set to its neutral value);
pruning a quarter with the L2 criterion must then remove exactly those, leave the outputs
unchanged, and leave as many heads in every attention as the configuration minus the dead ones.
"""
from __future__ import annotations

import numpy as np
import pytest

from graphprune.oracle import zero_removed
from graphprune.pipeline import apply, decide, score
from graphprune.graph.model import to_proto
from graphprune.rules.base import Space
from tests.helpers.heads import (CASES, CONFIG, RTOL, analyzed_of, build, case_id, head_attributes,
                                        kept_sizes, killed_model, max_error, prune_model, score_heads)
from tests.helpers.onnxrt import run
from tests.helpers.transformer_cases import check

#: exports whose bytes normalization changes (the class token's ConstantOfShape is lifted)
NORMALIZED = {("vit", "torchscript"), ("vit_bn", "torchscript"), ("vit_nonorm", "torchscript")}


def expected_sizes(original: dict, analysis, dead: dict) -> dict[str, tuple]:
    """Initializer shapes once the dead slots are gone: an axis loses every position that a dead
    slot of any of its groups holds."""
    out = {}
    groups = {g.id: g for g in analysis.groups}
    for name, dims in original.items():
        new = list(dims)
        for axis in range(len(dims)):
            gone = np.zeros(dims[axis], dtype=bool)
            for gid in analysis.space_groups.get(Space(name, axis), ()):
                if gid in dead:
                    gone |= np.isin(groups[gid].slot_of[Space(name, axis)], dead[gid])
            new[axis] = int(dims[axis] - gone.sum())
        out[name] = tuple(new)
    return out


def heads_after(case, analysis, dead: dict) -> int:
    """Query heads left: the configuration's, less the dead slots' query heads. Every head group
    has one slot per key/value head (grouped-query attention) or per head."""
    query, kv = CONFIG[case[0]]
    heads_groups = [g for g in analysis.groups if g.kind == "heads"]
    assert heads_groups and all(g.n_slots == (kv if kv > 1 else query) for g in heads_groups)
    lost = {len(dead.get(g.id, ())) for g in heads_groups}
    assert len(lost) == 1  # the same count in every layer
    return query - lost.pop() * (query // heads_groups[0].n_slots)


def assert_dead_structure_removed(case, rng) -> None:
    model, feeds = build(case)
    killed, dead, analysis = killed_model(model, feeds, rng)
    kinds = {g.kind for g in analysis.groups if g.id in dead}
    assert {"heads", ""} <= kinds, f"no head or MLP group to kill: {kinds}"
    removed, pruned, _ = prune_model(killed, feeds, 0.25)
    assert {k: list(v) for k, v in removed.items()} == {k: list(v) for k, v in dead.items() if len(v)}
    check(pruned)
    assert max_error(run(killed, feeds), run(pruned, feeds)) <= RTOL
    assert kept_sizes(pruned) == expected_sizes(kept_sizes(killed), analysis, dead)
    heads = heads_after(case, analysis, dead)
    observed = score_heads(pruned, feeds) + head_attributes(pruned)
    assert observed and set(observed) == {heads}, f"heads left {observed}, expected {heads}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_dead_heads_dims_and_neurons_are_removed_exactly(case):
    assert_dead_structure_removed(case, None)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_random_dead_heads_per_layer_are_removed_exactly(case):
    assert_dead_structure_removed(case, np.random.default_rng(7))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_ratio_zero_gives_identical_bytes(case):
    """Nothing removed: the bytes of the prepared model (normalized; BatchNorm kept), which are the
    model's own unless normalization lifted constants (torch's MultiheadAttention export)."""
    model, feeds = build(case)
    opts, analyzed = analyzed_of(model, feeds, keep_bn=True)
    prepared = to_proto(analyzed.prepared.model).SerializeToString()
    _, pruned, _ = prune_model(model, feeds, 0.0, keep_bn=True)
    assert pruned.SerializeToString() == prepared
    assert case[:2] in NORMALIZED or prepared == model.SerializeToString()


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_half_pruned_is_valid_and_equals_its_oracle(case):
    model, feeds = build(case)
    opts, analyzed = analyzed_of(model, feeds, ratio=0.5)
    removed = decide(score(analyzed, opts), opts).decision.removed
    heads = [g.id for g in analyzed.analysis.prunable_groups if g.kind == "heads"]
    assert heads and all(len(removed[g]) == (analyzed.analysis.groups[g].n_slots // 2) for g in heads)
    oracle = zero_removed(analyzed.prepared.model, analyzed.analysis, removed)
    pruned = to_proto(apply(analyzed, removed, opts).model)
    check(pruned)
    original, candidate = run(model, feeds), run(pruned, feeds)
    assert {k: v.shape for k, v in original.items()} == {k: v.shape for k, v in candidate.items()}
    assert max_error(run(oracle, feeds), candidate) <= RTOL
