"""``reconstruction``: remove the slots whose loss the least-squares re-fit of the rest repairs best.

Optimal Brain Surgeon for structured removal. A consumer site reads an activation ``x`` (``n``
positions, calibration covariance ``C``) through a weight whose position ``i`` is the row ``w_i``
(its slice along the consumer axis), so it adds ``y = Σ_i w_i x_i`` to its output. Removing the
positions ``B`` of a slot and re-fitting the kept ones by least squares (the ``refit`` repair:
``x_B`` rebuilt from the kept positions, the mean into the bias) leaves the output error

    E(B) = tr(W_Bᵀ (P_BB)⁻¹ W_B)        P = (C + λI)⁻¹

where ``W_B`` are the rows of ``B`` (already re-fitted for the slots removed before). Slots are
removed greedily, the one adding the least error first; after each removal the kept rows absorb
the removed ones (``W −= P_{:B} (P_BB)⁻¹ W_B``) and ``P`` becomes the inverse covariance of the
kept positions (``P −= P_{:B} (P_BB)⁻¹ P_{B:}``). Unlike ``fluctuation`` (``Var(x_i)·‖w_i‖²``, each
position alone), this sees that a position the others predict well costs little to remove. When a
group has several consumer sites, a slot's error is the sum over them, and every site is updated.

The score of the ``k``-th slot removed is the largest error added by any of the first ``k``
removals (so the planner, taking the lowest scores, removes the greedy prefix), divided by the
slot's parameter count (``--global`` then compares error per parameter removed across groups: an
attention head costs as much as dozens of MLP neurons). It is exact for dense layers (Gemm,
MatMul, 1x1 convolutions) and an estimate for k×k convolutions (channels' covariance over
positions, not over taps). ``λ`` is :data:`~graphprune.calibration.stats.REFIT_RIDGE` times the
mean variance, the ridge of the ``refit`` repair, so the greedy's final re-fit is the repair's.

Memory and time: ``P`` is ``n x n`` float64 per consumer site (18 MiB for ``n = 1536``), and the
greedy costs about ``n³/3`` multiply-adds per site (seconds for ``n`` of a few thousand); the
calibration keeps the covariance only for axes up to ``GRAM_LIMIT`` positions. Sites without a
covariance (a longer axis, or a group no weight reads: queries and keys) are scored by
``fluctuation``, per parameter.
"""
from __future__ import annotations

import numpy as np

from ..analysis.types import Group
from ..calibration.sites import consumer_sites, whole, whole_slots
from ..calibration.stats import REFIT_RIDGE
from .base import rows_of
from .calibrated import FluctuationImportance, _DataCriterion

#: the greedy removes one slot at a time among this many or fewer, else this fraction at a time
EXACT_BELOW = 64

class _Site:
    """One consumer site during the greedy: live positions, their rows and inverse covariance."""

    def __init__(self, rows: np.ndarray, covariance: np.ndarray, slots: np.ndarray, ridge: float):
        scale = max(float(np.trace(covariance)) / max(len(covariance), 1), 1e-12)
        self.positions = np.arange(len(covariance))
        self.slots = slots
        self.rows = rows.copy()
        self.inverse = np.linalg.inv(covariance + ridge * scale * np.eye(len(covariance)))

    def blocks(self, slots) -> np.ndarray:
        """Indices (into the live arrays) of the positions of ``slots``."""
        return np.nonzero(np.isin(self.slots[self.positions], slots))[0]

    def errors(self, n_slots: int) -> np.ndarray:
        """Output error of removing each slot now (0 for slots with no live position here)."""
        out = np.zeros(n_slots)
        live = self.slots[self.positions]
        if np.unique(live).size == live.size:  # one position per slot: E = ‖w_i‖² / P_ii
            out[live] = np.einsum("ij,ij->i", self.rows, self.rows) / np.diag(self.inverse)
            return out
        for slot in np.unique(live):
            b = np.nonzero(live == slot)[0]
            block = self.inverse[np.ix_(b, b)]
            out[slot] = float(np.einsum("ij,ij->", self.rows[b], np.linalg.solve(block, self.rows[b])))
        return out

    def remove(self, slots) -> None:
        """Remove the positions of ``slots``; the kept rows absorb them and ``P`` becomes the kept
        positions' own inverse covariance."""
        b = self.blocks(slots)
        if b.size == 0:
            return
        keep = np.ones(len(self.positions), dtype=bool)
        keep[b] = False
        block, columns = self.inverse[np.ix_(b, b)], self.inverse[np.ix_(keep, b)]
        solved = np.linalg.solve(block, np.concatenate([self.inverse[np.ix_(b, keep)], self.rows[b]], axis=1))
        k = int(keep.sum())
        self.inverse = self.inverse[np.ix_(keep, keep)] - columns @ solved[:, :k]
        self.rows = self.rows[keep] - columns @ solved[:, k:]
        self.positions = self.positions[keep]


def greedy_errors(sites: list[_Site], n_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """The greedy removal order of every slot and the output error each removal added. While more
    than :data:`EXACT_BELOW` slots are left, the ``1/EXACT_BELOW`` of them adding the least error
    go in one step (their interactions inside the step are not seen; it makes the greedy cost
    about ``EXACT_BELOW · ln(n)`` updates instead of ``n``)."""
    order, added = [], []
    left = np.ones(n_slots, dtype=bool)
    while left.any():
        errors = sum(site.errors(n_slots) for site in sites)
        candidates = np.nonzero(left)[0]
        step = max(1, candidates.size // EXACT_BELOW)
        chosen = candidates[np.argsort(errors[candidates], kind="stable")[:step]]
        order.extend(int(c) for c in chosen)
        added.extend(float(errors[c]) for c in chosen)
        left[chosen] = False
        for site in sites:
            site.remove(chosen)
    return np.asarray(order, dtype=np.int64), np.asarray(added)


def ranked_scores(order: np.ndarray, added: np.ndarray) -> np.ndarray:
    """Per slot: the largest error added by the removals up to its own (non-decreasing along the
    order, and strictly increasing by a relative 1e-9 per step so that ties keep the greedy order)."""
    running = np.maximum.accumulate(np.maximum(added, 0.0))
    top = float(running[-1]) if running.size else 0.0
    scores = np.empty(order.size)
    scores[order] = running + 1e-9 * max(top, 1e-30) * np.arange(order.size)
    return scores


def slot_parameters(group: Group, index) -> np.ndarray:
    """Parameters each slot of ``group`` carries (every parameter slice of the slot, whole or part)."""
    total = np.zeros(group.n_slots)
    for param in group.params:
        if param.space not in group.slot_of:
            continue
        shape = index.array(param.initializer).shape
        size = int(shape[param.axis])
        slots = whole_slots(group, param.space, size)
        total += np.bincount(slots, minlength=group.n_slots) * (int(np.prod(shape)) // max(size, 1))
    return np.maximum(total, 1.0)


class ReconstructionImportance(_DataCriterion):
    name = "reconstruction"

    def _sites(self, group: Group, index) -> list[_Site]:
        out, seen = [], set()
        for site in consumer_sites(group, index):
            stats = self._calibrated(site.activation)
            key = (site.node, whole(site.activation), whole(site.weight))
            if stats is None or stats.covariance is None or key in seen:
                continue
            rows = rows_of(index.array(site.weight.tensor), site.weight.axis)
            slots = whole_slots(group, site.activation, stats.size)
            if rows.shape[0] != stats.size or not np.array_equal(slots, whole_slots(group, site.weight, stats.size)):
                continue  # grouped or shared weights: the rows are not the activation's positions
            seen.add(key)
            out.append(_Site(rows, stats.covariance, slots, REFIT_RIDGE))
        return out

    def score(self, group: Group, index) -> np.ndarray:
        sites = self._sites(group, index)
        if not sites:
            return FluctuationImportance(self.stats).score(group, index) / slot_parameters(group, index)
        order, added = greedy_errors(sites, group.n_slots)
        return ranked_scores(order, added) / slot_parameters(group, index)
