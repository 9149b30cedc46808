"""``factoring._Regions``, the regions of the rules' links that decide which splits are linked
factor by factor, checked against networkx's connected components of the same links."""
from __future__ import annotations

import random

import networkx as nx
import pytest

from graphprune.analysis.factoring import _Regions
from graphprune.rules.base import Link, Space


def random_space_graph(seed: int, n_tensors: int, n_links: int):
    """Axes of random tensors (names that do not sort in the order they are made), some split into
    parts, linked at random; every part is tied to its axis."""
    rng = random.Random(seed)
    names = [f"t{rng.randrange(10**6)}_{k}" for k in range(n_tensors)]
    spaces = {Space(name, axis) for name in names for axis in range(rng.randint(1, 3))}
    parts = {Space(s.tensor, s.axis, (stride, 2)) for s in spaces if rng.random() < 0.2 for stride in (1, 2)}
    spaces |= parts
    ordered = sorted(spaces)
    links_by_space: dict = {}
    for _ in range(n_links):
        a, b = rng.choice(ordered), rng.choice(ordered)
        links_by_space.setdefault(a, []).append(Link(a, b))
    ties = [(p.whole, p) for p in sorted(parts)]
    return spaces, links_by_space, ties


@pytest.mark.parametrize("seed,n_tensors,n_links", [(4, 30, 20), (5, 250, 200)])
def test_regions_are_the_components_of_the_links(seed, n_tensors, n_links):
    spaces, links_by_space, _ = random_space_graph(seed, n_tensors, n_links)
    links = [lk for found in links_by_space.values() for lk in found]
    regions = _Regions(links)
    graph = nx.Graph()
    graph.add_edges_from((lk.a, lk.b) for lk in links)
    component = {s: k for k, members in enumerate(nx.connected_components(graph)) for s in members}
    linked = sorted(component)
    assert len(set(component.values())) > 1
    for a in linked:
        for b in linked[::7]:
            assert (regions.find(a) == regions.find(b)) == (component[a] == component[b]), (a, b)
    loose = sorted(spaces - set(component))
    assert loose  # spaces no link names are regions of their own
    assert [regions.find(s) for s in loose] == loose
    assert all(regions.find(s) != regions.find(a) for s in loose[:5] for a in linked)
