"""Parameters and MACs: of the model as given, of a pruned graph, and predicted for a decision.

Every count comes from :mod:`graphprune.profiling` (the ``profile`` command's own counting), so
the numbers a prune summary prints are the numbers ``graphprune profile`` prints for the files.
"""
from __future__ import annotations

import logging

import onnx
import onnx_ir as ir

from ..errors import GraphPruneError
from ..planning.cost import Cost, CostModel
from ..profiling.counts import node_params

log = logging.getLogger(__name__)


def model_cost(model: onnx.ModelProto | ir.Model, input_shapes=None, known=None, skeleton=None) -> Cost:
    """Parameters and MACs as ``graphprune profile`` counts them (raises when it cannot); ``known``:
    shapes an analysis already inferred, used when they cover the model (see ``tensor_infos``);
    ``skeleton``: the editable graph's weight-less proto when one was made already."""
    from ..graph.model import to_proto
    from ..profiling.macs import node_macs
    from ..profiling.shapes import tensor_infos

    if isinstance(model, ir.Model):
        proto = skeleton if skeleton is not None else to_proto(model, tensors="skeleton")
        runnable = lambda: to_proto(model)  # noqa: E731
    else:
        proto, runnable = model, None
    infos, _ = tensor_infos(proto, input_shapes, runnable, known)
    # the sums of profiling.counts.node_profiles' columns, without its per-node records
    return Cost(sum(node_params(proto, infos)), sum(node_macs(node, infos) or 0 for node in proto.graph.node))


def safe_cost(model, input_shapes=None, known=None, skeleton=None) -> Cost | None:
    """:func:`model_cost`, or None (with a warning) when the profiler cannot count the model."""
    try:
        return model_cost(model, input_shapes, known, skeleton)
    except Exception as exc:  # noqa: BLE001 - counts are informative; never fail a prune on them
        log.warning("MAC count unavailable: %s", exc)
        return None


def cost_model(model: ir.Model, analysis, input_shapes) -> CostModel | None:
    """The predictor of a decision's parameters and MACs, or None when shapes are unknown."""
    made = _analysed_costs(model, analysis, input_shapes)
    return None if made is None else made[0]


def decision_costs(prepared, analysis, input_shapes) -> tuple[CostModel | None, Cost | None]:
    """The cost model of the analysed graph and the cost of the model as given (the reference of
    targets and summaries): (None, None) when shapes are unknown.

    When prepare left the graph as given (``prepared.unchanged``) and the analysis' shapes bind
    every tensor, the analysed skeleton is the source's graph without its weight bytes, counted
    with the same shapes: its MACs are the cost model's own per-node counts and only parameters
    are summed again. Otherwise the source is counted on its own (:func:`safe_cost`)."""
    made = _analysed_costs(prepared.model, analysis, input_shapes)
    if made is None:
        return None, None
    costs, skeleton, bound = made
    if bound and prepared.unchanged:
        try:
            return costs, Cost(sum(node_params(skeleton, costs.infos, costs.names)), int(sum(costs.node_base)))
        except Exception as exc:  # noqa: BLE001 - counts are informative; never fail a prune on them
            log.warning("MAC count unavailable: %s", exc)
            return costs, None
    return costs, safe_cost(prepared.source.proto, input_shapes, analysis.index.shapes)


def _analysed_costs(model: ir.Model, analysis, input_shapes) -> tuple[CostModel, onnx.ModelProto, bool] | None:
    """(cost model, the skeleton it counts, whether every shape came from the analysis'), or None
    when shapes are unknown."""
    from ..graph.model import to_proto
    from ..profiling.shapes import known_infos, tensor_infos
    from ..profiling.tensors import graph_names

    try:
        skeleton = analysis.index.skeleton if analysis.index.model is model else None
        if skeleton is None:
            skeleton = to_proto(model, tensors="skeleton")
        names = graph_names(skeleton)  # read once for shapes, MACs and parameters
        infos, _ = known_infos(skeleton, input_shapes, analysis.index.shapes, names)
        bound = infos is not None
        if not bound:  # inference on fixed input shapes (the analysis' shapes were tried just now)
            infos, _ = tensor_infos(skeleton, input_shapes, lambda: to_proto(model), names=names)
        return CostModel(skeleton, analysis, infos, names), skeleton, bound
    except GraphPruneError:
        raise
    except Exception as exc:  # noqa: BLE001 - predictions are informative unless a target needs them
        log.warning("parameter/MAC prediction unavailable: %s", exc)
        return None
