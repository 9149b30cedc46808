"""Importance criteria, selected by name.

=============  ===========================================================  ==========
name           score of a slot (higher = kept longer)                        needs data
=============  ===========================================================  ==========
l1, l2         magnitude of every parameter slice of the slot (sum/mean/max)  no
bn-scale       |γ| of its BatchNormalization scales (scored before folding)   no
fpgm           distance of its producer filters to their geometric median     no
random         seeded uniform noise (the baseline)                            no
activation     mean |x| of its channels where consumers read them              yes
fluctuation    Var(x) · ‖consumer weights‖² (error if replaced by its mean)    yes
energy         E[x²] · ‖consumer weights‖² (error if dropped)                  yes
reconstruction output error left by the least-squares re-fit of the rest,      yes
               greedy (Optimal Brain Surgeon), per parameter
=============  ===========================================================  ==========
"""
from __future__ import annotations

from ..errors import UsageError
from .base import Importance
from .calibrated import ActivationImportance, EnergyImportance, FluctuationImportance
from .magnitude import AGGREGATES, MagnitudeImportance, RandomImportance
from .reconstruction import ReconstructionImportance
from .structure import BNScaleImportance, FPGMImportance, geometric_median
from .transfer import TransferredImportance, position_scores

from ..vocabulary import DATA_DRIVEN, IMPORTANCE_NAMES  # noqa: F401 - re-exported


def check_importance(name: str) -> str:
    if name not in IMPORTANCE_NAMES:
        raise UsageError(f"unknown importance {name!r}; choose one of: {', '.join(IMPORTANCE_NAMES)}")
    return name


def make_importance(name: str, seed: int = 0, aggregate: str = "sum", stats=None) -> Importance:
    """The scorer called ``name``; data-driven ones need ``stats`` (calibration statistics)."""
    check_importance(name)
    if aggregate not in AGGREGATES:
        raise UsageError(f"unknown aggregation {aggregate!r}; choose one of: {', '.join(AGGREGATES)}")
    if name in ("l1", "l2"):
        return MagnitudeImportance(int(name[1]), aggregate)
    if name == "random":
        return RandomImportance(seed)
    if name == "bn-scale":
        return BNScaleImportance(aggregate)
    if name == "fpgm":
        return FPGMImportance(aggregate)
    if name == "activation":
        return ActivationImportance(stats)
    if name == "energy":
        return EnergyImportance(stats)
    if name == "reconstruction":
        return ReconstructionImportance(stats)
    return FluctuationImportance(stats)


__all__ = ["IMPORTANCE_NAMES", "DATA_DRIVEN", "AGGREGATES", "Importance", "MagnitudeImportance",
           "RandomImportance", "BNScaleImportance", "FPGMImportance", "ActivationImportance",
           "FluctuationImportance", "EnergyImportance", "ReconstructionImportance", "TransferredImportance", "position_scores", "geometric_median",
           "make_importance", "check_importance"]
