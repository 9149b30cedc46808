"""Importance criteria, selected by name."""
from __future__ import annotations

from ..errors import UsageError
from .base import Importance
from .magnitude import MagnitudeImportance, RandomImportance

IMPORTANCE_NAMES = ("l1", "l2", "random")


def make_importance(name: str, seed: int = 0, aggregate: str = "sum") -> Importance:
    if name == "l1":
        return MagnitudeImportance(1, aggregate)
    if name == "l2":
        return MagnitudeImportance(2, aggregate)
    if name == "random":
        return RandomImportance(seed)
    raise UsageError(f"unknown importance {name!r}; choose one of: {', '.join(IMPORTANCE_NAMES)}")


__all__ = ["IMPORTANCE_NAMES", "Importance", "MagnitudeImportance", "RandomImportance", "make_importance"]
