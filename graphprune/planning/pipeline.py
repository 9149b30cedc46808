"""Building blocks of ``plan``: scorers (with calibration or pre-fold scoring), costs, latency.

These functions never mutate the models they are given; :mod:`graphprune.api` strings them
together.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import onnx

from ..analysis.builder import analyze
from ..analysis.types import Analysis
from ..calibration import activation_spaces, calibrate, calibration_feeds
from ..errors import GraphPruneError, UsageError
from ..graph import GraphIndex
from ..importance import DATA_DRIVEN, MagnitudeImportance, TransferredImportance, make_importance, position_scores
from .cost import Cost, CostModel
from .options import PlanOptions

log = logging.getLogger(__name__)

#: timed runs per latency measurement of a --target-latency search (after 2 warm-up runs)
LATENCY_RUNS = 15


def copy_model(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def needs_calibration(options: PlanOptions, compensate: bool) -> bool:
    return options.importance in DATA_DRIVEN or compensate


def check_calibration(options: PlanOptions, calib, compensate: bool) -> None:
    """A usage error (naming --calib) when data-driven scoring or compensation has no data."""
    if calib is not None:
        return
    if options.importance in DATA_DRIVEN:
        raise UsageError(f"--importance {options.importance} is data-driven: give calibration data with "
                         "--calib PATH (.npz, .npy or a folder of images)")
    if compensate:
        raise UsageError("--compensate needs calibration data: give it with --calib PATH")


def run_calibration(model: onnx.ModelProto, analysis: Analysis, calib, *, reference_model: onnx.ModelProto,
                    samples: int | None, image_options: Mapping | None, progress: bool, gram: bool = False):
    """Statistics of every consumer activation of the prunable groups over the calibration data."""
    spaces = activation_spaces(analysis.prunable_groups, analysis.index)
    sizes = {s: analysis.groups[analysis.space_group[s]].sizes[s] for s in spaces}
    feeds = calibration_feeds(calib, reference_model, limit=samples, image_options=image_options)
    return calibrate(model, spaces, feeds, sizes=sizes, gram=spaces if gram else (), progress=progress,
                     total=samples, source=str(calib) if not isinstance(calib, (dict, list)) else "arrays")


def make_scorer(options: PlanOptions, analysis: Analysis, *, stats=None, unfolded: onnx.ModelProto | None = None,
                strict_initializer_inputs: bool = False):
    """The scorer for ``options.importance``; ``bn-scale`` on a folded model scores ``unfolded``."""
    if options.importance == "bn-scale" and unfolded is not None:
        before = analyze(GraphIndex(unfolded, strict_initializer_inputs=strict_initializer_inputs))
        positions = position_scores(before, make_importance("bn-scale", aggregate=options.aggregate))
        return TransferredImportance("bn-scale", positions, MagnitudeImportance(2, options.aggregate))
    return make_importance(options.importance, seed=options.seed, aggregate=options.aggregate, stats=stats)


def cost_model(model: onnx.ModelProto, analysis: Analysis, input_shapes) -> CostModel | None:
    try:
        return CostModel(model, analysis, input_shapes)
    except GraphPruneError:
        raise
    except Exception as exc:  # noqa: BLE001 - predictions are informative unless a target needs them
        log.warning("parameter/MAC prediction unavailable: %s", exc)
        return None


def model_cost(model: onnx.ModelProto, input_shapes) -> Cost:
    from ..profiling import profile

    p = profile(model, input_shapes=input_shapes, progress=False)
    return Cost(int(p.total_params), int(p.total_macs))


def latency_probe(model: onnx.ModelProto, input_shapes, *, threads: int = 1, runs: int = LATENCY_RUNS,
                  progress: bool = False, strict_initializer_inputs: bool = False):
    """A function ``removed -> median ms`` of the model pruned by ``removed`` (measured in onnxruntime)."""
    from ..profiling.bench import measure_latency
    from ..surgery.apply import apply_removal
    from ..validation.feeds import make_feeds

    feed = make_feeds(model, 1, seed=0, input_shapes=input_shapes)[0]

    def measure(removed) -> float:
        candidate = copy_model(model)
        if removed:
            candidate_analysis = analyze(GraphIndex(candidate, strict_initializer_inputs=strict_initializer_inputs))
            apply_removal(candidate, candidate_analysis, removed)
        stats = measure_latency([candidate], feed, labels=["candidate"], threads=threads, runs=runs, warmup=2,
                                progress=progress)
        return float(stats[0].median_ms)

    return measure


def removed_arrays(removed: Mapping) -> dict[int, np.ndarray]:
    return {int(k): np.asarray(v, dtype=np.int64) for k, v in removed.items()}
