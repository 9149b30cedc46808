"""The commands as compositions of the stages.

    prune  = load ─► prepare ─► analyze ─► score ─► decide ─► apply ─► check
    plan   = load ─► prepare ─► analyze ─► score ─► decide ─► (PruningPlan)
    apply  = load ─► prepare ─► analyze ─► (PruningPlan) ─► apply ─► check
"""
from __future__ import annotations

from dataclasses import replace

from ..planning.plan_file import PruningPlan
from .analyze import analyze
from .apply import apply as apply_stage
from .check import check
from .decide import decide
from .load import load
from .options import Options
from .plan import check_repair_data, from_plan, plan_options, predicted, skipped_groups, to_plan
from .prepare import prepare
from .results import InspectResult, PlanResult, PruneResult
from .score import score


def inspect(model, options: Options) -> InspectResult:
    """Dependency groups of ``model`` (normalized, not folded): slots, members, barriers."""
    from ..profiling.counts import count_parameters

    source = load(model)
    analyzed = analyze(prepare(source, replace(options, keep_bn=True)), options)
    return InspectResult(options.label or source.label, analyzed.analysis, len(analyzed.prepared.model.graph),
                         count_parameters(source.proto))


def plan(model, options: Options):
    """Decide which slots go; returns a PlanResult whose ``plan`` is the PruningPlan to write."""
    decided = decide(score(analyze(prepare(load(model), options), options), options), options)
    return PlanResult(to_plan(decided, options), decided, options)


def prune(model, options: Options) -> PruneResult:
    """Plan and apply in one pass: the decision goes straight to surgery (no plan round trip)."""
    source = load(model)
    decided = decide(score(analyze(prepare(source, options), options), options), options)
    analyzed = decided.scored.analyzed
    pruned = apply_stage(analyzed, decided.decision.removed, options, compensation=decided.compensation)
    result = _result(pruned, analyzed, source, options, decided.decision.skipped, decided.how,
                     list(decided.decision.notes))
    result.ratio, result.predicted = decided.decision.t, predicted(decided)
    return result


def apply_plan(model, the_plan: PruningPlan, options: Options) -> PruneResult:
    """Apply a plan made for ``model`` (a plan for another model is refused, exit 3)."""
    source = load(model)
    the_plan.check_model(source.fingerprint, options.label or source.label)
    options = plan_options(the_plan, options)
    check_repair_data(the_plan, source, options)
    analyzed = analyze(prepare(source, options), options)
    removed, notes, compensation = from_plan(analyzed, the_plan)
    pruned = apply_stage(analyzed, removed, options, compensation=compensation)
    recorded = the_plan.options
    result = _result(pruned, analyzed, source, options, skipped_groups(the_plan), str(recorded.get("how", "")),
                     list(notes) + list(the_plan.notes))
    result.ratio, result.importance, result.plan = (float(recorded.get("ratio", 0.0)),
                                                    str(recorded.get("importance", "plan")), the_plan)
    return result


def _result(pruned, analyzed, source, options: Options, skipped: dict, how: str, notes: list) -> PruneResult:
    checked = check(pruned, source, options) if options.validate else None
    return PruneResult(pruned.model, pruned.analysis, pruned.removed, skipped, options.ratio, options.importance,
                       pruned.params_before, pruned.params_after, pruned.macs_before, pruned.macs_after,
                       fold=analyzed.prepared.fold, oracle=checked.oracle if checked else None,
                       drift=checked.drift if checked else None, layers=pruned.layers,
                       compensation=pruned.compensation, notes=notes, how=how, source=source, repair=pruned.repair)


def sensitivity(model, options: Options, ratios, random_samples: int):
    """Drift when each prunable group alone loses each fraction in ``ratios`` of its slots."""
    from ..execution.sensitivity import sensitivity as run_sensitivity
    from .score import calibrate_analyzed, make_scorer

    source = load(model)
    analyzed = analyze(prepare(source, options), options)
    stats = calibrate_analyzed(analyzed, options) if options.importance in _data_driven() else None
    scorer = make_scorer(analyzed, options, stats)
    if options.calib is not None:
        from ..calibration import calibration_feeds

        feeds = list(calibration_feeds(options.calib, source.proto, limit=options.calib_samples,
                                       image_options=options.image_options))
        label = str(options.calib) if not isinstance(options.calib, (dict, list)) else "arrays"
    else:
        from ..validation.feeds import make_feeds

        feeds = make_feeds(source.proto, random_samples, seed=options.seed, input_shapes=options.input_shapes)
        label = f"seeded random inputs (seed {options.seed})"
    return run_sensitivity(analyzed.prepared.model, analyzed.analysis, scorer, feeds, ratios=ratios, source=label,
                           progress=options.progress)


def _data_driven():
    from ..importance import DATA_DRIVEN

    return DATA_DRIVEN
