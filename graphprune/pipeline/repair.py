"""Repair data of a decision: what the ``apply`` stage needs to repair the removed channels.

The one place that turns (analysis, removed slots, calibration statistics, options) into the
``compensation=`` value of :func:`graphprune.pipeline.apply.apply`. The ``decide`` stage calls it
for its decision, and the budget search's candidate evaluations call it for every candidate they
prune for real (:mod:`.candidates`), so what the search measures is what is written. A new repair
adds its data here and its use in ``apply``; both then follow.
"""
from __future__ import annotations

from ..vocabulary import DATA_REPAIRS
from .options import Options


def repairs(options: Options, stats) -> bool:
    """Whether pruning under ``options`` repairs what it removes: mean compensation or the re-fit
    (from calibration statistics, data the decision carries), or a repair that reads calibration
    samples in ``apply`` (sequential, statistics)."""
    return (options.mean_repair is not None and stats is not None) or bool(DATA_REPAIRS & set(options.repair))


def repair_data(analysis, removed: dict, stats, options: Options) -> tuple | None:
    """The compensation data of ``removed`` (None when nothing is repaired)."""
    if options.mean_repair is None or stats is None or not removed:
        return None
    from ..compensation import compensation_data

    return tuple(compensation_data(analysis, removed, stats, refit=options.mean_repair == "refit"))
