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

log = logging.getLogger(__name__)


def model_cost(model: onnx.ModelProto | ir.Model, input_shapes=None, known=None) -> Cost:
    """Parameters and MACs as ``graphprune profile`` counts them (raises when it cannot); ``known``:
    shapes an analysis already inferred, used when they cover the model (see ``tensor_infos``)."""
    from ..graph.model import to_proto
    from ..profiling.counts import node_params
    from ..profiling.macs import node_macs
    from ..profiling.shapes import tensor_infos

    if isinstance(model, ir.Model):
        proto, runnable = to_proto(model, tensors="skeleton"), (lambda: to_proto(model))
    else:
        proto, runnable = model, None
    infos, _ = tensor_infos(proto, input_shapes, runnable, known)
    # the sums of profiling.counts.node_profiles' columns, without its per-node records
    return Cost(sum(node_params(proto, infos)), sum(node_macs(node, infos) or 0 for node in proto.graph.node))


def safe_cost(model, input_shapes=None, known=None) -> Cost | None:
    """:func:`model_cost`, or None (with a warning) when the profiler cannot count the model."""
    try:
        return model_cost(model, input_shapes, known)
    except Exception as exc:  # noqa: BLE001 - counts are informative; never fail a prune on them
        log.warning("MAC count unavailable: %s", exc)
        return None


def cost_model(model: ir.Model, analysis, input_shapes) -> CostModel | None:
    """The predictor of a decision's parameters and MACs, or None when shapes are unknown."""
    from ..graph.model import to_proto
    from ..profiling.shapes import tensor_infos

    try:
        skeleton = analysis.index.skeleton if analysis.index.model is model else None
        if skeleton is None:
            skeleton = to_proto(model, tensors="skeleton")
        infos, _ = tensor_infos(skeleton, input_shapes, lambda: to_proto(model), analysis.index.shapes)
        return CostModel(skeleton, analysis, infos)
    except GraphPruneError:
        raise
    except Exception as exc:  # noqa: BLE001 - predictions are informative unless a target needs them
        log.warning("parameter/MAC prediction unavailable: %s", exc)
        return None
