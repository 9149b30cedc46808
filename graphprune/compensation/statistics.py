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

Correcting one layer changes the inputs of every layer after it, so the correction runs in rounds:
each round measures the current model once (one onnxruntime pass over the calibration samples) and
corrects every producer; a producer ``d`` producers deep is exact after ``d + 1`` rounds, and the
remaining mismatch before each round is reported (``benchmarks/bench_quality.py`` measured the rounds).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..analysis.types import Analysis, ParamSlice
from ..calibration import calibrate
from ..graph import edit
from ..graph.nodes import inputs, outputs
from ..rules.base import PRODUCER, Space
from .apply import add_offsets, maps_one_to_one
from .state import RepairState

log = logging.getLogger(__name__)

#: a channel's scale is kept within [1/SCALE_LIMIT, SCALE_LIMIT]
SCALE_LIMIT = 10.0
#: a pruned channel whose standard deviation is below this fraction of the original's is only shifted
MIN_STD_RATIO = 1e-3
#: corrections smaller than this (|a - 1| and |b| / σ) are not written
NEGLIGIBLE = 1e-6
DEFAULT_ROUNDS = 2


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
    #: before each round: the largest |μ_pruned − μ_orig| / σ_orig and |σ_pruned / σ_orig − 1| over channels
    mismatch: list = field(default_factory=list)

    def summary_line(self) -> str:
        text = (f"statistics correction: {len(self.corrected)} producer outputs restored to their calibration "
                f"mean and variance ({len(self.mismatch)} rounds")
        if self.mismatch:
            text += f"; largest channel mean shift {self.mismatch[0][0]:.3g} σ before"
            if len(self.mismatch) > 1:
                text += f", {self.mismatch[-1][0]:.3g} σ before the last round"
        text += ")"
        if self.clipped:
            text += f"; {self.clipped} channel scales clipped at {SCALE_LIMIT:g}x"
        if self.skipped:
            text += f"; {len(self.skipped)} producers not corrected"
        return text

    def to_dict(self) -> dict:
        return {"corrected": list(self.corrected), "skipped": dict(self.skipped), "clipped": self.clipped,
                "mismatch": [list(m) for m in self.mismatch]}


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
            if len(produced) != 1:
                skipped[node.name] = f"{len(produced)} output axes share the group of {param.space}"
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


def correct_statistics(state: RepairState, reference: onnx.ModelProto, feeds, *,
                       rounds: int = DEFAULT_ROUNDS, progress: bool = False) -> StatisticsReport:
    """Restore every kept producer output channel's mean and variance (edits ``state.model``).

    ``reference`` is the model before any repair (its tensors keep their names through repairs);
    ``feeds()`` returns a new stream of the calibration samples (one per pass).
    """
    report = StatisticsReport()
    affected = state.affected_nodes()
    sites, report.skipped = producer_outputs(state.analysis, affected)
    known = {o for n in reference.graph.node for o in n.output}
    sites = [s for s in sites if s.output.tensor in known]
    spaces = [s.output for s in sites]
    sizes = {s: state.group_of(s).sizes[s] for s in spaces}
    if not spaces:
        return report
    original = calibrate(reference, spaces, feeds(), sizes=sizes, progress=progress, source="original")
    corrected: set[str] = set()
    for _ in range(rounds):
        pruned = calibrate(state.pruned_proto(), spaces, feeds(), sizes=sizes, progress=progress, source="pruned")
        sites, _ = producer_outputs(state.analysis, affected)
        sites = [s for s in sites if s.output in sizes]
        offsets, worst, clipped_now = [], (0.0, 0.0), 0
        for site in sites:
            kept = state.kept(site.output)
            o, p = original.get(site.output), pruned.get(site.output)
            worst = tuple(max(w, m) for w, m in zip(worst, _mismatch(o, p, kept)))
            a, b, clipped = affine_correction(o, p, kept)
            if np.abs(a - 1.0).max() <= NEGLIGIBLE and (np.abs(b) <= NEGLIGIBLE * np.sqrt(o.variance) + 1e-12).all():
                continue
            clipped_now += clipped
            _scale_slices(state.model, state.analysis, site, a)
            offsets.append((state.analysis.index.nodes[site.node], _offset(state.analysis, site.output, b)))
            corrected.add(site.node)
        report.mismatch.append(worst)
        report.clipped = max(report.clipped, clipped_now)
        if not offsets:
            break
        add_offsets(state.model, state.analysis, offsets, fold_batchnorm=state.fold_batchnorm)
        state.refresh()
    index = state.analysis.index
    report.corrected = sorted(corrected, key=lambda n: index.node_pos.get(n, 0))
    log.info("%s", report.summary_line())
    return report
