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

A slot may span many positions of a space (one per head for a head dimension, a whole head's
dimensions for a head): its score sums the per-position products over them. When the activation
space and the weight axis map positions one to one (same size, same slots) the product is taken
per position; otherwise (grouped convolutions) the slot's mean statistic multiplies the slot's
total weight norm.

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
from ..calibration.sites import consumer_sites, contraction_sites
from ..calibration.stats import CalibrationStats
from ..errors import UsageError
from .base import Importance, fill_missing, rows_of, slot_mean, slot_sum

log = logging.getLogger(__name__)


def paired_sum(group: Group, a, a_values: np.ndarray, b, b_values: np.ndarray) -> np.ndarray:
    """Per slot, Σ over its positions of ``a_values · b_values`` (one value per position of spaces
    ``a`` and ``b``); when the two spaces do not map positions one to one, the slot's mean of
    ``a_values`` times its sum of ``b_values``."""
    a_slots, b_slots = group.slot_of[a], group.slot_of[b]
    if a_slots.size == b_slots.size and np.array_equal(a_slots, b_slots):
        return slot_sum(group, a, np.asarray(a_values) * np.asarray(b_values))
    return slot_mean(group, a, a_values)[0] * slot_sum(group, b, b_values)


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
        stats = self.stats.get(space)
        return stats if stats is not None and stats.count else None

    def _consumer_scores(self, group: Group, index, total: np.ndarray, covered: np.ndarray) -> None:
        for site in consumer_sites(group, index):
            stats = self._calibrated(site.activation)
            if stats is None:
                continue
            values = self.activation_values(stats)
            if self.weighted:
                rows = rows_of(index.array(site.weight.tensor), site.weight.axis)
                total += paired_sum(group, site.activation, values, site.weight, np.einsum("ij,ij->i", rows, rows))
            else:
                total += slot_mean(group, site.activation, values)[0]
            covered[np.unique(group.slot_of[site.activation])] = True

    def _contraction_scores(self, group: Group, index, total: np.ndarray, covered: np.ndarray) -> None:
        for site in contraction_sites(group, index):
            a, b = self._calibrated(site.a), self._calibrated(site.b)
            if a is None or b is None:
                continue
            total += paired_sum(group, site.a, self.operand_values(a), site.b, self.operand_values(b))
            covered[np.unique(group.slot_of[site.a])] = True

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
