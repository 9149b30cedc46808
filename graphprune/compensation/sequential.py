"""Sequential reconstruction: every consumer re-fitted on the inputs it sees in the partly pruned model.

A consumer node reads an activation ``x`` (``C`` positions along one axis) through a consumer slice
of its weight ``W`` (Conv, Gemm, MatMul: the rules say which). In the original model it computes
``f(x) = W ⋆ x + β``; in the pruned and partly repaired model only the kept positions ``x̃_K`` are
left, and they drifted too (everything upstream was pruned). On calibration rows (every position of
the other axes of ``x`` is one row, for both models on the same samples)::

    M, c = argmin E‖x − M x̃_K − c‖² + Σ_i λ_i ‖m_i − m0_i‖²
    m_i = (Cov(x_i, x̃_K) + λ_i m0_i)(Cov(x̃_K) + λ_i I)⁻¹        c = E[x] − M E[x̃_K]

Every row ``m_i`` is its own ridge regression. A kept position is pulled towards itself (``m0_i``
picks ``x̃_i``; ``λ_i`` is :data:`SEQUENTIAL_RIDGE` times the mean variance of ``x̃_K``): the drift of
the kept channels is fitted, but not far from plain removal, because calibration and deployment
data differ (measured on four real models: pulling towards 0 instead, or a smaller ridge, gave
larger drift on held-out photos). A removed position is pulled towards 0 with the small ridge of
the re-fit (:data:`~graphprune.compensation.means.REFIT_RIDGE`): it is rebuilt from the kept ones.
The consumer becomes ``W' = W M`` on its kept positions with the offset ``f(c) − f(0) = W ⋆ c``
added after it (:func:`~graphprune.compensation.apply.add_offsets` folds it into the bias), so that
``f'(x̃) = W ⋆ (M x̃_K + c) + β``. Mean compensation leaves these consumers alone (:mod:`.repair`):
the intercept ``c`` is its generalization. For 1×1 convolutions and dense layers, without ridge,
this is the least-squares fit of the original output ``W x`` by ``W' x̃_K`` for every ``W`` at once
(the regression minimizes the residual covariance of ``x`` itself); for k×k convolutions it is the
best per-pixel channel map, and ``c`` is exact away from zero-padded borders. A consumer whose
weight axis does not map one to one onto ``x`` (grouped convolutions, shared weights) is skipped
with the reason.

**Layer by layer.** A consumer's inputs depend on every re-fit upstream of it, so consumers are
re-fitted in topological order, each on the inputs the already re-fitted model gives it: the
graph is cut into stages at the consumers (:mod:`.staged`), the original and the pruned model run
stage by stage side by side over the calibration samples, and before each stage runs its
consumers are re-fitted on the cached inputs and run with their new weights. That is one pass of
each model, whatever the depth; the graph is edited once, at the end.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..calibration import GRAM_LIMIT, consumer_sites, token_mask
from ..calibration.sites import whole, whole_size
from ..calibration.stats import REFIT_RIDGE
from ..graph import edit
from ..graph.model import from_proto
from ..progress import progress as progress_iter
from ..rules.base import Space
from .apply import add_offsets, axes_match, channel_axes, maps_one_to_one, per_channel, unsupported_consumer
from .response import Probe, responses
from .staged import StagedRun, partition
from .state import RepairState

log = logging.getLogger(__name__)

#: rows per item of a sample's batch (axis 0) and activation that enter the fit (a seeded subset of the
#: positions beyond it): a batch of 64 sentences keeps every real token
ROW_LIMIT = 1024
#: ridge of the fit, relative to the mean variance of the kept inputs (measured: benchmarks/bench_quality.py)
SEQUENTIAL_RIDGE = 1e-1
SEED = 0


@dataclass(frozen=True)
class Consumer:
    node: str
    weight: Space
    input_index: int


@dataclass(frozen=True)
class ReconstructionSite:
    """Activation ``space`` and the consumers re-fitted on it (they share one ``M, c``)."""

    space: Space
    consumers: tuple[Consumer, ...]


@dataclass
class SequentialReport:
    refitted: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)   # node -> reason
    stages: int = 0
    #: the mean over re-fitted activations of the variance of x the fit leaves unexplained (1 - R²)
    unexplained: float = 0.0

    def summary_line(self) -> str:
        text = (f"sequential reconstruction: {len(self.refitted)} consumers re-fitted layer by layer on the pruned "
                f"model's inputs ({self.stages} stages; {self.unexplained:.2%} of their original inputs' variance "
                "left unexplained)")
        if self.skipped:
            text += f"; {len(self.skipped)} consumers not re-fitted"
        return text

    def to_dict(self) -> dict:
        return {"refitted": list(self.refitted), "skipped": dict(self.skipped), "stages": self.stages,
                "unexplained": self.unexplained}


class CrossMoments:
    """Running sums over rows of the original ``x`` (all positions) and the pruned ``x̃`` (kept ones)."""

    def __init__(self, space: Space, size: int, kept: np.ndarray):
        self.space, self.size, self.kept = space, size, kept
        self.count = 0
        self.sum_x, self.sum_xx = np.zeros(size), np.zeros(size)
        self.sum_t = np.zeros(kept.size)
        self.xt, self.tt = np.zeros((size, kept.size)), np.zeros((kept.size, kept.size))
        self.shape: tuple = ()

    def update(self, x: np.ndarray, t: np.ndarray, sample: int, valid: np.ndarray | None = None) -> None:
        """Add one sample's positions; ``valid`` (broadcastable to ``x``, one along the channel axis)
        keeps only real tokens: padded positions are outside what the model is used for."""
        rows_x = np.moveaxis(np.asarray(x), self.space.axis, 0).reshape(self.size, -1)
        rows_t = np.moveaxis(np.asarray(t), self.space.axis, 0).reshape(self.size, -1)[self.kept]
        if valid is not None:
            columns = np.moveaxis(np.broadcast_to(valid, np.shape(x)), self.space.axis, 0).reshape(self.size, -1)[0]
            rows_x, rows_t = rows_x[:, columns], rows_t[:, columns]
        limit = ROW_LIMIT * (int(np.shape(x)[0]) if self.space.axis != 0 and np.ndim(x) > 1 else 1)
        if rows_x.shape[1] > limit:
            rng = np.random.default_rng([SEED, sample, zlib.crc32(self.space.tensor.encode()), self.space.axis])
            cols = np.sort(rng.choice(rows_x.shape[1], limit, replace=False))
            rows_x, rows_t = rows_x[:, cols], rows_t[:, cols]
        rows_x, rows_t = rows_x.astype(np.float64), rows_t.astype(np.float64)
        self.count += rows_x.shape[1]
        self.sum_x += rows_x.sum(axis=1)
        self.sum_xx += np.einsum("ij,ij->i", rows_x, rows_x)
        self.sum_t += rows_t.sum(axis=1)
        self.xt += rows_x @ rows_t.T
        self.tt += rows_t @ rows_t.T
        self.shape = (1,) + tuple(np.shape(x)[1:])

    def fit(self, ridge: float = SEQUENTIAL_RIDGE, removed_ridge: float = REFIT_RIDGE):
        """``M`` (size x kept), ``c`` (size) and the fraction of the variance of ``x`` left unexplained.

        Every row of ``M`` is its own ridge regression. A kept position's row is pulled towards
        itself (``ridge``: the pruned model's drifted inputs are fitted, but not far from plain
        removal); a removed position's row towards 0 (``removed_ridge``, as the re-fit of
        :mod:`.data`): ``m_i = (Cov(x_i, x̃) + λ_i m0_i)(Cov(x̃) + λ_i I)⁻¹``, both ridges relative
        to the mean variance of ``x̃_K``."""
        n = max(self.count, 1)
        mx, mt = self.sum_x / n, self.sum_t / n
        ctt = self.tt / n - np.outer(mt, mt)
        cxt = self.xt / n - np.outer(mx, mt)
        scale = max(float(np.trace(ctt)) / max(self.kept.size, 1), 1e-12)
        prior = np.zeros_like(cxt)
        prior[self.kept, np.arange(self.kept.size)] = 1.0
        is_kept = np.zeros(self.size, dtype=bool)
        is_kept[self.kept] = True
        matrix = np.zeros_like(cxt)
        for rows, lam in ((is_kept, ridge * scale), (~is_kept, removed_ridge * scale)):
            if rows.any():
                right = (cxt[rows] + lam * prior[rows]).T
                matrix[rows] = np.linalg.solve(ctt + lam * np.eye(self.kept.size), right).T
        total = float(np.maximum(self.sum_xx / n - mx * mx, 0.0).sum())
        left = total - 2 * float(np.einsum("ij,ij->", matrix, cxt)) + float(np.einsum("ij,ij->", matrix @ ctt, matrix))
        return matrix, mx - matrix @ mt, max(left, 0.0) / total if total > 0 else 0.0


def reconstruction_sites(state: RepairState, nodes: set[str]) -> tuple[list[ReconstructionSite], dict]:
    """Consumers among ``nodes`` that can be re-fitted, by activation, and why the others cannot."""
    index = state.analysis.index
    per_node: dict[str, list] = {}
    for group in state.analysis.groups:
        for site in consumer_sites(group, index):
            if site.node in nodes:
                per_node.setdefault(site.node, []).append(site)
    by_space: dict[Space, list[Consumer]] = {}
    skipped: dict[str, str] = {}
    for name, found in per_node.items():
        site, axes = found[0], {whole(s.activation) for s in found}  # heads and head dims: one axis
        reason = (f"reads {len(axes)} activations through consumer slices" if len(axes) != 1 else
                  unsupported_consumer(index.nodes[name], site.input_index, index))
        size = whole_size(state.analysis, whole(site.activation))
        if reason is None and (size is None or size > GRAM_LIMIT):
            reason = ("its activation's size is unknown" if size is None
                      else f"its activation has more than {GRAM_LIMIT} positions")
        if reason is None and not _one_to_one(state.analysis, found, size):
            reason = "its weight axis does not map one to one onto the activation (grouped or shared weight)"
        if reason:
            skipped[name] = reason
        else:
            by_space.setdefault(whole(site.activation), []).append(Consumer(name, whole(site.weight), site.input_index))
    return [ReconstructionSite(s, tuple(c)) for s, c in sorted(by_space.items())], skipped


def _one_to_one(analysis, found, size: int) -> bool:
    """Whether the weight of a node's consumer ``found`` sites maps one to one onto their activation:
    one site is asked through its group, an axis in several groups (heads and head dims) group by group."""
    if len(found) == 1:
        return maps_one_to_one(analysis, found[0].activation, found[0].weight)
    site = found[0]
    return len(analysis.index.uses(site.weight.tensor)) == 1 and axes_match(analysis, whole(site.activation),
                                                                           whole(site.weight), size)


def _constant(moments: CrossMoments, values: np.ndarray, dtype) -> np.ndarray:
    shape = [1] * len(moments.shape)
    shape[moments.space.axis] = -1
    return np.broadcast_to(values.reshape(shape), moments.shape).astype(dtype)


def _new_weight(original: np.ndarray, consumer: Consumer, kept: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``W M`` on the kept positions of the consumer axis, 0 on the removed ones (as the pruned model has it)."""
    moved = np.moveaxis(original.astype(np.float64), consumer.weight.axis, -1)
    out = np.zeros_like(moved)
    out[..., kept] = moved @ matrix
    return np.moveaxis(out, -1, consumer.weight.axis).astype(original.dtype)


@dataclass
class _Reference:
    """The model before any repair: as a proto, as an editable graph (probes read it), its nodes by name."""

    proto: onnx.ModelProto

    def __post_init__(self):
        self.model = from_proto(self.proto)
        self.nodes = {n.name: n for n in self.proto.graph.node}

    def weight(self, name: str) -> np.ndarray:
        return np.asarray(self.model.graph.initializers[name].const_value.numpy())


def _fit_stage(state: RepairState, reference: _Reference, sites, runs, ridge, report, samples=(),
               mask=None) -> tuple[dict, list]:
    """Re-fit the consumers of ``sites`` on the cached inputs: {consumer: (new weight, output offset)};
    ``mask`` (a :class:`~graphprune.calibration.TokenMask`) leaves padded tokens of ``samples`` out."""
    index, fitted, probes, planned, left = state.analysis.index, {}, [], [], []
    for site in sites:
        m = CrossMoments(site.space, *state.axis_kept(site.space))
        for i, (x, t) in enumerate(zip(runs[0].values(site.space.tensor), runs[1].values(site.space.tensor))):
            m.update(x, t, i, mask.valid(samples[i], site.space.tensor, np.shape(x)) if mask else None)
        matrix, intercept, unexplained = m.fit(*ridge)
        left.append(unexplained)
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(index.elem_type(site.space.tensor) or 1))
        for consumer in site.consumers:
            constant = _constant(m, intercept, dtype)
            probes.append(Probe(reference.nodes[consumer.node], consumer.input_index, constant, reference.model))
            planned.append((consumer, _new_weight(reference.weight(consumer.weight.tensor), consumer, m.kept, matrix)))
    for (consumer, weight), delta in zip(planned, responses(state.model, probes)):
        if delta is None:
            report.skipped[consumer.node] = "not affine in its input"
            continue
        node = index.nodes[consumer.node]
        offset, _ = per_channel(delta, channel_axes(state.analysis, node))
        out_dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(index.elem_type(node.outputs[0].name) or 1))
        fitted[consumer] = (weight, offset.astype(out_dtype))
    return fitted, left


def reconstruct(state: RepairState, reference: onnx.ModelProto, feeds, *, ridge: float = SEQUENTIAL_RIDGE,
                removed_ridge: float = REFIT_RIDGE, progress: bool = False) -> SequentialReport:
    """Re-fit every consumer downstream of a removed channel on the pruned model's inputs, layer by
    layer (edits ``state.model``); ``reference`` is the model before any repair, ``feeds()`` a stream
    of the calibration samples."""
    report = SequentialReport()
    sites, report.skipped = reconstruction_sites(state, state.affected_nodes())
    if not sites:
        return report
    boundary = {c.node for s in sites for c in s.consumers}
    samples = list(feeds())
    runs = (StagedRun(partition(reference, boundary, opens=True), samples, "original model"),
            StagedRun(partition(state.pruned_proto(), boundary, opens=True), samples, "pruned model"))
    stage_of = {n.name: s for n, s in zip(runs[1].stages.model.graph.node, runs[1].stages.stage_of)}
    report.stages = runs[1].stages.count
    ref, fitted, left = _Reference(reference), {}, []
    mask = token_mask(state.analysis.index, [s.space for s in sites])
    for stage in progress_iter(range(report.stages), total=report.stages, desc="reconstructing", enabled=progress,
                               unit="stage"):
        now, unexplained = _fit_stage(state, ref, [s for s in sites if stage_of[s.consumers[0].node] == stage],
                                      runs, (ridge, removed_ridge), report, samples, mask)
        fitted.update(now)
        left += unexplained
        runs[0].run(stage)
        runs[1].run(stage, initializers={c.weight.tensor: w for c, (w, _) in now.items()},
                    offsets={state.analysis.index.nodes[c.node].outputs[0].name: o for c, (_, o) in now.items()})
    for consumer, (weight, _) in fitted.items():
        edit.write_initializer(state.model.graph.initializers[consumer.weight.tensor], weight)
    nodes = state.analysis.index.nodes
    add_offsets(state.model, state.analysis, [(nodes[c.node], o) for c, (_, o) in fitted.items()],
                fold_batchnorm=state.fold_batchnorm)
    state.refresh()
    index = state.analysis.index
    report.refitted = sorted({c.node for c in fitted}, key=lambda n: index.node_pos.get(n, 0))
    report.unexplained = float(np.mean(left)) if left else 0.0
    log.info("%s", report.summary_line())
    return report
