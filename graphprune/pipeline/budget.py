"""Stage ``budget``: how many slots each group loses so that the most of the objective goes
while the drift stays within ``--max-drift`` (``decide``'s counterpart for a drift budget).

    Scored ─► budget(scored, options, engine) ─► Budgeted (a Decided and the search's record)

1. **Sensitivity curves**: every searchable group alone loses k/8 of its slots (its
   lowest-scoring ones, as ``decide`` would choose them), measured by zeroed slices on the first
   :data:`CURVE_SAMPLES` calibration samples, one step for every group per round (independent
   tasks); a group stops after its first step beyond the ceiling (the budget less the margin;
   :data:`REPAIR_CEILING` times the budget when the prune repairs, since these solo steps are
   measured without repair and repair lowers them).
2. **Savings** per step: MACs or parameters from the cost model, or latency predicted from
   per-node onnxruntime timings (each touched node's time times the fraction of its work removed).
3. **Search** (:mod:`graphprune.planning.budget`): moves ordered by savings per drift; the
   longest prefix whose combined drift, measured as it would be written (pruned and repaired),
   stays within ``max_drift · (1 − margin)`` on up to :data:`SEARCH_SAMPLES` calibration samples.

The final check on held-out samples, and :func:`roll_back` while it misses, are the composition's
(:mod:`.compose`): that check is the ``check`` stage on the model ``apply`` writes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from ..errors import UsageError, ValidationFailed
from ..planning import budget as plan_budget
from ..planning.budget import (SEARCH_MARGIN, STEPS, Curve, Point, PrefixSearch, counts_of, energy, most_sensitive,
                               order_moves, step_counts)
from ..planning.budget_record import BudgetRecord
from ..planning.planner import Planner
from .costs import cost_model, safe_cost
from .options import Options
from .repair import repair_data, repairs
from .values import Decided, Scored

log = logging.getLogger(__name__)

#: calibration samples of every solo step of the sensitivity curves
CURVE_SAMPLES = 8
#: calibration samples of every combined candidate of the search (kept in memory)
SEARCH_SAMPLES = 32
#: when the prune repairs, solo steps (measured without repair) are considered up to this multiple of
#: the budget. On yolox-nano at cosine 0.01 the steps chosen drift alone by at most 0.31 of the budget
#: (repair halves the combined drift), while a ceiling of 4 measured 43 % more steps than 1 for nothing
REPAIR_CEILING = 1.0


@dataclass(frozen=True)
class Budgeted:
    """The decision of a budget search, with its record and what a rollback needs."""

    decided: Decided
    record: BudgetRecord
    moves: tuple
    planner: Planner
    #: group id -> slots of the groups with a ratio of their own (config overrides): always applied
    fixed: dict
    #: removed slots -> objective saved (predicted)
    saving: object


def curve_metric(metric: str) -> str:
    """The metric of the solo curves: top-1 agreement is too coarse on a few samples; cosine stands in."""
    return "cosine" if metric == "top1" else metric


def budget(scored: Scored, options: Options, engine) -> Budgeted:
    analyzed = scored.analyzed
    costs = cost_model(analyzed.prepared.model, analyzed.analysis, options.input_shapes)
    reference = safe_cost(analyzed.prepared.source.proto, options.input_shapes) if costs is not None else None
    planner = Planner(analyzed.analysis, scored.scorer, options.plan_options, cost_model=costs, reference=reference)
    fixed = {g: c for g, c in planner.counts_at(0.0).items() if c}
    objective = options.objective or "macs"
    saving, total = objective_saving(objective, costs, analyzed, engine)
    record = BudgetRecord(options.metric, float(options.max_drift), objective, SEARCH_MARGIN,
                          samples={"curves": engine.curve_samples, "search": engine.feeds}, total=total)
    record.curves = measure_curves(planner, engine, saving, ceiling(options, scored.stats), options.metric, record)
    moves = tuple(order_moves(record.curves, curve_metric(options.metric), ceiling(options, scored.stats)))
    length = search_prefix(moves, planner, fixed, engine, options, record)
    counts = counts_of(moves, length)
    if not counts:
        raise nothing_fits(record, options)
    decided = decided_for(scored, planner, {**fixed, **counts}, options, record)
    record.counts, record.saved = dict(counts), saving(decided.decision.removed)
    return Budgeted(decided, record, moves, planner, fixed, saving)


def ceiling(options: Options, stats) -> float:
    """The largest solo drift a step may have to be considered (inf: top-1's curves are a stand-in)."""
    if options.metric == "top1":
        return float("inf")
    limit = float(options.max_drift)
    return limit * REPAIR_CEILING if repairs(options, stats) else limit * (1.0 - SEARCH_MARGIN)


def objective_saving(objective: str, costs, analyzed, engine):
    """(removed -> objective saved, the objective of the unpruned model)."""
    if costs is None:
        raise UsageError(f"--objective {objective} needs every tensor's shape, which is unknown for this model: "
                         "fix the dynamic dimensions with --input-shape NAME:DIMS")
    if objective in ("macs", "params"):
        base = getattr(costs.base, objective)
        return (lambda removed: float(base - getattr(costs.evaluate(removed), objective))), float(base)
    from ..execution.latency import node_times
    from ..graph.model import to_proto

    times = node_times(to_proto(analyzed.prepared.model), engine.first_feed)

    def saving(removed) -> float:
        return float(sum(times.get(node, 0.0) * (1.0 - kept) for node, kept in costs.kept_work(removed).items()))

    return saving, float(sum(times.values()))


def measure_curves(planner: Planner, engine, saving, limit: float, metric: str, record: BudgetRecord) -> list[Curve]:
    """Every searchable group's solo steps, a round per step, until a step drifts beyond ``limit``."""
    steps = {gid: step_counts(planner.states[gid].group.n_slots, planner.states[gid].limits) for gid in planner.pool}
    points: dict[int, list[Point]] = {gid: [] for gid in steps}
    alive = [gid for gid in steps if steps[gid]]
    for r in range(STEPS - 1):
        batch = [(gid, steps[gid][r]) for gid in alive if r < len(steps[gid])]
        if not batch:
            break
        removed = [planner.removed_for({gid: count}) for gid, count in batch]
        drifts = engine.solo(removed, label=f"sensitivity {r + 1}/{STEPS - 1}")
        record.evaluations["sensitivity"] += len(batch)
        for (gid, count), rem, drift in zip(batch, removed, drifts):
            points[gid].append(Point(count, float(drift.require(curve_metric(metric))), saving(rem)))
        alive = [gid for gid, _ in batch if points[gid][-1].drift <= limit]
    return [Curve(gid, planner.states[gid].group.title, planner.states[gid].group.n_slots, tuple(points[gid]))
            for gid in steps]


def search_prefix(moves, planner: Planner, fixed: dict, engine, options: Options, record: BudgetRecord) -> int:
    """The longest prefix of ``moves`` whose combined drift fits (see :class:`PrefixSearch`)."""
    metric = options.metric
    allowed = float(options.max_drift) * (1.0 - SEARCH_MARGIN)
    search = PrefixSearch(moves, energy(allowed, metric))
    rounds = 0
    while not search.done:
        rounds += 1
        lengths = search.probes()
        plans = [{**fixed, **counts_of(moves, n)} for n in lengths]
        drifts = engine.combined([planner.removed_for(c) for c in plans], label=f"search round {rounds}")
        record.evaluations["search"] += len(lengths)
        values = [float(d.require(metric)) for d in drifts]
        search.update({n: energy(v, metric) for n, v in zip(lengths, values)})
        for n, plan, value in zip(lengths, plans, values):
            record.probes.append({"round": rounds, "moves": n, "groups": len(plan), "drift": value,
                                  "fits": value <= allowed})
    return search.lo


def decided_for(scored: Scored, planner: Planner, counts: dict, options: Options, record: BudgetRecord) -> Decided:
    """The Decided of ``counts`` (group id -> slots removed), with its repair data."""
    decision = planner.decision(counts, 0.0, search=list(record.probes))
    compensation = repair_data(scored.analyzed.analysis, decision.removed, scored.stats, options)
    how = f"budget search: {options.metric} drift <= {float(options.max_drift):g}, most {record.objective}"
    return Decided(scored, decision, planner.reference, compensation, how)


def roll_back(budgeted: Budgeted, options: Options) -> Budgeted | None:
    """The plan with the group whose step drifts most alone moved back one step (None: nothing left)."""
    record = budgeted.record
    if not record.counts:
        return None
    counts, worst = plan_budget.roll_back(record.counts, budgeted.moves, record.curves)
    if record.checks:
        record.checks[-1]["rolled_back"] = record.curve(worst).title
    record.counts = dict(counts)
    if not counts:
        return None
    decided = decided_for(budgeted.decided.scored, budgeted.planner, {**budgeted.fixed, **counts}, options, record)
    record.saved = budgeted.saving(decided.decision.removed)
    return Budgeted(decided, record, budgeted.moves, budgeted.planner, budgeted.fixed, budgeted.saving)


def nothing_fits(record: BudgetRecord, options: Options) -> ValidationFailed:
    """The error when no step of any group fits the budget: names the most sensitive groups."""
    metric, limit = options.metric, float(options.max_drift)
    firsts = [c for c in record.curves if c.points]
    if not firsts:
        return ValidationFailed(f"--max-drift {limit:g}: no group can be pruned (no prunable group has a step "
                                "under its limits); nothing was written")
    least = min(firsts, key=lambda c: (c.points[0].drift, c.group))
    worst = ", ".join(f"{c.title} ({c.points[0].drift:.3g})" for c in most_sensitive(firsts))
    tried = min(record.probes, key=lambda p: p["moves"]) if record.probes else None
    smallest = (f"; the smallest plan tried ({tried['groups']} group(s)) drifts by {tried['drift']:.3g}"
                if tried else "")
    return ValidationFailed(
        f"no pruning meets --max-drift {limit:g} ({metric}) on the calibration samples (the search aims at "
        f"{limit * (1 - SEARCH_MARGIN):.3g}): the least sensitive group, {least.title}, drifts by "
        f"{least.points[0].drift:.3g} when it alone loses {least.points[0].count} of {least.slots} slots"
        f"{smallest}; most sensitive: {worst}; nothing was written (raise --max-drift, or give more data)")
