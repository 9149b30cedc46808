"""The pure part of the budget search: steps, the hull order of moves, the prefix search, rollback."""
from __future__ import annotations

import math

import pytest

from graphprune.planning.budget import (Curve, Point, PrefixSearch, counts_of, cumulative, energy, group_moves,
                                        most_sensitive, order_moves, roll_back, step_counts)
from graphprune.planning.select import GroupLimits


def test_steps_are_the_distinct_counts_of_eighths_under_the_limits():
    assert step_counts(32, GroupLimits()) == [4, 8, 12, 16, 20, 24, 28]
    assert step_counts(5, GroupLimits()) == [1, 2, 3, 4]           # floor(k*5/8): 0,1,1,2,3,3,4
    assert step_counts(32, GroupLimits(max_ratio=0.5)) == [4, 8, 12, 16]
    assert step_counts(32, GroupLimits(round_to=8)) == [8, 16, 24]  # kept counts are multiples of 8
    assert step_counts(2, GroupLimits()) == [1]


def test_energy_is_additive_proxy():
    assert energy(0.1, "rel") == pytest.approx(0.01)
    assert energy(0.1, "cosine") == 0.1 and energy(0.25, "top1") == 0.25


def _curve(group, points):
    return Curve(group, f"layer{group}", 64, tuple(Point(c, d, s) for c, d, s in points))


def test_moves_follow_the_upper_hull_of_savings_against_energy():
    # (count, drift, saving). Step 8 alone buys little (25 per unit of energy) but opens step 16
    # (300 from 8): the hull goes 0 -> 16 (slope 80) and both steps get that slope, 8 first. Step 24
    # drifts more than 32 and saves less: dropped. Then 16 -> 32 (slope 20 / 0.3).
    curve = _curve(0, [(8, 0.4, 10.0), (16, 0.5, 40.0), (24, 0.9, 50.0), (32, 0.8, 60.0)])
    moves = group_moves(curve, "cosine", allowed=1.0)
    assert [(m.before, m.after) for m in moves] == [(0, 8), (8, 16), (16, 32)]
    assert [m.slope for m in moves] == [pytest.approx(80.0), pytest.approx(80.0), pytest.approx(200.0 / 3)]
    assert [m.energy for m in moves] == [pytest.approx(0.4), pytest.approx(0.1), pytest.approx(0.3)]
    assert [m.saving for m in moves] == [pytest.approx(10.0), pytest.approx(30.0), pytest.approx(20.0)]


def test_a_dominated_step_is_dropped_and_slopes_are_exact():
    # step 24 drifts more than 16 but saves less: never worth taking
    curve = _curve(3, [(8, 0.1, 10.0), (16, 0.2, 30.0), (24, 0.3, 25.0)])
    moves = group_moves(curve, "cosine", allowed=1.0)
    assert [(m.before, m.after) for m in moves] == [(0, 8), (8, 16)]
    # hull 0 -> (0.1, 10) -> (0.2, 30) is not concave: one segment 0 -> 16 of slope 30 / 0.2
    assert [m.slope for m in moves] == [pytest.approx(150.0), pytest.approx(150.0)]
    assert [m.energy for m in moves] == [pytest.approx(0.1), pytest.approx(0.1)]


def test_steps_beyond_the_allowance_and_without_savings_are_not_moves():
    curve = _curve(1, [(8, 0.0, 0.0), (16, 0.01, 5.0), (24, 0.5, 9.0)])
    moves = group_moves(curve, "rel", allowed=0.1)
    assert [(m.before, m.after) for m in moves] == [(0, 16)]
    assert moves[0].energy == pytest.approx(1e-4) and moves[0].slope == pytest.approx(5.0 / 1e-4)


def test_free_steps_come_first_and_each_group_keeps_its_order():
    free = _curve(7, [(8, 0.0, 3.0), (16, 0.0, 6.0), (24, 0.2, 7.0)])
    costly = _curve(2, [(8, 0.01, 100.0), (16, 0.05, 150.0)])
    moves = order_moves([costly, free], "cosine", allowed=1.0)
    assert [(m.group, m.after) for m in moves[:1]] == [(7, 16)]
    assert [(m.group, m.after) for m in moves] == [(7, 16), (2, 8), (2, 16), (7, 24)]
    assert math.isinf(moves[0].slope)
    assert counts_of(moves, 0) == {} and counts_of(moves, 3) == {7: 16, 2: 16}
    assert cumulative(moves, "saving") == pytest.approx([0, 6, 106, 156, 157])


def test_moves_of_one_segment_stay_in_order_whatever_their_savings():
    # step 12 drifts more than 16 (noise): dropped; 4 -> 8 and 8 -> 16 share a segment, and the
    # larger saving of 8 -> 16 must not put it first (the group would go back to 8 after 16)
    group = _curve(0, [(4, 1e-9, 200.0), (8, 3e-9, 400.0), (12, 7e-9, 600.0), (16, 6e-9, 800.0)])
    other = _curve(1, [(4, 0.01, 264.0)])
    moves = order_moves([other, group], "cosine", allowed=1.0)
    assert [(m.group, m.before, m.after) for m in moves][:3] == [(0, 0, 4), (0, 4, 8), (0, 8, 16)]
    for length in range(len(moves) + 1):  # along the prefixes, no group ever loses fewer slots again
        previous = counts_of(moves, length - 1) if length else {}
        assert all(counts_of(moves, length).get(g, 0) >= c for g, c in previous.items())


def _search(measure_energy, moves_count, allowed, width=2):
    moves = order_moves([_curve(g, [(8, 0.01, 1.0)]) for g in range(moves_count)], "cosine", allowed=1.0)
    search = PrefixSearch(moves, allowed, width)
    rounds = 0
    while not search.done:
        probes = search.probes()
        assert probes and all(search.lo < n < search.hi for n in probes) and len(probes) <= width
        search.update({n: measure_energy(n) for n in probes})
        rounds += 1
    return search, rounds


@pytest.mark.parametrize("scale,allowed,expected", [(1.0, 0.095, 9), (3.0, 0.095, 3), (0.1, 0.5, 40),
                                                    (1.0, 0.001, 0)])
def test_the_prefix_search_finds_the_longest_fitting_prefix(scale, allowed, expected):
    # each move predicts 0.01; the measured energy is scale * 0.01 per move
    search, rounds = _search(lambda n: scale * 0.01 * n, 40, allowed)
    assert search.lo == expected and search.hi == expected + 1
    assert rounds <= 7  # the predicted crossing (rescaled by what was measured) closes in fast


def test_the_prefix_search_survives_a_non_monotone_drift():
    # prefix 5 alone is bad (a noisy sample); the search still returns a prefix measured to fit
    energies = {n: 0.01 * n for n in range(41)}
    energies[5] = 1.0
    search, _ = _search(lambda n: energies[n], 40, 0.2)
    assert search.measured[search.lo] <= 0.2 and search.lo >= 4


def test_rollback_moves_the_group_with_the_largest_solo_drift_back_one_step():
    a = _curve(0, [(8, 0.01, 10.0), (16, 0.02, 30.0)])
    b = _curve(1, [(8, 0.05, 50.0)])
    moves = order_moves([a, b], "cosine", allowed=1.0)
    counts, worst = roll_back({0: 16, 1: 8}, moves, [a, b])
    assert worst == 1 and counts == {0: 16}
    counts, worst = roll_back(counts, moves, [a, b])
    assert worst == 0 and counts == {0: 8}
    assert [c.group for c in most_sensitive([a, b], 1)] == [1]
