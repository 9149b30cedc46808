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

import math

import onnx
import onnx_ir as ir

from ..errors import GraphPruneError, PruningError
from ..graph.gc_pause import gc_paused
from ..graph.model import WrittenNodes
from ..oracle import zeroed
from ..surgery.apply import removal_edits
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
    # the analysed skeleton's nodes are the graph's as indexed unless a repair edited it since
    indexed = analysis.index.skeleton if report is None and analysis.index.model is model else None
    reference = None
    if options.validate:
        reference = zeroed(model, analysis, removed, None if indexed is None else WrittenNodes(indexed.graph.node, ()))
    if before is None and options.count_macs:
        before = safe_cost(analyzed.prepared.source.proto, options.input_shapes, known)
    with gc_paused():  # surgery and the checker's copy: many small objects, no cycles (graph.gc_pause)
        changed, edited = removal_edits(model, analysis, removed)
        written = None if indexed is None else WrittenNodes(indexed.graph.node, edited)
        skeleton = _check_pruned(model, analyzed.prepared.source.proto, options.count_macs, written)
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


def _check_pruned(model, source, counted: bool, written: WrittenNodes | None = None):
    """The ONNX checker on the pruned model, unless the model as given fails it too (onnxruntime's
    own ops registered in the ONNX domain, such as SimplifiedLayerNormalization, fail it).
    Returns the weight-less proto the pruned model's counts read when ``counted`` (to_proto's
    skeleton), else None. ``written``: the graph's nodes as written before surgery (see to_proto)."""
    from ..graph.model import tensor_into, to_proto
    from ..input_checks import run_checker

    frame = to_proto(model, tensors="none", written=written)
    try:  # big weights become typed graph inputs in the checker's copy: no weight is serialized
        run_checker(frame.SerializeToString() + _checker_weights(model, frame).SerializeToString(), "pruned model")
    except GraphPruneError as exc:
        try:
            run_checker(source, "model")
        except GraphPruneError:
            pass  # the checker rejects the original already: nothing to compare against
        else:
            raise PruningError(f"internal error: the pruned model fails the ONNX checker ({exc}); "
                               "nothing was written") from exc
    if not counted:
        return None
    for name, value in model.graph.initializers.items():
        tensor_into(frame.graph.initializer.add(), value.const_value, name, skeleton=True)
    return frame


def _checker_weights(model: ir.Model, frame: onnx.ModelProto) -> onnx.ModelProto:
    """What :func:`~graphprune.input_checks.checker_copy` adds to ``frame`` (``model`` without
    initializers): a model whose graph holds the initializers the checker keeps and declares the
    others as graph inputs, read off the tensors without writing a skeleton first. Serialized after
    ``frame``, it reads as the checker's copy: protobuf merges a message field given twice,
    appending repeated fields (the graph's inputs after ``frame``'s, as ``checker_copy`` has them)."""
    from ..graph.model import dims_and_type, tensor_into, verbatim_proto
    from ..input_checks import checker_keeps

    extra = onnx.ModelProto()
    declared = {i.name for i in frame.graph.input}
    kept = []  # copied into ``extra`` at once, in C (20k-node chain: 13,686 small initializers)
    for name, value in model.graph.initializers.items():
        tensor = value.const_value
        loaded = tensor.raw if type(tensor) is ir.TensorProtoTensor else None  # noqa: E721 - exact type, not a subclass
        if loaded is not None:
            dims, dtype, external = loaded.dims, loaded.data_type, loaded.data_location == onnx.TensorProto.EXTERNAL
        else:
            (dims, dtype), external = dims_and_type(tensor), isinstance(tensor, ir.ExternalTensor)
        if checker_keeps(math.prod(dims), external):
            proto = verbatim_proto(tensor, name)
            if proto is None:
                tensor_into(proto := onnx.TensorProto(), tensor, name)
            kept.append(proto)
        elif name not in declared:
            extra.graph.input.append(onnx.helper.make_tensor_value_info(name, dtype, list(dims)))
    extra.graph.initializer.extend(kept)
    return extra


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
