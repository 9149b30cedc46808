"""What a budget search did, as data: curves, measured prefixes, held-out checks, and the result.

:class:`BudgetRecord` is filled as the search runs (pure values, no model) and is what the
summary, the report and the JSON show: the achieved drift, every evaluation, and the savings
per group.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..report.text import nouns, si
from .budget import Curve

#: groups named in the summary's savings line (the report lists every group)
SUMMARY_GROUPS = 5
#: objective -> words
OBJECTIVE_WORDS = {"macs": "MACs", "params": "parameters", "latency": "predicted latency (ms)"}


@dataclass
class BudgetRecord:
    """The search's steps and outcome (see module docstring)."""

    metric: str
    limit: float
    objective: str
    margin: float
    #: how many samples each kind of evaluation used, and where the final check's come from
    samples: dict = field(default_factory=dict)
    curves: list = field(default_factory=list)
    #: every measured prefix: round, moves, groups, drift (calibration), predicted saving, fits
    probes: list = field(default_factory=list)
    #: every check on held-out samples: groups, drift, passed, the group rolled back after it
    checks: list = field(default_factory=list)
    #: group id -> slots removed, as decided (after rollbacks)
    counts: dict = field(default_factory=dict)
    evaluations: dict = field(default_factory=lambda: {"sensitivity": 0, "search": 0, "final check": 0})
    #: the objective saved by the whole plan (predicted) and by the model before pruning
    saved: float | None = None
    total: float | None = None

    @property
    def achieved(self) -> float | None:
        """The drift of the last held-out check (the written model's)."""
        return self.checks[-1]["drift"] if self.checks else None

    def curve(self, group: int) -> Curve | None:
        return next((c for c in self.curves if c.group == group), None)

    def group_rows(self) -> list[dict]:
        """Every pruned group: slots removed, its solo drift there and what it saves alone, largest saving first."""
        rows = []
        for gid, count in self.counts.items():
            curve = self.curve(gid)
            point = curve.point(count) if curve is not None else None
            rows.append({"group": gid, "layer": curve.title if curve else str(gid),
                         "slots": curve.slots if curve else None, "removed": count,
                         "solo_drift": point.drift if point else None, "saving": point.saving if point else None})
        return sorted(rows, key=lambda r: (-(r["saving"] or 0.0), r["group"]))

    def summary_lines(self) -> list[str]:
        what = OBJECTIVE_WORDS[self.objective]
        ev = self.evaluations
        lines = [f"budget: {self.metric} drift <= {self.limit:g} on held-out data; the search removes the most "
                 f"{what} it can",
                 f"  sensitivity: {nouns(len(self.curves), 'group')}, {ev['sensitivity']} evaluations on "
                 f"{self.samples.get('curves', '?')} calibration samples (each group alone, k/8 of its slots)",
                 f"  search: {ev['search']} combined candidates on {self.samples.get('search', '?')} calibration "
                 f"samples, aiming at drift <= {self.limit * (1 - self.margin):.4g}; "
                 f"{nouns(len(self.counts), 'group')} pruned"]
        for check in self.checks:
            verdict = "passed" if check["passed"] else "missed"
            extra = f"; rolled back {check['rolled_back']}" if check.get("rolled_back") else ""
            lines.append(f"  final check: drift {check['drift']:.4g} on {check['samples']} samples: {verdict}{extra}")
        if self.saved is not None and self.total:
            lines.append(f"  predicted {what} saved: {si(self.saved)} of {si(self.total)} "
                         f"({100.0 * self.saved / self.total:.1f}%)")
        rows = self.group_rows()
        if rows:
            named = "; ".join(f"{r['layer']} -{r['removed']}/{r['slots']} ({si(r['saving'])})"
                              for r in rows[:SUMMARY_GROUPS])
            more = f" (+{len(rows) - SUMMARY_GROUPS} groups; --report lists them)" if len(rows) > SUMMARY_GROUPS else ""
            lines.append(f"  largest savings: {named}{more}")
        return lines

    def to_dict(self) -> dict:
        return {"metric": self.metric, "max_drift": self.limit, "objective": self.objective, "margin": self.margin,
                "achieved": self.achieved, "samples": dict(self.samples), "evaluations": dict(self.evaluations),
                "saved": self.saved, "total": self.total, "groups": self.group_rows(),
                "probes": list(self.probes), "checks": list(self.checks),
                "curves": [c.to_dict() for c in self.curves]}
