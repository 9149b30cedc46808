"""Stage ``apply``: repair, then remove the decided slots from the graph.

Every repair (``options.repair``: mean compensation, re-fit, sequential reconstruction,
statistics correction; see :mod:`graphprune.compensation.repair`) edits the kept weights and biases
of the unpruned graph, so the graph is pruned once, by surgery, afterwards. The pruned model is
checked by the ONNX checker before it is handed on; when the result will be checked against its
oracle, the oracle's reference (the repaired graph with every removed slot's consumer slices
zeroed) is made here, before surgery.

Candidate evaluations (a budget search) call this stage too, so every candidate gets the same
repair as the model finally written.
"""
from __future__ import annotations

from ..errors import GraphPruneError, PruningError
from ..graph.gc_pause import gc_paused
from ..oracle import zeroed
from ..surgery.apply import apply_removal
from ..vocabulary import DATA_REPAIRS
from .costs import safe_cost
from .options import Options
from .values import Analyzed, Pruned


def apply(analyzed: Analyzed, removed: dict, options: Options, *, compensation=None, notes=(), feeds=None,
          before=None) -> Pruned:
    """Prune ``analyzed``'s graph (edited in place) by ``removed`` (group id -> slot ids).

    ``compensation``: the mean/refit data of the decision (or plan); ``feeds``: the calibration
    samples of the sequential and statistics repairs (a list of feeds, or a callable returning a new
    stream), by default ``options.calib``; ``before``: the model's parameters and MACs when the
    decision counted them already (a :class:`~graphprune.planning.cost.Cost`).
    """
    model, analysis = analyzed.prepared.model, analyzed.analysis
    known = analysis.index.shapes
    report = None
    if removed and any(len(v) for v in removed.values()) and (compensation or DATA_REPAIRS & set(options.repair)):
        report, analysis, removed = _repair(analyzed, removed, compensation, options, feeds)
    reference = zeroed(model, analysis, removed) if options.validate else None
    if before is None and options.count_macs:
        before = safe_cost(analyzed.prepared.source.proto, options.input_shapes, known)
    with gc_paused():  # surgery and the checker's copy: many small objects, no cycles (graph.gc_pause)
        changed = apply_removal(model, analysis, removed)
        skeleton = _check_pruned(model, analyzed.prepared.source.proto)
    after = safe_cost(model, options.input_shapes, skeleton=skeleton) if options.count_macs else None
    return Pruned(model, analysis, removed, changed,
                  before.params if before else None, after.params if after else None,
                  before.macs if before else None, after.macs if after else None,
                  report.compensation if report else None, reference, tuple(notes), layer_channels(analysis, changed),
                  report)


def calibration_stream(analyzed: Analyzed, options: Options):
    """A callable returning a new stream of ``options.calib`` (the repairs read it once per pass)."""
    from .feeds import option_feeds

    proto = analyzed.prepared.source.proto
    return lambda: option_feeds(options, proto, options.calib_samples)


def _repair(analyzed: Analyzed, removed: dict, compensation, options: Options, feeds):
    """Run the repairs; returns their report, the analysis of the repaired graph and the removed
    slots in it."""
    from ..compensation import RepairState, repair
    from ..graph.model import to_proto

    model = analyzed.prepared.model
    data = DATA_REPAIRS & set(options.repair)
    reference = to_proto(model) if data else None
    if data and feeds is None:
        feeds = calibration_stream(analyzed, options)
    state = RepairState(model, analyzed.analysis, removed, options.strict_initializer_inputs, not options.keep_bn)
    report = repair(state, options.repair, compensation=compensation, reference=reference, feeds=feeds,
                    progress=options.progress)
    return report, state.analysis, state.removed


def _check_pruned(model, source):
    """The ONNX checker on the pruned model, unless the model as given fails it too (onnxruntime's
    own ops registered in the ONNX domain, such as SimplifiedLayerNormalization, fail it).
    Returns the weight-less proto it checked (the pruned model's counts read it again)."""
    from ..graph.model import to_proto
    from ..input_checks import run_checker

    skeleton = to_proto(model, tensors="skeleton")
    try:  # big weights become typed graph inputs in the checker's copy: a skeleton is enough
        run_checker(skeleton, "pruned model")
    except GraphPruneError as exc:
        try:
            run_checker(source, "model")
        except GraphPruneError:
            return skeleton  # the checker rejects the original already: nothing to compare against
        raise PruningError(f"internal error: the pruned model fails the ONNX checker ({exc}); "
                           "nothing was written") from exc
    return skeleton


def layer_channels(analysis, changed: dict) -> list[dict]:
    """Output channels before/after for every node whose weight has a producer slice."""
    from ..rules.base import PRODUCER

    out = []
    index = analysis.index
    for group in analysis.groups:
        for p in group.params:
            if PRODUCER not in p.roles or "weight" not in p.tags:
                continue
            for use in index.uses(p.initializer):
                node = index.nodes[use.node]
                before = group.sizes[p.space]
                after = int(changed[p.space].size) if p.space in changed else before
                out.append({"node": node.name, "op_type": node.op_type, "before": int(before), "after": after})
    out.sort(key=lambda r: index.node_pos.get(r["node"], 0))
    seen, unique = set(), []
    for r in out:
        if r["node"] not in seen:
            seen.add(r["node"])
            unique.append(r)
    return unique
