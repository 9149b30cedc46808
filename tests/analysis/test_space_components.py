"""Components of spaces joined by links, checked against networkx's connected components.

``builder._components``: the reached spaces' components, the groups the analysis makes (each sorted,
listed in the order of their first space, as the analysis listed networkx's). ``factoring._Regions``:
the regions of the rules' links that decide which splits are linked factor by factor.
"""
from __future__ import annotations

import random
from operator import itemgetter

import networkx as nx
import pytest

from graphprune.analysis.builder import _components
from graphprune.analysis.factoring import _Regions
from graphprune.rules.base import Link, Space


def networkx_components(spaces, links_by_space, ties):
    graph = nx.Graph()
    graph.add_nodes_from(spaces)
    graph.add_edges_from((lk.a, lk.b) for links in links_by_space.values() for lk in links)
    graph.add_edges_from(ties)
    return sorted((sorted(c) for c in nx.connected_components(graph)), key=itemgetter(0))


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


@pytest.mark.parametrize("seed,n_tensors,n_links", [(0, 5, 3), (1, 40, 25), (2, 200, 150), (3, 300, 600)])
def test_components_are_networkx_components_in_order(seed, n_tensors, n_links):
    spaces, links_by_space, ties = random_space_graph(seed, n_tensors, n_links)
    expected = networkx_components(spaces, links_by_space, ties)
    assert _components(spaces, links_by_space, ties) == expected
    assert len(expected) > 1  # more than one component: their order is checked too


def test_a_chain_of_links_is_one_sorted_component_and_loose_spaces_are_their_own():
    chain = [Space(f"c{k}", 0) for k in (5, 1, 4, 2, 3)]  # linked in an order that is not sorted
    loose = [Space("b", 1), Space("z", 0)]
    links = {a: [Link(a, b)] for a, b in zip(chain, chain[1:])}
    got = _components(set(chain) | set(loose), links, [])
    assert got == [[Space("b", 1)], sorted(chain), [Space("z", 0)]]


def test_no_reached_space_gives_no_component():
    assert _components(set(), {}, []) == []


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
