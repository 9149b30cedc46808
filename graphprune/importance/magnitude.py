"""Magnitude criteria (L1/L2) and the seeded random baseline.

A slot's magnitude aggregates every parameter slice it owns, measured from the slice's
*neutral* value (0 for weights, 1 for a divisor): producer filters, consumer columns, per-channel
scales and shifts. BatchNorm running statistics are not learned magnitudes and are left out.
``aggregate`` says how slices combine: ``sum`` (of |x|^p over all elements), ``mean`` (per
element, so wide and narrow layers weigh the same) or ``max`` (the largest element).
"""
from __future__ import annotations

import numpy as np

from ..analysis.types import Group
from .base import STATISTIC_TAGS, Importance, scatter_to_slots

from ..vocabulary import AGGREGATES  # noqa: F401 - re-exported


class MagnitudeImportance(Importance):
    thread_safe = True  # reads the group and the index only (importance.threads)

    def __init__(self, p: int = 2, aggregate: str = "sum"):
        if p not in (1, 2):
            raise ValueError("p must be 1 or 2")
        if aggregate not in AGGREGATES:
            raise ValueError("aggregate must be sum, mean or max")
        self.p = p
        self.aggregate = aggregate
        self.name = f"l{p}"

    def _slice_values(self, arr: np.ndarray, axis: int, neutral: float) -> np.ndarray:
        """Per index along ``axis``: sum (or max) of |x - neutral|^p over the slice (float64 result)."""
        if self.p == 2 and not neutral and self.aggregate != "max" and arr.dtype.itemsize <= 4:
            axes = list(range(arr.ndim))  # summed in place: no moved copy of the weight
            return np.einsum(arr, axes, arr, axes, [axis], dtype=np.float64)
        rows = np.moveaxis(arr, axis, 0).reshape(arr.shape[axis], -1)
        rows = rows.astype(np.float32 if rows.dtype.itemsize <= 4 else np.float64, copy=False)
        if neutral:
            rows = rows - np.float32(neutral)
        if self.aggregate == "max":
            x = np.abs(rows).max(axis=1)
            return (x.astype(np.float64) ** self.p)
        if self.p == 2:
            return np.einsum("ij,ij->i", rows, rows, dtype=np.float64)
        return np.abs(rows).sum(axis=1, dtype=np.float64)

    def score(self, group: Group, index) -> np.ndarray:
        total = np.zeros(group.n_slots, dtype=np.float64)
        count = np.zeros(group.n_slots, dtype=np.float64)
        for param in group.params:
            if param.tags and param.tags <= STATISTIC_TAGS:
                continue
            arr = index.array(param.initializer)
            if arr.dtype.kind not in "fc" or arr.ndim == 0 or arr.shape[param.axis] == 0:
                continue
            values = self._slice_values(arr, param.axis, param.neutral)
            scatter_to_slots(group, param.space, values, total, "max" if self.aggregate == "max" else "sum")
            per_elem = arr.size // max(arr.shape[param.axis], 1)
            scatter_to_slots(group, param.space, np.full(values.shape, float(per_elem)), count)
        if self.aggregate == "mean":
            total = total / np.maximum(count, 1.0)
        return np.sqrt(total) if self.p == 2 else total


class RandomImportance(Importance):
    """Uniform random scores, seeded per group so results do not depend on group order."""

    name = "random"
    thread_safe = True  # a generator of its own per group

    def __init__(self, seed: int = 0):
        self.seed = seed

    def score(self, group: Group, index) -> np.ndarray:
        rng = np.random.default_rng([self.seed, group.id])
        return rng.random(group.n_slots)
