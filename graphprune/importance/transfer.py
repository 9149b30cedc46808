"""Scores computed on one analysis, read on another (scoring before BatchNorm folding).

``bn-scale`` needs the BatchNormalization nodes that folding removes. The pipeline scores the
model before folding, spreads each slot's score over every position of every space of its
group (:func:`position_scores`), and scores the folded model's groups from any space both
analyses share (activation tensors and weights keep their names through folding).
"""
from __future__ import annotations

import logging

import numpy as np

from ..analysis.types import Analysis, Group
from .base import Importance, fill_missing, slot_mean

log = logging.getLogger(__name__)


def position_scores(analysis: Analysis, scorer: Importance) -> dict:
    """Space -> score of each of its positions (its slot's score), for every prunable group."""
    out = {}
    for group in analysis.prunable_groups:
        scores = np.asarray(scorer.score(group, analysis.index), dtype=np.float64)
        for space, slots in group.slot_of.items():
            out[space] = scores[slots]
    return out


class TransferredImportance(Importance):
    """Slot scores read from per-position scores of shared spaces; ``fallback`` elsewhere."""

    def __init__(self, name: str, positions: dict, fallback: Importance):
        self.name = name
        self.positions = positions
        self.fallback = fallback

    def score(self, group: Group, index) -> np.ndarray:
        total = np.zeros(group.n_slots, dtype=np.float64)
        covered = np.zeros(group.n_slots, dtype=bool)
        for space, slots in group.slot_of.items():
            values = self.positions.get(space)
            if values is None or values.size != slots.size:
                continue
            mean, touched = slot_mean(group, space, values)
            fresh = touched & ~covered
            total[fresh] = mean[fresh]
            covered |= touched
        filled = fill_missing(total, covered)
        if filled is None:
            log.debug("group %d shares no space with the scored model; using %s", group.id, self.fallback.name)
            return self.fallback.score(group, index)
        return filled
