"""Data-driven criteria over calibration statistics of the group's consumer sites.

A consumer site (see :mod:`graphprune.calibration.sites`) is a node contracting an activation
of the group with a consumer parameter slice. For each site and slot:

* ``activation``: mean |x| of the slot's channels in the activation read by the site.
* ``fluctuation``: Var(x_c) · ‖W_{:,c}‖², the expected squared change of the site's output when
  channel ``c`` is replaced by its calibration mean (which compensation then folds into the
  bias), summed over the slot's positions and over every site.
* ``energy``: E[x_c²] · ‖W_{:,c}‖², the expected squared change when channel ``c`` is simply
  dropped (no compensation); for an attention output projection and a slot that is a head, the
  head's share of the projection's output energy.

A slot may span many positions of an axis (one per head for a head dimension, a whole head's
dimensions for a head), and a group's space may be one part of an axis (the heads, or the head
dims, of a ``heads * head_dim`` axis): statistics are kept per position of the whole axis, each
position goes to its slot, and the slot's score sums the per-position products over them. When
the activation and the weight axis map positions one to one (same size, same slots) the product
is taken per position; otherwise (grouped convolutions) the slot's mean statistic multiplies the
slot's total weight norm.

A group no weight reads (queries and keys: their channels only meet each other in ``Q·Kᵀ``) is
scored at its contraction sites instead, from both operands: E[a²]·E[b²] per position for
``fluctuation`` and ``energy`` (the expected square of the dropped term ``a_c b_c``; a product
of activations has no bias to compensate into), mean |a| · mean |b| for ``activation``. Slots no
site reads get the group's highest score (removed last).
"""
from __future__ import annotations

import logging

import numpy as np

from ..analysis.types import Group
from ..calibration.sites import consumer_sites, contraction_sites, whole, whole_slots
from ..calibration.stats import CalibrationStats
from ..errors import UsageError
from .base import Importance, fill_missing, rows_of

log = logging.getLogger(__name__)


def per_slot(slots: np.ndarray, values, n_slots: int) -> np.ndarray:
    """Σ of ``values`` over the positions of each slot (``slots``: the slot of every position)."""
    return np.bincount(slots, weights=np.asarray(values, dtype=np.float64), minlength=n_slots)


def slot_mean(slots: np.ndarray, values, n_slots: int) -> np.ndarray:
    """Mean of ``values`` over the positions of each slot (0 for a slot without positions)."""
    return per_slot(slots, values, n_slots) / np.maximum(np.bincount(slots, minlength=n_slots), 1)


def paired_sum(a_slots: np.ndarray, a_values, b_slots: np.ndarray, b_values, n_slots: int) -> np.ndarray:
    """Per slot, Σ over its positions of ``a_values · b_values`` (one value per position of two axes
    whose positions have the slots ``a_slots`` and ``b_slots``); when the two axes do not map
    positions one to one, the slot's mean of ``a_values`` times its sum of ``b_values``."""
    if a_slots.size == b_slots.size and np.array_equal(a_slots, b_slots):
        return per_slot(a_slots, np.asarray(a_values) * np.asarray(b_values), n_slots)
    return slot_mean(a_slots, a_values, n_slots) * per_slot(b_slots, b_values, n_slots)


class _DataCriterion(Importance):
    needs_data = True
    #: whether a consumer site's statistic is weighed by the squared norms of the weight's slices
    weighted = True

    def __init__(self, stats: CalibrationStats | None):
        if stats is None:
            raise UsageError(f"importance {self.name!r} is data-driven: give calibration data with --calib PATH "
                             "(API: calib=...)")
        self.stats = stats

    def activation_values(self, stats) -> np.ndarray:  # pragma: no cover - abstract
        """Per position of a consumer site's activation: the statistic weighed by the weight norms."""
        raise NotImplementedError

    def operand_values(self, stats) -> np.ndarray:
        """Per position of a contraction operand: its second moment E[x²]."""
        return stats.second_moment

    def _calibrated(self, space):
        """Statistics of ``space``'s whole axis, or None when nothing was measured there."""
        stats = self.stats.get(whole(space))
        return stats if stats is not None and stats.count else None

    def _consumer_scores(self, group: Group, index, total: np.ndarray, covered: np.ndarray) -> None:
        seen = set()
        for site in consumer_sites(group, index):
            stats = self._calibrated(site.activation)
            key = (site.node, whole(site.activation), whole(site.weight))
            if stats is None or key in seen:  # an axis and its parts in one group: one site
                continue
            seen.add(key)
            slots = whole_slots(group, site.activation, stats.size)
            values = self.activation_values(stats)
            if self.weighted:
                rows = rows_of(index.array(site.weight.tensor), site.weight.axis)
                norms = np.einsum("ij,ij->i", rows, rows)
                total += paired_sum(slots, values, whole_slots(group, site.weight, norms.size), norms, group.n_slots)
            else:
                total += slot_mean(slots, values, group.n_slots)
            covered[np.unique(slots)] = True

    def _contraction_scores(self, group: Group, index, total: np.ndarray, covered: np.ndarray) -> None:
        seen = set()
        for site in contraction_sites(group, index):
            a, b = self._calibrated(site.a), self._calibrated(site.b)
            key = (site.node, whole(site.a), whole(site.b))
            if a is None or b is None or key in seen:
                continue
            seen.add(key)
            a_slots = whole_slots(group, site.a, a.size)
            total += paired_sum(a_slots, self.operand_values(a), whole_slots(group, site.b, b.size),
                                self.operand_values(b), group.n_slots)
            covered[np.unique(a_slots)] = True

    def score(self, group: Group, index) -> np.ndarray:
        total = np.zeros(group.n_slots, dtype=np.float64)
        covered = np.zeros(group.n_slots, dtype=bool)
        self._consumer_scores(group, index, total, covered)
        if not covered.any():
            self._contraction_scores(group, index, total, covered)
        filled = fill_missing(total, covered)
        if filled is None:
            log.debug("group %d: no calibrated consumer or contraction site; every slot scored equal", group.id)
            return np.ones(group.n_slots, dtype=np.float64)
        return filled


class ActivationImportance(_DataCriterion):
    name = "activation"
    weighted = False

    def activation_values(self, stats) -> np.ndarray:
        return stats.mean_abs

    def operand_values(self, stats) -> np.ndarray:
        return stats.mean_abs


class FluctuationImportance(_DataCriterion):
    name = "fluctuation"

    def activation_values(self, stats) -> np.ndarray:
        return stats.variance


class EnergyImportance(_DataCriterion):
    name = "energy"

    def activation_values(self, stats) -> np.ndarray:
        return stats.second_moment
