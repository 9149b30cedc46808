"""Sensitivity: how much the outputs drift when one group alone loses a fraction of its slots.

For every prunable group and every ratio, the group's lowest-scoring slots (by the chosen
criterion) are removed *alone* and the model's outputs are compared with the unpruned ones on
the calibration data (or seeded random inputs): the drift is the relative L2 error
``‖y − y₀‖ / ‖y₀‖`` over all samples, of the worst output. Removal is simulated exactly as the
pruning oracle does it: the group's consumer slices are zeroed. Those weights are fed to one
onnxruntime session as overridable initializers, so no model is rebuilt per variant (groups
whose channels meet an activation-by-activation contraction get their own masked model).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..analysis.types import Analysis
from ..oracle import zero_removed
from ..progress import progress as progress_iter
from ..rules.base import CONSUMER
from ..validation.runner import make_session
from ..planning.select import select_by_ratio

log = logging.getLogger(__name__)

from ..vocabulary import DEFAULT_RATIOS  # noqa: F401 - re-exported


@dataclass
class SensitivityResult:
    """Drift per group and ratio (``rows[i]["drift"][j]`` is group i at ``ratios[j]``)."""

    ratios: tuple
    rows: list
    samples: int
    source: str
    importance: str
    outputs: list = field(default_factory=list)

    def row(self, group_id: int) -> dict:
        return next(r for r in self.rows if r["group"] == group_id)

    def to_dict(self) -> dict:
        return {"metric": "relative L2 error of the worst output", "ratios": list(self.ratios),
                "importance": self.importance, "samples": self.samples, "data": self.source,
                "outputs": list(self.outputs), "groups": list(self.rows)}

    def summary_lines(self) -> list[str]:
        head = f"{'group':>5}  {'slots':>5}  " + "  ".join(f"{'@' + format(r, 'g'):>8}" for r in self.ratios)
        lines = [f"sensitivity ({self.importance}, {self.samples} samples of {self.source}): relative L2 output "
                 "error when one group alone is pruned", head + "  layer: first parameter"]
        for r in self.rows:
            drift = "  ".join(f"{d:>8.4f}" for d in r["drift"])
            where = f"{r['layer']}: {r['first']}" if r.get("layer") else r["first"]
            lines.append(f"{r['group']:>5}  {r['slots']:>5}  {drift}  {where}")
        if self.rows:
            last = [r["drift"][-1] for r in self.rows]
            order = np.argsort(last)
            lines.append(f"most sensitive at {self.ratios[-1]:g}: group {self.rows[int(order[-1])]['group']}; least: "
                         f"group {self.rows[int(order[0])]['group']}")
        return lines


def _consumer_params(group) -> list:
    return [p for p in group.params if CONSUMER in p.roles]


def _overridable(model: onnx.ModelProto, names: set[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose initializers ``names`` are also graph inputs (fed per variant)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    declared = {i.name for i in out.graph.input}
    for init in out.graph.initializer:
        if init.name in names and init.name not in declared:
            out.graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    if out.ir_version < 4:
        out.ir_version = 4
    return out


class _Runner:
    """Runs feeds through the model with some consumer initializers replaced."""

    def __init__(self, graph, analysis: Analysis, feeds: list[dict]):
        from ..graph.model import to_proto

        self.analysis = analysis
        self.feeds = feeds
        self.names = {p.initializer for g in analysis.prunable_groups for p in _consumer_params(g)}
        self.graph = graph
        model = self.model = to_proto(graph)
        self.session = make_session(_overridable(model, self.names), exact=True, label="sensitivity model")
        self.outputs = [o.name for o in model.graph.output]
        self.reference = self.run(self.session, {})

    def run(self, session, weights: dict) -> list[list[np.ndarray]]:
        """Outputs for every feed; ``weights`` override initializers (the others keep their values)."""
        inputs = {i.name for i in session.get_inputs()}
        out = []
        for feed in self.feeds:
            values = session.run(self.outputs, {**{k: v for k, v in feed.items() if k in inputs}, **weights})
            out.append([np.asarray(v, dtype=np.float64) for v in values])
        return out

    def drift(self, group, slots: np.ndarray) -> float:
        if group.contractions:
            masked = zero_removed(self.graph, self.analysis, {group.id: slots})
            values = self.run(make_session(masked, exact=True, label="sensitivity model"), {})
        else:
            weights = {}
            for p in _consumer_params(group):
                arr = np.array(weights.get(p.initializer, self.analysis.index.array(p.initializer)), copy=True)
                where = [slice(None)] * arr.ndim
                where[p.axis] = group.removed_positions(p.space, slots)
                arr[tuple(where)] = 0
                weights[p.initializer] = arr
            values = self.run(self.session, weights)
        return _relative_error(self.reference, values)


def _relative_error(reference, values) -> float:
    worst = 0.0
    for k in range(len(reference[0]) if reference else 0):
        num = sum(float(np.sum((v[k] - r[k]) ** 2)) for r, v in zip(reference, values))
        den = sum(float(np.sum(r[k] ** 2)) for r in reference)
        worst = max(worst, float(np.sqrt(num / den)) if den > 0 else float(np.sqrt(num)))
    return worst


def sensitivity(model, analysis: Analysis, scorer, feeds: list[dict], *,
                ratios=DEFAULT_RATIOS, source: str = "random inputs", progress: bool = False) -> SensitivityResult:
    """Drift of ``model`` (the analysed, prepared editable graph) per prunable group and ratio."""
    runner = _Runner(model, analysis, feeds)
    rows = []
    groups = analysis.prunable_groups
    for group in progress_iter(groups, total=len(groups), desc="sensitivity", enabled=progress, unit="group"):
        scores = scorer.score(group, analysis.index)
        drift, removed = [], []
        for ratio in ratios:
            slots = select_by_ratio(group, scores, ratio)
            removed.append(int(slots.size))
            drift.append(runner.drift(group, slots) if slots.size else 0.0)
        rows.append({"group": group.id, "layer": group.layer, "first": str(group.representative),
                     "slots": group.n_slots,
                     "removed": removed, "drift": [round(d, 6) for d in drift]})
    return SensitivityResult(tuple(float(r) for r in ratios), rows, len(feeds), source, scorer.name,
                             runner.outputs)
