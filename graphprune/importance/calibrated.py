"""Data-driven criteria over calibration statistics of the group's consumer sites.

A consumer site (see :mod:`graphprune.calibration.sites`) is a node contracting an activation
of the group with a consumer parameter slice. For each site and slot:

* ``activation``: mean |x| of the slot's channels in the activation read by the site.
* ``fluctuation``: Var(x_c) · ‖W_{:,c}‖², the expected squared change of the site's output when
  channel ``c`` is replaced by its calibration mean (which compensation then folds into the
  bias), summed over the slot's positions and over every site.

When the activation space and the weight axis map positions one to one (same size, same
slots) the product is taken per position; otherwise (grouped convolutions) the slot's mean
variance multiplies the slot's total weight norm. Slots no site reads get the group's highest
score (removed last).
"""
from __future__ import annotations

import logging

import numpy as np

from ..analysis.types import Group
from ..calibration.sites import consumer_sites
from ..calibration.stats import CalibrationStats
from ..errors import UsageError
from .base import Importance, fill_missing, rows_of, slot_mean, slot_sum

log = logging.getLogger(__name__)


class _DataCriterion(Importance):
    needs_data = True

    def __init__(self, stats: CalibrationStats | None):
        if stats is None:
            raise UsageError(f"importance {self.name!r} is data-driven: give calibration data with --calib PATH "
                             "(API: calib=...)")
        self.stats = stats

    def site_scores(self, group: Group, index, site, stats) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, group: Group, index) -> np.ndarray:
        total = np.zeros(group.n_slots, dtype=np.float64)
        covered = np.zeros(group.n_slots, dtype=bool)
        for site in consumer_sites(group, index):
            stats = self.stats.get(site.activation)
            if stats is None or stats.count == 0:
                continue
            total += self.site_scores(group, index, site, stats)
            covered[np.unique(group.slot_of[site.activation])] = True
        filled = fill_missing(total, covered)
        if filled is None:
            log.debug("group %d: no calibrated consumer site; every slot scored equal", group.id)
            return np.ones(group.n_slots, dtype=np.float64)
        return filled


class ActivationImportance(_DataCriterion):
    name = "activation"

    def site_scores(self, group, index, site, stats) -> np.ndarray:
        return slot_mean(group, site.activation, stats.mean_abs)[0]


class FluctuationImportance(_DataCriterion):
    name = "fluctuation"

    def site_scores(self, group, index, site, stats) -> np.ndarray:
        weight = index.array(site.weight.tensor)
        rows = rows_of(weight, site.weight.axis)
        norms = np.einsum("ij,ij->i", rows, rows)
        var = stats.variance
        a_slots, w_slots = group.slot_of[site.activation], group.slot_of[site.weight]
        if a_slots.size == w_slots.size and np.array_equal(a_slots, w_slots):
            return slot_sum(group, site.activation, var * norms)
        return slot_mean(group, site.activation, var)[0] * slot_sum(group, site.weight, norms)
