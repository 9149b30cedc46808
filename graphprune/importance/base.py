"""Importance scorers: one score per slot of a group (higher = more important)."""
from __future__ import annotations

import numpy as np

from ..analysis.types import Group

#: tags of parameter slices that are statistics, not learned magnitudes
STATISTIC_TAGS = frozenset({"bn_mean", "bn_var"})


class Importance:
    """Base class. ``score(group, index)`` returns an array of ``group.n_slots`` floats."""

    name = "importance"
    needs_data = False

    def score(self, group: Group, index) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def scatter_to_slots(group: Group, space, values: np.ndarray, out: np.ndarray, reduce: str = "sum") -> None:
    slots = group.slot_of[space]
    if reduce == "max":
        np.maximum.at(out, slots, values)
    else:
        np.add.at(out, slots, values)
