"""Stage ``apply``: repair (compensation), then remove the decided slots from the graph.

The pruned model is checked by the ONNX checker before it is handed on; when the result will be
checked against its oracle, the oracle's reference (the prepared model with every removed slot's
consumer slices zeroed, after compensation) is made here, before surgery.
"""
from __future__ import annotations

import numpy as np

from ..errors import GraphPruneError, PruningError
from ..oracle import zero_removed
from ..surgery.apply import apply_removal, kept_positions
from .costs import safe_cost
from .options import Options
from .values import Analyzed, Pruned


def apply(analyzed: Analyzed, removed: dict, options: Options, *, compensation=None, notes=()) -> Pruned:
    """Prune ``analyzed``'s graph (edited in place) by ``removed`` (group id -> slot ids)."""
    model, analysis = analyzed.prepared.model, analyzed.analysis
    report = None
    if compensation and removed:
        report, analysis, removed = _compensate(analyzed, removed, compensation, options)
    reference = zero_removed(model, analysis, removed) if options.validate else None
    before = safe_cost(analyzed.prepared.source.proto, options.input_shapes) if options.count_macs else None
    changed = apply_removal(model, analysis, removed)
    _check_pruned(model, analyzed.prepared.source.proto)
    after = safe_cost(model, options.input_shapes) if options.count_macs else None
    return Pruned(model, analysis, removed, changed,
                  before.params if before else None, after.params if after else None,
                  before.macs if before else None, after.macs if after else None,
                  report, reference, tuple(notes), layer_channels(analysis, changed))


def _compensate(analyzed: Analyzed, removed: dict, data, options: Options):
    """Fold the removed channels' calibration means (or re-fit) into the consumers; returns the
    report, the analysis of the compensated graph and the removed slots in it."""
    from ..analysis.builder import analyze
    from ..compensation import compensate
    from ..graph.index import GraphIndex
    from ..planning.plan_file import removed_from_kept

    model, analysis = analyzed.prepared.model, analyzed.analysis
    before = kept_positions(analysis, removed)
    report = compensate(model, analysis, list(data), fold_batchnorm=not options.keep_bn)
    new = analyze(GraphIndex(model, strict_initializer_inputs=options.strict_initializer_inputs))
    moved, _ = removed_from_kept(new, before, strict=False)
    after = kept_positions(new, moved)
    lost = [s for s in before if s in after and not np.array_equal(before[s], after[s])]
    if lost or sum(len(v) for v in moved.values()) != sum(len(v) for v in removed.values()):
        raise PruningError("internal error: compensation changed the channel groups "
                           f"({', '.join(map(str, lost[:3])) or 'slot counts differ'}); nothing was written")
    return report, new, moved


def _check_pruned(model, source) -> None:
    """The ONNX checker on the pruned model, unless the model as given fails it too (onnxruntime's
    own ops registered in the ONNX domain, such as SimplifiedLayerNormalization, fail it)."""
    from ..graph.model import to_proto
    from ..input_checks import run_checker

    try:  # big weights become typed graph inputs in the checker's copy: a skeleton is enough
        run_checker(to_proto(model, tensors="skeleton"), "pruned model")
    except GraphPruneError as exc:
        try:
            run_checker(source, "model")
        except GraphPruneError:
            return  # the checker rejects the original already: nothing to compare against
        raise PruningError(f"internal error: the pruned model fails the ONNX checker ({exc}); "
                           "nothing was written") from exc


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
