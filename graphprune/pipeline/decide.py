"""Stage ``decide``: how many slots each group loses and which, by ratio or by target."""
from __future__ import annotations

from ..graph.gc_pause import gc_paused
from ..planning.planner import Planner
from .costs import decision_costs
from .options import Options
from .repair import repair_data
from .values import Decided, Scored


def decide(scored: Scored, options: Options) -> Decided:
    analyzed = scored.analyzed
    model, analysis = analyzed.prepared.model, analyzed.analysis
    plan_options = options.plan_options
    with gc_paused():  # counting makes many small objects, no cycles: see graph.gc_pause
        costs, reference = decision_costs(analyzed.prepared, analysis, options.input_shapes)
    latency = None
    if plan_options.target_latency is not None:
        from ..execution.latency import latency_probe

        latency = latency_probe(model, options.input_shapes, threads=options.latency_threads,
                                progress=options.progress,
                                strict_initializer_inputs=options.strict_initializer_inputs)
    with gc_paused():
        decision = Planner(analysis, scored.scorer, plan_options, cost_model=costs, reference=reference).decide(
            latency=latency)
    compensation = repair_data(analysis, decision.removed, scored.stats, options)
    return Decided(scored, decision, reference, compensation, how(options, decision))


def how(options: Options, decision) -> str:
    """How the decision was made, in words (``ratio 0.3``, ``target MACs 0.5: ...``)."""
    mode = "global ranking" if options.global_rank else "ratio"
    target = options.plan_options.target
    if target is None:
        return f"{mode} {options.ratio:g}" if options.global_rank else f"ratio {options.ratio:g}"
    kind, value = target
    label = {"macs": "MACs", "params": "parameters", "latency": "latency"}[kind]
    per = "of all slots" if options.global_rank else "per group"
    return f"target {label} {value:g}: {mode} t={decision.t:.4f} {per}"
