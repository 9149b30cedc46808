"""Repair data of a decision: what the ``apply`` stage needs to repair the removed channels.

The one place that turns (analysis, removed slots, calibration statistics, options) into the
``compensation=`` value of :func:`graphprune.pipeline.apply.apply`. The ``decide`` stage calls it
for its decision, and the budget search's candidate evaluations call it for every candidate they
prune for real (:mod:`.candidates`), so what the search measures is what is written. A new repair
adds its data here and its use in ``apply``; both then follow.
"""
from __future__ import annotations

from .options import Options


def repairs(options: Options, stats) -> bool:
    """Whether pruning under ``options`` repairs what it removes (needs calibration statistics)."""
    return bool(options.compensate) and stats is not None


def repair_data(analysis, removed: dict, stats, options: Options) -> tuple | None:
    """The compensation data of ``removed`` (None when nothing is repaired)."""
    if not repairs(options, stats) or not removed:
        return None
    from ..compensation import compensation_data

    return tuple(compensation_data(analysis, removed, stats, refit=options.refit))
