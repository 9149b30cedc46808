"""Choosing which slots go inside one group: counts, limits, rounding, exclusions."""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass

import numpy as np

from ..analysis.types import Group


def excluded(group: Group, patterns: tuple[str, ...]) -> str | None:
    """The first node of the group matching an --exclude glob, or None."""
    for node in group.nodes:
        for pat in patterns:
            if fnmatch.fnmatchcase(node, pat):
                return node
    return None


def lowest(scores: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Slot ids by ascending score (ties broken by ``tiebreak``, then by slot id)."""
    keys = (np.arange(scores.size),) + (() if tiebreak is None else (tiebreak,)) + (scores,)
    return np.lexsort(keys)


def select_count(group: Group, scores: np.ndarray, count: int, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """The ``count`` lowest-scoring slots whose removal leaves every space at least one slot.

    Only spaces touched by at most ``count`` slots can run out; the others never refuse a slot,
    so they are not looked at (in most groups every space has every slot)."""
    count = min(count, group.n_slots - 1)
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    order = lowest(scores, tiebreak)
    small = {space: slots for space, slots in group.spaces_of_slots().items() if len(slots) <= count}
    if not small:
        return np.sort(order[:count]).astype(np.int64)
    touches: dict[int, list] = {}
    for space, slots in small.items():
        for s in slots:
            touches.setdefault(int(s), []).append(space)
    remaining = {space: len(slots) for space, slots in small.items()}
    chosen = []
    for s in order:
        if len(chosen) == count:
            break
        spaces = touches.get(int(s), ())
        if all(remaining[sp] > 1 for sp in spaces):
            for sp in spaces:
                remaining[sp] -= 1
            chosen.append(int(s))
    return np.array(sorted(chosen), dtype=np.int64)


def ratio_count(n_slots: int, ratio: float) -> int:
    """floor(ratio * n_slots), robust to float noise (0.3 * 10 is 3, not 2)."""
    return int(math.floor(ratio * n_slots + 1e-9))


def select_by_ratio(group: Group, scores: np.ndarray, ratio: float) -> np.ndarray:
    """floor(ratio * slots) lowest-scoring slots, keeping at least one slot in every space."""
    return select_count(group, scores, ratio_count(group.n_slots, ratio))


@dataclass(frozen=True)
class GroupLimits:
    """How many slots of one group may go: at most ``max_ratio`` of them, at least ``min_keep``
    kept, and the kept count a multiple of ``round_to`` (or everything kept)."""

    max_ratio: float = 1.0
    min_keep: int = 1
    round_to: int = 1

    def allowed(self, n_slots: int, count: int) -> int:
        count = min(count, ratio_count(n_slots, self.max_ratio), n_slots - max(self.min_keep, 1))
        if count <= 0:
            return 0
        if self.round_to > 1:
            kept = min(n_slots, -(-(n_slots - count) // self.round_to) * self.round_to)
            count = n_slots - kept
        return max(count, 0)
