"""Budget search, the pure part: from measured sensitivity curves and savings to candidate plans.

The measuring is done elsewhere (:mod:`graphprune.pipeline.budget`); this module only decides.

**Curves.** For every searchable group, the *steps* are the distinct slot counts of
``k/8`` of its slots (``k = 1..7``, after its limits); a :class:`Curve` holds, per measured step,
the drift when that group alone loses those slots (on calibration samples) and the objective it
saves (MACs, parameters or predicted latency).

**Moves.** Drift is not additive, but close to it in *energy*: ``1 - cos`` and ``1 - top-1``
add up roughly for small independent errors, and so does the *square* of a relative L2 error.
Each group's steps are reduced to those worth taking (more energy must buy more savings), and
each step is given the savings-per-energy slope of the upper concave hull of its group's
(energy, saving) points: the hull's slopes decrease along a group, so sorting every group's
steps by slope (largest first) is a global order of *moves* in which each group's steps stay in
order. A prefix of the moves is a plan; longer prefixes remove more and (nearly) drift more.
This is the greedy by savings per drift, with the hull so that a cheap step hidden behind an
expensive one is not passed over.

**Search.** The longest prefix whose *measured* combined drift (every group of the plan pruned
together, after repair) stays within the allowance is found by a bracketed search
(:class:`PrefixSearch`): each round measures a few prefixes at once (independent tasks), one at
the crossing the additive model predicts (scaled by what was measured so far) and the others
splitting the bracket evenly, so a wrong prediction costs a round, never correctness.

**Rollback.** If the final check on held-out samples misses the budget, the group of the plan
whose current step has the largest solo drift goes back one step (:func:`roll_back`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .select import GroupLimits

#: a group's steps are the distinct counts of k/STEPS of its slots (k = 1 .. STEPS - 1)
STEPS = 8
#: the search aims at drift <= limit * (1 - SEARCH_MARGIN) on calibration samples (held-out data differs)
SEARCH_MARGIN = 0.1
#: prefixes measured per round of the search: a constant (not the number of workers), so that
#: ``--jobs`` never changes the plan
PROBES_PER_ROUND = 2


def energy(drift: float, metric: str) -> float:
    """The additive proxy of a drift: its square for ``rel``, itself for ``cosine`` and ``top1``."""
    return drift * drift if metric == "rel" else drift


def step_counts(n_slots: int, limits: GroupLimits, steps: int = STEPS) -> list[int]:
    """The distinct slot counts (>= 1) of k/steps of the group's slots, after its limits."""
    counts = []
    for k in range(1, steps):
        count = limits.allowed(n_slots, int(math.floor(k * n_slots / steps + 1e-9)))
        if count > 0 and count not in counts:
            counts.append(count)
    return sorted(counts)


@dataclass(frozen=True)
class Point:
    """One measured step: ``count`` slots removed from the group alone drift by ``drift`` and save ``saving``."""

    count: int
    drift: float
    saving: float


@dataclass(frozen=True)
class Curve:
    """The measured steps of one group (increasing counts)."""

    group: int
    title: str
    slots: int
    points: tuple[Point, ...]

    def point(self, count: int) -> Point | None:
        return next((p for p in self.points if p.count == count), None)

    def to_dict(self) -> dict:
        return {"group": self.group, "layer": self.title, "slots": self.slots,
                "steps": [{"removed": p.count, "drift": p.drift, "saving": p.saving} for p in self.points]}


@dataclass(frozen=True)
class Move:
    """Group ``group`` goes from ``before`` to ``after`` slots removed; ``slope`` is its hull segment's
    savings per energy, ``segment`` the saving of that whole segment (the same for its moves)."""

    group: int
    before: int
    after: int
    slope: float
    energy: float
    saving: float
    segment: float = 0.0


def _slope(a: tuple[float, float], b: tuple[float, float]) -> float:
    de, ds = b[0] - a[0], b[1] - a[1]
    return math.inf if de <= 0 else ds / de


def group_moves(curve: Curve, metric: str, allowed: float) -> list[Move]:
    """The group's worthwhile steps within ``allowed`` drift, each with its hull segment's slope."""
    points = sorted((p for p in curve.points if p.drift <= allowed and p.saving > 0),
                    key=lambda p: (energy(p.drift, metric), -p.saving, p.count))
    chain: list[Point] = []
    for p in points:  # more energy must buy more savings
        if not chain or p.saving > chain[-1].saving:
            chain.append(p)
    coords = [(0.0, 0.0)] + [(energy(p.drift, metric), p.saving) for p in chain]
    hull = [0]
    for i in range(1, len(coords)):
        while len(hull) >= 2 and _slope(coords[hull[-2]], coords[hull[-1]]) <= _slope(coords[hull[-1]], coords[i]):
            hull.pop()
        hull.append(i)
    moves, before, start = [], 0, 0
    for end in hull[1:]:
        slope, segment = _slope(coords[start], coords[end]), coords[end][1] - coords[start][1]
        for i in range(start + 1, end + 1):
            p = chain[i - 1]
            moves.append(Move(curve.group, before, p.count, slope, coords[i][0] - coords[i - 1][0],
                              coords[i][1] - coords[i - 1][1], segment))
            before = p.count
        start = end
    return moves


def order_moves(curves: Sequence[Curve], metric: str, allowed: float) -> list[Move]:
    """Every group's moves, largest slope first (ties: the larger segment, then group id, then count).

    A group's slopes strictly decrease from segment to segment and its moves in one segment share
    slope and segment saving, so every group's moves stay in their order."""
    moves = [m for c in curves for m in group_moves(c, metric, allowed)]
    return sorted(moves, key=lambda m: (-m.slope, -m.segment, m.group, m.after))


def counts_of(moves: Sequence[Move], length: int) -> dict[int, int]:
    """group id -> slots removed after the first ``length`` moves."""
    counts: dict[int, int] = {}
    for m in moves[:length]:
        counts[m.group] = m.after
    return counts


def cumulative(moves: Sequence[Move], attribute: str) -> list[float]:
    """The running sum of a move attribute (``energy`` or ``saving``) over prefixes 0..len(moves)."""
    out = [0.0]
    for m in moves:
        out.append(out[-1] + getattr(m, attribute))
    return out


class PrefixSearch:
    """The longest prefix of the moves whose measured energy stays within ``allowed`` energy.

    ``lo`` is the longest prefix known to fit (0: nothing pruned) and ``hi`` the shortest known
    not to (``len(moves) + 1`` until one is measured); :meth:`probes` proposes the next prefixes
    to measure and :meth:`update` narrows the bracket with what they measured.
    """

    def __init__(self, moves: Sequence[Move], allowed_energy: float, width: int = PROBES_PER_ROUND):
        self.predicted = cumulative(moves, "energy")
        self.allowed = allowed_energy
        self.width = max(int(width), 1)
        self.lo, self.hi = 0, len(moves) + 1
        self.scale = 1.0
        self.measured: dict[int, float] = {0: 0.0}

    @property
    def done(self) -> bool:
        return self.hi - self.lo <= 1

    def probes(self) -> list[int]:
        """Prefix lengths strictly inside (lo, hi): the predicted crossing, the middle of the
        bracket, the prefix just past the crossing, then even splits (at most ``width``)."""
        if self.done:
            return []
        target = self.allowed / self.scale if self.scale > 0 else math.inf
        crossing = max((n for n in range(self.lo + 1, self.hi) if self.predicted[n] <= target), default=self.lo + 1)
        splits = [self.lo + round(j * (self.hi - self.lo) / (self.width + 1)) for j in range(1, self.width + 1)]
        chosen: list[int] = []
        for n in [crossing, (self.lo + self.hi) // 2, crossing + 1, *splits]:
            if self.lo < n < self.hi and n not in chosen and len(chosen) < self.width:
                chosen.append(n)
        return sorted(chosen)

    def update(self, measured: Mapping[int, float]) -> None:
        """Narrow the bracket: ``measured`` maps probed prefix lengths to their measured energy."""
        self.measured.update(measured)
        failing = sorted(n for n, e in measured.items() if not e <= self.allowed)
        if failing and failing[0] < self.hi:
            self.hi = failing[0]
        fitting = [n for n, e in measured.items() if e <= self.allowed and n < self.hi]
        if fitting:
            self.lo = max(self.lo, max(fitting))
        ratios = [e / self.predicted[n] for n, e in self.measured.items() if n and self.predicted[n] > 0]
        if ratios:
            self.scale = sorted(ratios)[len(ratios) // 2]


def roll_back(counts: Mapping[int, int], moves: Sequence[Move], curves: Sequence[Curve]) -> tuple[dict[int, int], int]:
    """``counts`` with the group whose current step drifts most alone moved back one step, and that group."""
    by_group = {c.group: c for c in curves}
    worst = max(counts, key=lambda g: (by_group[g].point(counts[g]).drift, g))
    previous = next(m.before for m in moves if m.group == worst and m.after == counts[worst])
    out = dict(counts)
    if previous:
        out[worst] = previous
    else:
        del out[worst]
    return out, worst


def most_sensitive(curves: Sequence[Curve], count: int = 3) -> list[Curve]:
    """The groups whose first measured step drifts most (the first ``count``)."""
    measured = [c for c in curves if c.points]
    return sorted(measured, key=lambda c: (-c.points[0].drift, c.group))[:count]
