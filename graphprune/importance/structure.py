"""Criteria over particular kinds of parameter slices: BatchNorm scales and producer filters.

* :class:`BNScaleImportance` (network slimming): |γ| of every slice tagged ``bn_scale`` in the
  slot. It needs the BatchNormalization nodes, so the pipeline scores the model *before*
  folding and carries the scores over (see :mod:`graphprune.importance.transfer`).
* :class:`FPGMImportance` (filter pruning via geometric median): the producer filters of a
  group (slices tagged ``weight`` with the producer role, one row per output channel) are
  compared with their geometric median (Weiszfeld iterations); a filter close to it is
  represented by the others and goes first. A zero filter is trivially redundant, so the score
  is ``min(‖F_i − GM‖, ‖F_i‖)``: dead filters always go first.

Groups without any slice of the kind fall back to L2 magnitude (logged); slots of a group
without such a slice get the group's highest score.
"""
from __future__ import annotations

import logging

import numpy as np

from ..analysis.types import Group
from ..rules.base import PRODUCER
from .base import Importance, fill_missing, rows_of, slot_sum
from .magnitude import MagnitudeImportance

log = logging.getLogger(__name__)

#: Weiszfeld iterations and the distance below which a point counts as the median itself
WEISZFELD_STEPS = 64
WEISZFELD_EPS = 1e-12


class _SliceCriterion(Importance):
    """Sum over selected parameter slices of a per-position value; L2 for groups with none."""

    thread_safe = True  # reads the group and the index only (importance.threads)

    def __init__(self, aggregate: str = "sum"):
        self.fallback = MagnitudeImportance(2, aggregate)

    def wanted(self, param) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def values(self, rows: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, group: Group, index) -> np.ndarray:
        total = np.zeros(group.n_slots, dtype=np.float64)
        covered = np.zeros(group.n_slots, dtype=bool)
        for param in group.params:
            if not self.wanted(param):
                continue
            arr = index.array(param.initializer)
            if arr.dtype.kind != "f" or arr.ndim == 0:
                continue
            total += slot_sum(group, param.space, self.values(rows_of(arr, param.axis) - param.neutral))
            covered[np.unique(group.slot_of[param.space])] = True
        filled = fill_missing(total, covered)
        if filled is None:
            log.debug("group %d has no %s slices; scoring it by L2", group.id, self.name)
            return self.fallback.score(group, index)
        return filled


class BNScaleImportance(_SliceCriterion):
    name = "bn-scale"

    def wanted(self, param) -> bool:
        return "bn_scale" in param.tags

    def values(self, rows: np.ndarray) -> np.ndarray:
        return np.abs(rows).sum(axis=1)


def geometric_median(rows: np.ndarray, steps: int = WEISZFELD_STEPS) -> np.ndarray:
    """The point minimizing the sum of Euclidean distances to ``rows`` (Weiszfeld's algorithm)."""
    median = rows.mean(axis=0)
    for _ in range(steps):
        dist = np.linalg.norm(rows - median, axis=1)
        if np.any(dist < WEISZFELD_EPS):
            # the median sits on a data point: stop there (Weiszfeld's update is undefined)
            break
        weights = 1.0 / dist
        nxt = (weights[:, None] * rows).sum(axis=0) / weights.sum()
        if np.linalg.norm(nxt - median) <= 1e-9 * (1.0 + np.linalg.norm(median)):
            median = nxt
            break
        median = nxt
    return median


class FPGMImportance(_SliceCriterion):
    name = "fpgm"

    def wanted(self, param) -> bool:
        return PRODUCER in param.roles and "weight" in param.tags

    def values(self, rows: np.ndarray) -> np.ndarray:
        if rows.shape[0] < 2:
            return np.linalg.norm(rows, axis=1)
        median = geometric_median(rows)
        return np.minimum(np.linalg.norm(rows - median, axis=1), np.linalg.norm(rows, axis=1))
