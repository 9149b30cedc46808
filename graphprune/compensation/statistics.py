"""Statistics correction: every kept channel at a producer's output gets back its calibration mean and
standard deviation, folded into the producer (the training-free counterpart of re-estimating BatchNorm).

A **producer** is a node that reads a weight-tagged producer slice (Conv, ConvTranspose, Gemm,
MatMul: the rules say which; no op type is named here); its output channel ``c`` is linear in the
node's producer slices of ``c`` (weight rows, bias entries). For every producer downstream of a
removed channel and every kept position ``c`` of its output space, on the calibration data::

    a_c = σ_orig,c / σ_pruned,c        b_c = μ_orig,c − a_c μ_pruned,c        y'_c = a_c y_c + b_c

where ``σ``/``μ`` are taken over every other axis of the output (batch, spatial, sequence), in the
original model and in the model as pruned and repaired so far. ``a`` scales every producer slice of
``c`` (weight rows and bias entries, through ``Group.params``); ``b`` is added after the node and
folded into its bias (a bias is created where there was none). Then ``y'_c`` has exactly the
original mean and variance on the calibration data. Because the exporter's BatchNorm was folded
into the producer, this is what re-estimating its statistics would do, and it works on models whose
BatchNorm the exporter had already folded.

Correcting one layer changes the inputs of every layer after it, so producers are corrected in
topological order, each measured in the model whose earlier producers are already corrected: the
graph is cut into stages at the producers (:mod:`.staged`) and run stage by stage over the
calibration samples; after each stage its producers' outputs are measured, corrected in the
cached samples (``a y + b``, what the folded weights will compute) and the next stage reads the
corrected values. That is one pass of the pruned model (and one of the original, for its
statistics), whatever the depth; the graph is edited once, at the end. (Correcting every
producer from one measurement instead over-corrects: a layer whose input variance was restored
upstream is scaled again, and the scales multiply through the depth: on ultraface at ratio 0.2
some channels came out 900x too wide.)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..analysis.types import Analysis, ParamSlice
from ..calibration import SpaceStats, calibrate
from ..graph import edit
from ..graph.nodes import inputs, outputs
from ..progress import progress as progress_iter
from ..rules.base import PRODUCER, Space
from .apply import add_offsets, maps_one_to_one
from .staged import StagedRun, partition
from .state import RepairState

log = logging.getLogger(__name__)

#: a channel's scale is kept within [1/SCALE_LIMIT, SCALE_LIMIT]
SCALE_LIMIT = 10.0
#: a pruned channel whose standard deviation is below this fraction of the original's is only shifted
MIN_STD_RATIO = 1e-3
#: corrections smaller than this (|a - 1| and |b| / σ) are not written
NEGLIGIBLE = 1e-6


@dataclass(frozen=True)
class ProducerOutput:
    """``node`` writes ``output`` (one axis of its output) through the producer ``slices``."""

    node: str
    output: Space
    slices: tuple[ParamSlice, ...]


@dataclass
class StatisticsReport:
    corrected: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)   # node -> reason
    clipped: int = 0                              # channels whose scale hit SCALE_LIMIT
    stages: int = 0
    #: before correction, over every corrected channel: the largest |μ_pruned − μ_orig| / σ_orig and
    #: |σ_pruned / σ_orig − 1| (each producer measured after the producers before it were corrected)
    mismatch: tuple = (0.0, 0.0)

    def summary_line(self) -> str:
        text = (f"statistics correction: {len(self.corrected)} producer outputs restored to their calibration mean "
                f"and variance, layer by layer ({self.stages} stages; before correction the largest channel mean "
                f"shift was {self.mismatch[0]:.3g} σ and the largest standard deviation change {self.mismatch[1]:.0%})")
        if self.clipped:
            text += f"; {self.clipped} channel scales clipped at {SCALE_LIMIT:g}x"
        if self.skipped:
            text += f"; {len(self.skipped)} producers not corrected"
        return text

    def to_dict(self) -> dict:
        return {"corrected": list(self.corrected), "skipped": dict(self.skipped), "clipped": self.clipped,
                "stages": self.stages, "mismatch": list(self.mismatch)}


def producer_outputs(analysis: Analysis, nodes: set[str]) -> tuple[list[ProducerOutput], dict]:
    """The producer outputs of ``nodes`` that can be corrected, and why the others cannot."""
    index = analysis.index
    found: dict[str, ProducerOutput] = {}
    skipped: dict[str, str] = {}
    for group in analysis.groups:
        for param in group.params:
            if PRODUCER not in param.roles or "weight" not in param.tags:
                continue
            uses = [u.node for u in index.uses(param.initializer)]
            if len(set(uses) & nodes) == 0:
                continue
            if len(uses) != 1:
                skipped[uses[0]] = f"weight {param.initializer} is read by {len(uses)} nodes"
                continue
            node = index.nodes[uses[0]]
            produced = [s for s in group.spaces if s.tensor in outputs(node)]
            slices = tuple(p for p in group.params if PRODUCER in p.roles and p.initializer in inputs(node))
            if len(produced) != 1 or not isinstance(group.sizes.get(produced[0]), int):
                skipped[node.name] = f"no single output axis of known size shares the group of {param.space}"
            elif not all(maps_one_to_one(analysis, produced[0], p.space) for p in slices):
                skipped[node.name] = "a producer slice does not map one to one onto the output channels"
            elif node.name not in found:
                found[node.name] = ProducerOutput(node.name, produced[0], slices)
    ordered = sorted(found.values(), key=lambda p: index.node_pos[p.node])
    return ordered, {k: v for k, v in skipped.items() if k not in found}


def affine_correction(original, pruned, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(a, b, clipped)`` per position from two :class:`SpaceStats`; identity on removed positions."""
    so, sp = np.sqrt(original.variance), np.sqrt(pruned.variance)
    live = sp > MIN_STD_RATIO * np.maximum(so, 1e-12)
    raw = np.where(live, so / np.where(live, sp, 1.0), 1.0)
    a = np.clip(raw, 1.0 / SCALE_LIMIT, SCALE_LIMIT)
    clipped = int(np.count_nonzero(a[kept] != raw[kept]))
    b = original.mean - a * pruned.mean
    identity = np.ones(a.size, dtype=bool)
    identity[kept] = False
    a[identity], b[identity] = 1.0, 0.0
    return a, b, clipped


def _mismatch(original, pruned, kept: np.ndarray) -> tuple[float, float]:
    so = np.maximum(np.sqrt(original.variance[kept]), 1e-12)
    shift = np.abs(pruned.mean[kept] - original.mean[kept]) / so
    spread = np.abs(np.sqrt(pruned.variance[kept]) / so - 1.0)
    return (float(shift.max()) if shift.size else 0.0, float(spread.max()) if spread.size else 0.0)


def _scale_slices(model, analysis: Analysis, site: ProducerOutput, a: np.ndarray) -> None:
    for param in site.slices:
        array = np.asarray(analysis.index.array(param.initializer))
        shape = [1] * array.ndim
        shape[param.axis] = -1
        scaled = (array.astype(np.float64) * a.reshape(shape)).astype(array.dtype)
        edit.write_initializer(model.graph.initializers[param.initializer], scaled)


def _offset(analysis: Analysis, space: Space, b: np.ndarray) -> np.ndarray:
    shape = [1] * (analysis.index.rank(space.tensor) or space.axis + 1)
    shape[space.axis] = -1
    return b.reshape(shape)


def _correct_stage(run: StagedRun, state: RepairState, original, sites, report: StatisticsReport) -> list:
    """Measure, correct (in the cached samples) and return ``(site, a, b)`` for the producers of one stage."""
    corrections = []
    for site in sites:
        size = state.group_of(site.output).sizes[site.output]
        pruned = SpaceStats(site.output, size)
        for value in run.values(site.output.tensor):
            pruned.update(value)
        kept, reference = state.kept(site.output), original.get(site.output)
        shift, spread = _mismatch(reference, pruned, kept)
        report.mismatch = (max(report.mismatch[0], shift), max(report.mismatch[1], spread))
        a, b, clipped = affine_correction(reference, pruned, kept)
        if np.abs(a - 1.0).max() <= NEGLIGIBLE and (np.abs(b) <= NEGLIGIBLE * np.sqrt(reference.variance) + 1e-12).all():
            continue
        report.clipped += clipped
        shape = [1] * len(pruned.shape)
        shape[site.output.axis] = -1
        scale, shift_by = a.reshape(shape), b.reshape(shape)
        run.rewrite(site.output.tensor, lambda y: (y * scale + shift_by).astype(y.dtype))
        corrections.append((site, a, b))
    return corrections


def correct_statistics(state: RepairState, reference: onnx.ModelProto, feeds, *,
                       progress: bool = False) -> StatisticsReport:
    """Restore every kept producer output channel's mean and variance, producer after producer (edits
    ``state.model``). ``reference`` is the model before any repair (its tensors keep their names
    through repairs); ``feeds()`` returns a stream of the calibration samples."""
    report = StatisticsReport()
    sites, report.skipped = producer_outputs(state.analysis, state.affected_nodes())
    known = {o for n in reference.graph.node for o in n.output}
    sites = [s for s in sites if s.output.tensor in known]
    if not sites:
        return report
    samples = list(feeds())
    sizes = {s.output: state.group_of(s.output).sizes[s.output] for s in sites}
    original = calibrate(reference, list(sizes), iter(samples), sizes=sizes, source="original")
    run = StagedRun(partition(state.pruned_proto(), {s.node for s in sites}, opens=False), samples, "pruned model")
    stage_of = {n.name: k for n, k in zip(run.stages.model.graph.node, run.stages.stage_of)}
    corrections = []
    for stage in progress_iter(range(run.stages.count), total=run.stages.count, desc="correcting statistics",
                               enabled=progress, unit="stage"):
        now = [s for s in sites if stage_of[s.node] == stage]
        run.run(stage, outputs=[s.output.tensor for s in now])
        corrections += _correct_stage(run, state, original, now, report)
        run.forget([s.output.tensor for s in now])
    index = state.analysis.index
    for site, a, _ in corrections:
        _scale_slices(state.model, state.analysis, site, a)
    add_offsets(state.model, state.analysis, [(index.nodes[s.node], _offset(state.analysis, s.output, b))
                                              for s, _, b in corrections], fold_batchnorm=state.fold_batchnorm)
    state.refresh()
    report.corrected = [s.node for s, _, _ in corrections]
    report.stages = run.stages.count
    log.info("%s", report.summary_line())
    return report
