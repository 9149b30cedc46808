"""The plain values the pipeline's stages hand to each other.

``load ─► prepare ─► analyze ─► score ─► decide ─► apply ─► check ─► save``: each stage takes
the values before it and returns a new one; none of them reaches back into another stage.
A :class:`Source` is never modified: stages edit an editable graph whose untouched weights are
the source's own bytes (onnx-ir wraps them without copying), so "prune in place" and "keep the
original for the checks" are the same thing and cost no copy of the weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import onnx
import onnx_ir as ir

from ..analysis.types import Analysis
from ..io.read import ModelFile
from ..planning.cost import Cost
from ..planning.planner import Decision


@dataclass(frozen=True)
class Source:
    """The model as given (never modified), its name and where it came from."""

    proto: onnx.ModelProto
    label: str
    path: Path | None = None
    #: the file at ``path`` when it holds exactly ``proto`` (:func:`graphprune.io.read_model`): the
    #: original's session is made from it
    file: ModelFile | None = None

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the graph and its initializer values (how plans recognise their model)."""
        from ..planning.plan_file import model_fingerprint

        return model_fingerprint(self.proto)

    def editable(self) -> ir.Model:
        """A new editable graph of the model (its weights are this source's bytes, not a copy)."""
        from ..graph.model import from_proto

        return from_proto(self.proto)


@dataclass(frozen=True)
class Prepared:
    """The normalized (and, unless kept, BatchNorm-folded) editable graph."""

    source: Source
    model: ir.Model
    fold: object = None  # FoldResult
    #: no pass modified the graph: it is the source's graph as given (counted once, see pipeline.costs)
    unchanged: bool = False
    #: the weight-less ModelProto and tensor shapes of ``model`` when prepare made them (to look for
    #: folds) and left the graph unchanged: the analysis reads them instead of inferring again
    skeleton: onnx.ModelProto | None = None
    shapes: dict | None = None


@dataclass(frozen=True)
class Analyzed:
    """The dependency groups of a prepared model."""

    prepared: Prepared
    analysis: Analysis


@dataclass(frozen=True)
class Scored:
    """How every slot scores, and the calibration statistics the scores (and repairs) used."""

    analyzed: Analyzed
    scorer: object
    stats: object = None  # CalibrationStats


@dataclass(frozen=True)
class Decided:
    """Which slots go, with what the decision predicts and the repair data it carries."""

    scored: Scored
    decision: Decision
    #: parameters and MACs of the model as given (what the targets are fractions of)
    reference: Cost | None = None
    #: compensation data (SpaceMeans) of the removed channels, when repair is on
    compensation: tuple | None = None
    how: str = ""


@dataclass(frozen=True)
class Pruned:
    """The pruned editable graph, what changed, and what the checks need."""

    model: ir.Model
    analysis: Analysis
    removed: dict
    changed: dict
    params_before: int | None
    params_after: int | None
    macs_before: int | None = None
    macs_after: int | None = None
    compensation: object = None  # CompensationReport
    #: the prepared model with every removed slot's consumer slices zeroed (ModelProto), when checked
    oracle_reference: object = None
    notes: tuple = ()
    layers: list = field(default_factory=list)
    repair: object = None  # RepairReport (every repair that ran, compensation included)


@dataclass(frozen=True)
class Gate:
    """``--max-drift``: the drift of the written model on held-out data against the limit."""

    metric: str
    limit: float
    drift: float
    samples: int
    data: str

    @property
    def passed(self) -> bool:
        return self.drift <= self.limit

    def line(self) -> str:
        """``drift budget: met: cosine drift 0.0081 <= --max-drift 0.01 on 16 held-out samples of ...``."""
        where = f"on {self.samples} {self.data}"
        if self.passed:
            return f"drift budget: met: {self.metric} drift {self.drift:.4g} <= --max-drift {self.limit:g} {where}"
        return (f"drift budget: MISSED by {self.drift - self.limit:.4g} ({self.drift / self.limit:.3g}x the limit): "
                f"{self.metric} drift {self.drift:.4g} > --max-drift {self.limit:g} {where}")

    def to_dict(self) -> dict:
        return {"metric": self.metric, "max_drift": self.limit, "drift": self.drift, "passed": self.passed,
                "missed_by": max(self.drift - self.limit, 0.0), "samples": self.samples, "data": self.data}


@dataclass(frozen=True)
class Checked:
    """The checks of a pruned model: against its oracle (exact), the original (drift), and the budget."""

    oracle: object  # ValidationReport
    drift: object   # ValidationReport
    gate: Gate | None = None
