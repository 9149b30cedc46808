"""Importance scorers: one score per slot of a group (higher = more important).

Scorers read parameter slices (``group.params``: initializer, axis, roles, tags) or
calibration statistics of the group's activation spaces; they never branch on op types, so a
new op only needs its rule. Slots a criterion has no evidence about (no slice or activation of
the kind it reads) get the group's highest score: they are removed last, never first.
"""
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


def slot_sum(group: Group, space, values: np.ndarray) -> np.ndarray:
    """Per slot, the sum of ``values`` (one per position of ``space``)."""
    return np.bincount(group.slot_of[space], weights=np.asarray(values, dtype=np.float64),
                       minlength=group.n_slots)


def slot_mean(group: Group, space, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per slot, the mean of ``values`` over the slot's positions in ``space``, and which slots it touches."""
    counts = np.bincount(group.slot_of[space], minlength=group.n_slots).astype(np.float64)
    sums = slot_sum(group, space, values)
    return sums / np.maximum(counts, 1.0), counts > 0


def fill_missing(scores: np.ndarray, covered: np.ndarray) -> np.ndarray | None:
    """Slots without evidence get the highest covered score; None when no slot is covered."""
    if not covered.any():
        return None
    out = np.array(scores, dtype=np.float64)
    out[~covered] = out[covered].max()
    return out


def rows_of(array: np.ndarray, axis: int) -> np.ndarray:
    """The slices of ``array`` along ``axis`` as float64 rows (one row per position)."""
    return np.moveaxis(np.asarray(array), axis, 0).reshape(array.shape[axis], -1).astype(np.float64)
