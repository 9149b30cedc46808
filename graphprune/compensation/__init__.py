"""Repair of what pruning removes, folded into the kept weights and biases before surgery.

    data = compensation_data(analysis, removed, stats)       # mean / refit: what a plan carries
    report = repair(RepairState(model, analysis, removed), methods, compensation=data,
                    reference=reference, feeds=feeds)        # edits ``model`` before pruning

:mod:`.apply` folds the removed channels' calibration means (and the ``refit`` reconstruction of
:mod:`.data`) into the consumers, :mod:`.response` computes each consumer's response to a
constant input without knowing its op type, :mod:`.sequential` re-fits consumers on the pruned
model's own inputs, :mod:`.statistics` restores producer outputs' means and variances, and
:mod:`.repair` runs them in order.
"""
from .apply import CompensationReport, compensate
from .means import SpaceMeans, compensation_data, data_from_dict, data_to_dict
from .repair import RepairReport, repair
from .state import RepairState

__all__ = ["compensate", "CompensationReport", "SpaceMeans", "compensation_data", "data_to_dict", "data_from_dict",
           "repair", "RepairReport", "RepairState"]
