"""Compensation: removed channels are replaced by their calibration mean, folded into the consumers.

    data = compensation_data(analysis, removed, stats)       # what a plan carries
    report = compensate(model, analysis, data)               # edits ``model`` before pruning

See :mod:`.response` for how each consumer's response to the mean is computed without knowing
its op type, and :mod:`.refit` for the optional least-squares re-fit of consumer weights.
"""
from .apply import CompensationReport, compensate
from .means import SpaceMeans, compensation_data, data_from_dict, data_to_dict

__all__ = ["compensate", "CompensationReport", "SpaceMeans", "compensation_data", "data_to_dict", "data_from_dict"]
