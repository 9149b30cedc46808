"""What ``inspect``, ``plan``, ``prune`` and ``apply`` return: the values, a summary and a dict.

``summary_lines()`` is what the CLI prints; ``to_dict()`` what ``--json`` and ``--report`` write.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import onnx
import onnx_ir as ir

from ..analysis.types import Analysis
from ..planning.plan_file import PruningPlan
from ..report.text import nouns
from .drift_summary import drift_lines


#: how inspect names the families of attention factors (``Group.kind``)
KIND_LABELS = {"heads": "heads", "query": "query heads of each key/value head", "dims": "head dims"}


# --------------------------------------------------------------------------- inspect
@dataclass
class InspectResult:
    model_name: str
    analysis: Analysis
    nodes: int
    params: int

    @property
    def groups(self):
        return self.analysis.groups

    def to_dict(self) -> dict:
        a = self.analysis
        reasons: dict[str, int] = {}
        for g in a.blocked_groups:
            for r in {b.reason for b in g.barriers}:
                reasons[r] = reasons.get(r, 0) + 1
        return {
            "model": self.model_name, "nodes": self.nodes, "parameters": self.params,
            "groups": len(a.groups), "prunable_groups": len(a.prunable_groups),
            "blocked_groups": len(a.blocked_groups),
            "prunable_slots": sum(g.n_slots for g in a.prunable_groups),
            "barrier_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
            "unknown_ops": a.unknown_nodes,
            "attention": [b.to_dict() for b in a.attention],
            "group_list": [g.to_dict() for g in a.groups],
        }

    def summary_lines(self, show_all: bool = False, limit: int = 40) -> list[str]:
        a = self.analysis
        lines = [f"{self.model_name}: {self.nodes} nodes, {self.params:,} parameters",
                 f"groups: {len(a.groups)} ({len(a.prunable_groups)} prunable, {len(a.blocked_groups)} blocked), "
                 f"{sum(g.n_slots for g in a.prunable_groups):,} prunable slots"]
        lines.append(f"{'group':>5}  {'slots':>6}  {'spaces':>6}  {'status':<9} layer: first parameter / reason")
        shown = a.groups if show_all else a.groups[:limit]
        for g in shown:
            status = "prunable" if g.prunable else ("blocked" if g.blocked else "single")
            detail = g.title + (f" [{KIND_LABELS[g.kind]}]" if g.kind else "")
            if g.blocked:
                reasons = sorted({b.reason for b in g.barriers}, key=lambda r: ("is a graph " not in r, r))
                detail += f" — {reasons[0]}"
                if len(reasons) > 1:
                    detail += f" (and {len(reasons) - 1} other reason{'s' * (len(reasons) > 2)}: --group {g.id})"
            slots = f"{g.n_slots:>6}" if g.n_slots or not g.blocked else f"{'-':>6}"
            lines.append(f"{g.id:>5}  {slots}  {len(g.spaces):>6}  {status:<9} {detail}")
        if len(shown) < len(a.groups):
            lines.append(f"  ... {len(a.groups) - len(shown)} more groups (--all to list them, --json for data)")
        lines.extend(attention_lines(a.attention))
        if a.unknown_nodes:
            lines.append(f"nodes without a rule ({len(a.unknown_nodes)}): "
                         + ", ".join(sorted(a.unknown_nodes)[:8]) + (" ..." if len(a.unknown_nodes) > 8 else ""))
        return lines


def attention_lines(blocks) -> list[str]:
    """The ``attention heads`` section of ``inspect``: per block its head group, or why it is kept."""
    if not blocks:
        return []
    lines = [f"attention heads ({len(blocks)} block{'s' * (len(blocks) != 1)}):"]
    for b in blocks:
        heads = (f"{b.query_heads} query heads over {b.kv_heads} key/value heads ({b.slots} slots: a key/value "
                 f"head with its query heads)" if b.kv_heads else f"{b.query_heads} heads ({b.slots} slots)")
        dims = f", head dim {b.head_dim}" if b.head_dim else ""
        dims += (f", head-dim group{'s' * (len(b.dims_groups) > 1)} {', '.join(map(str, b.dims_groups))}"
                 if b.dims_groups else "")
        state = f"blocked: {b.blocked}" if b.blocked else "prunable"
        lines.append(f"  {b.layer}: group {b.heads_group}, {heads}{dims} — {state}")
    return lines


# --------------------------------------------------------------------------- plan
@dataclass
class PlanResult:
    """What ``plan`` decided: ``plan`` is the :class:`PruningPlan` value (JSON with ``plan.save``)."""

    plan: PruningPlan
    decided: object  # Decided
    options: object  # Options
    #: with --max-drift: the check of the plan applied to a copy (Checked), and the search's record
    checked: object = None
    budget: object = None

    @property
    def gate(self):
        return self.checked.gate if self.checked is not None else None

    @property
    def analysis(self) -> Analysis:
        return self.decided.scored.analyzed.analysis

    @property
    def decision(self):
        return self.decided.decision

    @property
    def removed(self) -> dict:
        return self.decision.removed

    @property
    def skipped(self) -> dict:
        return self.decision.skipped

    @property
    def fold(self):
        return self.decided.scored.analyzed.prepared.fold

    @property
    def calibration(self):
        return self.decided.scored.stats

    def masks(self, source: bool = True) -> dict:
        """initializer -> {axis: kept indices}; ``source`` names the model as given (BatchNorm included)."""
        from .masks import export_masks

        prepared = self.decided.scored.analyzed.prepared
        return export_masks(prepared.source, self.analysis, self.removed,
                            folded=self.plan.fold_batchnorm and source,
                            strict_initializer_inputs=self.plan.strict_initializer_inputs)

    def summary_lines(self) -> list[str]:
        lines = self.fold.summary_lines()[:1] if self.fold is not None else []
        lines += group_lines(self.analysis, self.removed, self.skipped, self.decided.how, self.options.importance)
        pred = self.plan.predicted
        for key, label in (("params", "parameters"), ("macs", "MACs")):
            entry = pred.get(key) or {}
            if entry.get("after") is not None and entry.get("before"):
                lines.append(f"predicted {label}: {entry['before']:,} -> {entry['after']:,} "
                             f"({pct(entry['after'], entry['before'])})")
        if self.calibration is not None:
            lines.append(f"calibration: {self.calibration.describe()}, {len(self.calibration.spaces)} "
                         "activations measured")
        comp = self.plan.compensation
        if comp:
            channels = sum(len(s["positions"]) for s in comp.get("spaces", ()))
            lines.append(f"compensation: calibration means of {channels} removed channels in "
                         f"{len(comp.get('spaces', ()))} activations (applied with the plan)")
        repair = self.plan.options.get("repair")
        if repair:
            data = repair["calibration"]
            lines.append(f"repair at apply time: {', '.join(repair['methods'])} (give graphprune apply the same "
                         f"calibration data: --calib {data['source']}, {data['samples']} samples)")
        if self.checked is not None:
            lines += drift_lines(self.checked.drift, self.options.metric)
        lines += budget_lines(self)
        lines += [f"note: {n}" for n in self.decision.notes]
        return lines

    def to_dict(self) -> dict:
        return self.plan.to_dict()


#: at most this many lines name why groups were kept whole (the rest: graphprune inspect)
KEPT_WHOLE_LINES = 8


def group_buckets(analysis: Analysis, removed: dict, skipped: dict) -> dict[str, list]:
    """Every group in exactly one bucket: pruned, unchanged (prunable, but its share rounds to
    no slot or its limits keep all), excluded, single (one slot: nothing to choose), blocked."""
    buckets: dict[str, list] = {"pruned": [], "unchanged": [], "excluded": [], "single": [], "blocked": []}
    for g in analysis.groups:
        if g.blocked:
            key = "blocked"
        elif not g.prunable:
            key = "single"
        elif len(removed.get(g.id, ())):
            key = "pruned"
        else:
            key = "excluded" if g.id in skipped else "unchanged"
        buckets[key].append(g)
    return buckets


def group_lines(analysis: Analysis, removed: dict, skipped: dict, how: str, importance: str) -> list[str]:
    """What happened to the groups: every group counted once, slots removed, why groups were kept."""
    buckets = group_buckets(analysis, removed, skipped)
    words = {"pruned": "pruned", "unchanged": "unchanged (their share is less than one slot)",
             "excluded": "excluded", "single": "with a single slot", "blocked": "blocked"}
    counts = ", ".join(f"{len(v)} {words[k]}" for k, v in buckets.items() if v)
    lines = [f"groups: {len(analysis.groups)} total: {counts}"]
    total = sum(g.n_slots for g in analysis.prunable_groups)
    lines.append(f"slots removed: {sum(len(v) for v in removed.values()):,} of {total:,} prunable ({how}, "
                 f"importance {importance})")
    return lines + kept_whole_lines(buckets["blocked"])


def kept_whole_lines(blocked: list) -> list[str]:
    """One line per node (or interface tensor) that keeps groups whole, most groups first."""
    if not blocked:
        return []
    by_cause: dict[str, list] = {}
    for group in blocked:
        # the interface is the most telling reason; then the op reasons, alphabetically
        first = min(group.barriers, key=lambda b: ("is a graph " not in b.reason, b.reason))
        by_cause.setdefault(first.node or first.reason, []).append(first.reason)
    causes = sorted(by_cause.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    lines = [f"kept whole ({nouns(len(blocked), 'blocked group')}; graphprune inspect lists them):"]
    for _, reasons in causes[:KEPT_WHOLE_LINES]:
        extra = f" ({len(reasons)} groups)" if len(reasons) > 1 else ""
        lines.append(f"  {reasons[0]}{extra}")
    if len(causes) > KEPT_WHOLE_LINES:
        rest = sum(len(r) for _, r in causes[KEPT_WHOLE_LINES:])
        lines.append(f"  {len(causes) - KEPT_WHOLE_LINES} other causes keep {rest} groups")
    return lines


def pct(after, before) -> str:
    return f"{100.0 * after / before:.1f}% kept" if before else "n/a"


# --------------------------------------------------------------------------- apply / prune
@dataclass
class PruneResult:
    """What ``prune`` or ``apply`` did; ``graph`` is the pruned editable graph, ``model`` its ModelProto."""

    graph: ir.Model
    analysis: Analysis
    removed: dict
    skipped: dict
    ratio: float
    importance: str
    params_before: int | None
    params_after: int | None
    macs_before: int | None = None
    macs_after: int | None = None
    fold: object = None
    oracle: object = None
    drift: object = None
    layers: list = field(default_factory=list)
    plan: PruningPlan | None = None
    compensation: object = None
    notes: list = field(default_factory=list)
    how: str = ""
    source: object = None
    #: the decision's predicted counts (prune) or the plan's (apply)
    predicted: dict | None = None
    #: the drift metric the summary leads with (--metric), the --max-drift gate (a Gate), the budget
    #: search's record (a BudgetRecord) and where the calibration and checked samples came from
    metric: str = "cosine"
    gate: object = None
    budget: object = None
    data_split: dict | None = None
    checked: object = None
    #: every repair that ran (RepairReport; ``compensation`` is its mean/refit part)
    repair: object = None

    @cached_property
    def model(self) -> onnx.ModelProto:
        from ..graph.model import to_proto

        return to_proto(self.graph)

    @property
    def groups_pruned(self) -> int:
        return sum(1 for v in self.removed.values() if len(v))

    def summary_lines(self) -> list[str]:
        lines = self.fold.summary_lines()[:1] if self.fold is not None else []
        lines += group_lines(self.analysis, self.removed, self.skipped, self.how or f"ratio {self.ratio:g}",
                             self.importance)
        if self.params_before is not None and self.params_after is not None:
            lines.append(f"parameters: {self.params_before:,} -> {self.params_after:,} "
                         f"({pct(self.params_after, self.params_before)})")
        if self.macs_before is not None and self.macs_after is not None:
            lines.append(f"MACs:       {self.macs_before:,} -> {self.macs_after:,} "
                         f"({pct(self.macs_after, self.macs_before)})")
        if self.repair is not None:
            lines += self.repair.summary_lines()
        elif self.compensation is not None:
            lines.append(self.compensation.summary_line())
        if self.oracle is not None:
            worst = max((o.max_abs for o in self.oracle.outputs), default=0.0)
            lines.append(f"exactness: pruned model equals its oracle (max abs diff {worst:.3g}, "
                         f"{self.oracle.samples} samples)" if self.oracle.passed else
                         "exactness: FAILED (pruned model differs from its oracle)")
        if self.drift is not None:
            lines += drift_lines(self.drift, self.metric)
        checked = self.oracle if self.oracle is not None else self.drift
        if checked is not None and getattr(checked, "inputs", None) is not None:
            lines.append(checked.inputs.summary())
        lines += budget_lines(self)
        lines += [f"note: {n}" for n in self.notes]
        return lines

    def to_dict(self) -> dict:
        return {
            "ratio": self.ratio, "importance": self.importance, "how": self.how,
            "groups": {"total": len(self.analysis.groups), "pruned": self.groups_pruned,
                       "blocked": len(self.analysis.blocked_groups),
                       "excluded": {str(k): v for k, v in self.skipped.items()}},
            "removed_slots": {str(k): [int(s) for s in v] for k, v in self.removed.items()},
            "parameters": {"before": self.params_before, "after": self.params_after},
            "macs": {"before": self.macs_before, "after": self.macs_after},
            "predicted": self.plan.predicted if self.plan is not None else self.predicted,
            "compensation": self.compensation.to_dict() if self.compensation is not None else None,
            **({"repair": self.repair.to_dict()} if self.repair is not None and self.repair.samples is not None else {}),
            "fold": self.fold.to_dict() if self.fold is not None else None,
            "oracle": self.oracle.to_dict() if self.oracle is not None else None,
            "drift": self.drift.to_dict() if self.drift is not None else None,
            "gate": self.gate.to_dict() if self.gate is not None else None,
            "budget": self.budget.to_dict() if self.budget is not None else None,
            "data": self.data_split,
            "notes": list(self.notes),
            "layers": self.layers,
        }


def budget_lines(result) -> list[str]:
    """The budget search's lines, then the gate's verdict."""
    lines = result.budget.summary_lines() if getattr(result, "budget", None) is not None else []
    return lines + ([result.gate.line()] if getattr(result, "gate", None) is not None else [])
