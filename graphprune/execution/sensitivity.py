"""Sensitivity: how much the outputs drift when one group alone loses a fraction of its slots.

For every prunable group and every ratio, the group's lowest-scoring slots (by the chosen
criterion) are removed *alone* and the model's outputs are compared with the unpruned ones on
the calibration data (or seeded random inputs): the drift is by default the relative L2 error
``‖y − y₀‖ / ‖y₀‖`` over all samples, of the worst output (any metric of
:mod:`graphprune.validation.drift` may be asked for). Every (group, ratio) is one candidate of
the evaluation engine (:mod:`.candidates`) that the budget search uses too: removal is simulated
exactly as the pruning oracle does it (consumer slices zeroed), each candidate an independent
task of the executor.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..analysis.types import Analysis
from ..planning.select import select_by_ratio
from ..validation.drift import METRIC_WORDS
from ..vocabulary import DEFAULT_RATIOS  # noqa: F401 - re-exported
from .candidates import Candidate, measure, zeroing_context
from .executor import Executor, LocalExecutor

log = logging.getLogger(__name__)


@dataclass
class SensitivityResult:
    """Drift per group and ratio (``rows[i]["drift"][j]`` is group i at ``ratios[j]``)."""

    ratios: tuple
    rows: list
    samples: int
    source: str
    importance: str
    outputs: list = field(default_factory=list)
    metric: str = "rel"

    def row(self, group_id: int) -> dict:
        return next(r for r in self.rows if r["group"] == group_id)

    def to_dict(self) -> dict:
        return {"metric": f"{METRIC_WORDS[self.metric]} of the worst output", "ratios": list(self.ratios),
                "importance": self.importance, "samples": self.samples, "data": self.source,
                "outputs": list(self.outputs), "groups": list(self.rows)}

    def summary_lines(self) -> list[str]:
        head = f"{'group':>5}  {'slots':>5}  " + "  ".join(f"{'@' + format(r, 'g'):>8}" for r in self.ratios)
        lines = [f"sensitivity ({self.importance}, {self.samples} samples of {self.source}): "
                 f"{METRIC_WORDS[self.metric]} of the outputs when one group alone is pruned",
                 head + "  layer: first parameter"]
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


def sensitivity(model, analysis: Analysis, scorer, feeds: list[dict], *, ratios=DEFAULT_RATIOS,
                source: str = "random inputs", progress: bool = False, metric: str = "rel",
                executor: Executor | None = None, strict_initializer_inputs: bool = False) -> SensitivityResult:
    """Drift of ``model`` (the analysed, prepared editable graph) per prunable group and ratio."""
    groups = analysis.prunable_groups
    removed = []
    for group in groups:
        scores = scorer.score(group, analysis.index)
        removed.append([select_by_ratio(group, scores, ratio) for ratio in ratios])
    tasks = [Candidate.of({g.id: slots}) for g, row in zip(groups, removed) for slots in row if slots.size]
    context = zeroing_context(model, analysis, feeds, strict_initializer_inputs=strict_initializer_inputs)
    own = executor is None
    executor = LocalExecutor(1) if own else executor
    try:
        drifts = iter(measure(executor, context, tasks, progress="sensitivity" if progress else None))
    finally:
        if own:
            executor.close()
    rows = []
    for group, row in zip(groups, removed):
        drift = [next(drifts).require(metric) if slots.size else 0.0 for slots in row]
        rows.append({"group": group.id, "layer": group.layer, "first": str(group.representative),
                     "slots": group.n_slots, "removed": [int(s.size) for s in row],
                     "drift": [round(float(d), 6) for d in drift]})
    return SensitivityResult(tuple(float(r) for r in ratios), rows, len(feeds), source, scorer.name,
                             [o.name for o in model.graph.outputs], metric)
