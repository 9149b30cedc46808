"""A decision as a :class:`PruningPlan` (to write with ``plan``) and back (to ``apply`` one).

Only these two directions meet plan files: ``prune`` hands its decision straight to ``apply``.
"""
from __future__ import annotations

from ..compensation import data_from_dict, data_to_dict
from ..planning.plan_file import PruningPlan, group_entries, removed_from_kept
from .options import Options
from .values import Analyzed, Decided


def predicted(decided: Decided) -> dict:
    """The searched fraction and the predicted parameters and MACs before/after."""
    decision = decided.decision
    out = {"t": decision.t}
    if decided.reference is not None and decision.predicted is not None:
        out.update(params={"before": decided.reference.params, "after": decision.predicted.params},
                   macs={"before": decided.reference.macs, "after": decision.predicted.macs})
    return out


def to_plan(decided: Decided, options: Options) -> PruningPlan:
    analyzed = decided.scored.analyzed
    source, analysis, decision = analyzed.prepared.source, analyzed.analysis, decided.decision
    stats = decided.scored.stats
    extra = {"calibration": {"source": stats.source, "samples": stats.samples}} if stats is not None else {}
    recorded = {**options.plan_options.to_dict(), "how": decided.how, "compensate": options.compensate,
                "refit": bool(options.refit), **extra, **({"search": decision.search} if decision.search else {})}
    comp = data_to_dict(list(decided.compensation)) if decided.compensation else None
    return PruningPlan(source.fingerprint, options.label or source.label, not options.keep_bn,
                       group_entries(analysis, decision.removed, decision.skipped), recorded, predicted(decided), comp,
                       tuple(decision.notes), options.strict_initializer_inputs)


def plan_options(plan: PruningPlan, options: Options) -> Options:
    """``options`` with what the plan fixes (how the model is prepared)."""
    from dataclasses import replace

    return replace(options, keep_bn=not plan.fold_batchnorm, strict_initializer_inputs=plan.strict_initializer_inputs,
                   compensate=False, refit=False, calib=None, tokenizer=None)


def from_plan(analyzed: Analyzed, plan: PruningPlan) -> tuple[dict, list[str], tuple]:
    """(removed slots, notes on expanded edits, compensation data) of ``plan`` on ``analyzed``."""
    removed, notes = removed_from_kept(analyzed.analysis, plan.kept(), plan.sizes())
    return removed, notes, tuple(data_from_dict(plan.compensation))


def skipped_groups(plan: PruningPlan) -> dict:
    return {int(g["id"]): g.get("reason", "excluded") for g in plan.groups if g.get("status") == "excluded"}
