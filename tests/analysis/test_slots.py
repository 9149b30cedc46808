"""Slots of a component (groups.slots): the positions its links tie together, numbered in order of
first appearance (the spaces one after another, in the order given).

The reference ties positions with a plain union-find over (space, position) pairs and numbers the
classes as it meets them.
"""
from __future__ import annotations

import random

import numpy as np
import pytest

from graphprune.analysis.groups import slots
from graphprune.rules.base import Link, Space


def reference_slots(spaces, sizes, links):
    parent = {(s, p): (s, p) for s in spaces for p in range(sizes[s])}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for link in links:
        pairs = [(p, p) for p in range(sizes[link.a])] if link.pairs is None else link.pairs.tolist()
        for pa, pb in pairs:
            ra, rb = find((link.a, pa)), find((link.b, pb))
            if ra != rb:
                parent[ra] = rb
    number: dict = {}
    out = {}
    for s in spaces:
        out[s] = [number.setdefault(find((s, p)), len(number)) for p in range(sizes[s])]
    return len(number), out


def random_component(seed: int):
    rng = random.Random(seed)
    spaces = [Space(f"t{k}", rng.randrange(3)) for k in range(rng.randint(4, 9))]
    sizes = {s: rng.choice([2, 3, 4, 6]) for s in spaces}
    links = []
    for _ in range(rng.randint(2, 8)):
        a, b = rng.sample(spaces, 2)
        if sizes[a] == sizes[b] and rng.random() < 0.5:
            links.append(Link(a, b))  # identity
        else:
            k = rng.randint(1, min(sizes[a], sizes[b]))
            pairs = np.array([rng.sample(range(sizes[a]), k), rng.sample(range(sizes[b]), k)], dtype=np.int64).T
            links.append(Link(a, b, pairs))
    return spaces, sizes, links


@pytest.mark.parametrize("seed", range(8))
def test_slots_are_the_tied_positions_in_order_of_first_appearance(seed):
    spaces, sizes, links = random_component(seed)
    n_slots, slot_of, errors = slots(spaces, sizes, links)
    expected_count, expected = reference_slots(spaces, sizes, links)
    assert errors == []
    assert n_slots == expected_count
    assert {s: v.tolist() for s, v in slot_of.items()} == expected


def test_a_chain_of_identity_links_with_a_permutation_is_one_slot_per_position():
    a, b, c = Space("a", 0), Space("b", 1), Space("c", 0)
    swap = np.array([[0, 1], [1, 0], [2, 2]], dtype=np.int64)
    n_slots, slot_of, errors = slots([a, b, c], {a: 3, b: 3, c: 3}, [Link(a, b), Link(b, c, swap)])
    assert (n_slots, errors) == (3, [])
    assert [slot_of[s].tolist() for s in (a, b, c)] == [[0, 1, 2], [0, 1, 2], [1, 0, 2]]


def test_identity_links_between_spaces_of_different_sizes_are_errors():
    a, b = Space("a", 0), Space("b", 0)
    error = f"{a} and {b} are the same channels but have sizes 2 and 3"
    assert slots([a, b], {a: 2, b: 3}, [Link(a, b)]) == (0, {}, [error])
