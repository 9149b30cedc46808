"""Choosing which slots go: per-group ratios, constraints, exclusions."""
from __future__ import annotations

import fnmatch
import math

import numpy as np

from ..analysis.types import Analysis, Group


def excluded(group: Group, patterns: tuple[str, ...]) -> str | None:
    """The first node of the group matching an --exclude glob, or None."""
    for node in group.nodes:
        for pat in patterns:
            if fnmatch.fnmatchcase(node, pat):
                return node
    return None


def slot_spaces(group: Group) -> tuple[list[list], dict]:
    """For each slot the spaces it touches, and for each space its number of distinct slots."""
    touches: list[list] = [[] for _ in range(group.n_slots)]
    count = {}
    for space, slots in group.spaces_of_slots().items():
        count[space] = len(slots)
        for s in slots:
            touches[int(s)].append(space)
    return touches, count


def lowest(scores: np.ndarray) -> np.ndarray:
    """Slot ids by ascending score (ties broken by slot id)."""
    return np.lexsort((np.arange(scores.size), scores))


def select_count(group: Group, scores: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` lowest-scoring slots whose removal leaves every space at least one slot."""
    count = min(count, group.n_slots - 1)
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    touches, remaining = slot_spaces(group)
    chosen = []
    for s in lowest(scores):
        if len(chosen) == count:
            break
        spaces = touches[int(s)]
        if all(remaining[sp] > 1 for sp in spaces):
            for sp in spaces:
                remaining[sp] -= 1
            chosen.append(int(s))
    return np.array(sorted(chosen), dtype=np.int64)


def select_by_ratio(group: Group, scores: np.ndarray, ratio: float) -> np.ndarray:
    """floor(ratio * slots) lowest-scoring slots, keeping at least one slot in every space."""
    return select_count(group, scores, int(math.floor(ratio * group.n_slots + 1e-9)))


def local_plan(analysis: Analysis, scorer, ratio: float, exclude: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """Remove ``ratio`` of the slots of every prunable group.

    Returns (removed slots per group id, skipped group id -> reason).
    """
    removed: dict[int, np.ndarray] = {}
    skipped: dict[int, str] = {}
    for group in analysis.groups:
        if not group.prunable:
            continue
        hit = excluded(group, exclude)
        if hit:
            skipped[group.id] = f"excluded by --exclude (node {hit})"
            continue
        scores = scorer.score(group, analysis.index)
        sel = select_by_ratio(group, scores, ratio)
        if sel.size:
            removed[group.id] = sel
    return removed, skipped
