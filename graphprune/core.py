"""The pruning pipeline as plain functions over ModelProtos (the CLI and api build on these).

load ─► normalize ─► (fold) ─► analyze ─► score ─► plan ─► apply ─► cleanup
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np
import onnx

from .analysis.builder import analyze
from .analysis.types import Analysis
from .errors import UsageError
from .graph import GraphIndex
from .importance import make_importance
from .io import load_model
from .passes.normalize import normalize
from .planning.select import local_plan
from .surgery.apply import apply_removal

log = logging.getLogger(__name__)


def as_model(model: onnx.ModelProto | str | os.PathLike) -> onnx.ModelProto:
    """A private copy of ``model`` (a path is loaded; a ModelProto is copied, never mutated)."""
    if isinstance(model, onnx.ModelProto):
        out = onnx.ModelProto()
        out.CopyFrom(model)
        return out
    return load_model(model)


def prepare(model: onnx.ModelProto) -> onnx.ModelProto:
    """Normalize in place (unique node names, constants lifted) and return it."""
    normalize(model)
    return model


def analyze_model(model: onnx.ModelProto) -> Analysis:
    """Analysis of an already-normalized model."""
    return analyze(GraphIndex(model))


def count_params(model: onnx.ModelProto) -> int:
    """Number of floating-point parameter elements (initializers of float types)."""
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
    total = 0
    for t in model.graph.initializer:
        if t.data_type in floats:
            total += int(np.prod(t.dims, dtype=np.int64)) if len(t.dims) else 1
    return total


def check_ratio(ratio: float) -> float:
    if not (0.0 <= ratio < 1.0) or ratio != ratio:
        raise UsageError(f"--ratio must be in [0, 1): got {ratio}")
    return float(ratio)


@dataclass
class Decision:
    """Which slots go, and why groups were left alone."""

    removed: dict
    skipped: dict = field(default_factory=dict)


def decide(analysis: Analysis, *, ratio: float, importance: str = "l2", exclude: tuple = (),
           seed: int = 0) -> Decision:
    check_ratio(ratio)
    scorer = make_importance(importance, seed=seed)
    removed, skipped = local_plan(analysis, scorer, ratio, tuple(exclude))
    return Decision(removed, skipped)


def apply_decision(model: onnx.ModelProto, analysis: Analysis, decision: Decision) -> dict:
    """Prune ``model`` (the analysed object) in place."""
    return apply_removal(model, analysis, decision.removed)
