"""The pruning pipeline as plain functions over ModelProtos (the CLI and api build on these).

load ─► normalize ─► (fold) ─► analyze ─► score ─► plan ─► apply ─► cleanup
"""
from __future__ import annotations

import logging
import os

import numpy as np
import onnx

from .analysis.builder import analyze
from .analysis.types import Analysis
from .errors import UsageError
from .graph import GraphIndex
from .io import load_model
from .passes.normalize import normalize
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


def decide(analysis: Analysis, *, ratio: float, importance: str = "l2", exclude: tuple = (), seed: int = 0):
    """The same ratio in every prunable group with a weight-only criterion (the planner of
    :func:`graphprune.api.plan` with default options; returns its ``Decision``)."""
    from .planning.options import PlanOptions
    from .planning.pipeline import make_scorer
    from .planning.planner import Planner

    check_ratio(ratio)
    options = PlanOptions(ratio=ratio, importance=importance, exclude=tuple(exclude), seed=seed)
    return Planner(analysis, make_scorer(options, analysis), options).decide()


def apply_decision(model: onnx.ModelProto, analysis: Analysis, decision) -> dict:
    """Prune ``model`` (the analysed object) in place."""
    return apply_removal(model, analysis, decision.removed)
