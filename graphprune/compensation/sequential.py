"""Sequential reconstruction: every consumer re-fitted on the inputs it sees in the partly pruned model.

A consumer node reads an activation ``x`` (``C`` positions along one axis) through a consumer slice
of its weight ``W`` (Conv, Gemm, MatMul: the rules say which). In the original model it computes
``f(x) = W ⋆ x + β``; in the pruned and partly repaired model only the kept positions ``x̃_K`` are
left, and they drifted too (everything upstream was pruned). On calibration rows (every position of
the other axes of ``x`` is one row, for both models on the same samples)::

    M, c = argmin E‖x − M x̃_K − c‖² + λ‖M‖²
    M = Cov(x, x̃_K) (Cov(x̃_K) + λI)⁻¹        c = E[x] − M E[x̃_K]

(``λ`` is :data:`~graphprune.compensation.data.REFIT_RIDGE` times the mean variance of ``x̃_K``),
and the consumer becomes ``W' = W M`` on its kept positions with the offset ``f(c) − f(0) = W ⋆ c``
added after it (:func:`~graphprune.compensation.apply.add_offsets` folds it into the bias; a later
round adds only the change), so that ``f'(x̃) = W ⋆ (M x̃_K + c) + β``. Mean compensation leaves
these consumers alone (:mod:`.repair`): the intercept ``c`` is its generalization. For 1×1 convolutions and dense
layers this is the least-squares fit of the original output ``W x`` by ``W' x̃_K`` for every ``W`` at
once (the regression minimizes the residual covariance of ``x`` itself); for k×k convolutions it is
the best per-pixel channel map, and ``c`` is exact away from zero-padded borders. A consumer whose
weight axis does not map one to one onto ``x`` (grouped convolutions) is skipped with the reason.

**Layer by layer.** A consumer's inputs depend on every re-fit upstream of it, so the fit runs in
rounds: each round runs the original and the current model once on the calibration samples and
re-fits every consumer whose inputs may still change (its *depth*, the number of re-fitted
consumers on the longest path above it, is at least the round's number). A consumer of depth
``d`` is final after round ``d + 1``; ``rounds=None`` runs them all (exactly layer by layer in
topological order), fewer rounds stop early and leave the deepest consumers fitted on inputs one
round old.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..calibration import GRAM_LIMIT, consumer_sites, expose
from ..graph import edit
from ..graph.model import from_proto
from ..graph.nodes import inputs, outputs
from ..progress import progress as progress_iter
from ..rules.base import Space
from ..validation.runner import make_session, run_session
from .apply import add_offsets, maps_one_to_one, unsupported_consumer
from .data import REFIT_RIDGE
from .response import Probe, responses
from .state import RepairState

log = logging.getLogger(__name__)

#: rows per sample and activation that enter the fit (a seeded subset of the positions beyond it)
ROW_LIMIT = 4096
DEFAULT_ROUNDS = 3
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
    rounds: int = 0
    exact: bool = False
    #: per round: the mean over activations of the variance of x the fit leaves unexplained (1 - R²)
    unexplained: list = field(default_factory=list)

    def summary_line(self) -> str:
        how = "layer by layer" if self.exact else f"{self.rounds} rounds"
        text = f"sequential reconstruction: {len(self.refitted)} consumers re-fitted on the pruned model's inputs ({how}"
        if self.unexplained:
            text += f"; unexplained input variance {self.unexplained[-1]:.2%} in the last round"
        text += ")"
        if self.skipped:
            text += f"; {len(self.skipped)} consumers not re-fitted"
        return text

    def to_dict(self) -> dict:
        return {"refitted": list(self.refitted), "skipped": dict(self.skipped), "rounds": self.rounds,
                "exact": self.exact, "unexplained": list(self.unexplained)}


class CrossMoments:
    """Running sums over rows of the original ``x`` (all positions) and the pruned ``x̃`` (kept ones)."""

    def __init__(self, space: Space, size: int, kept: np.ndarray):
        self.space, self.size, self.kept = space, size, kept
        self.count = 0
        self.sum_x, self.sum_xx = np.zeros(size), np.zeros(size)
        self.sum_t = np.zeros(kept.size)
        self.xt, self.tt = np.zeros((size, kept.size)), np.zeros((kept.size, kept.size))
        self.shape: tuple = ()

    def update(self, x: np.ndarray, t: np.ndarray, sample: int) -> None:
        rows_x = np.moveaxis(np.asarray(x), self.space.axis, 0).reshape(self.size, -1)
        rows_t = np.moveaxis(np.asarray(t), self.space.axis, 0).reshape(self.size, -1)[self.kept]
        if rows_x.shape[1] > ROW_LIMIT:
            rng = np.random.default_rng([SEED, sample, zlib.crc32(self.space.tensor.encode()), self.space.axis])
            cols = np.sort(rng.choice(rows_x.shape[1], ROW_LIMIT, replace=False))
            rows_x, rows_t = rows_x[:, cols], rows_t[:, cols]
        rows_x, rows_t = rows_x.astype(np.float64), rows_t.astype(np.float64)
        self.count += rows_x.shape[1]
        self.sum_x += rows_x.sum(axis=1)
        self.sum_xx += np.einsum("ij,ij->i", rows_x, rows_x)
        self.sum_t += rows_t.sum(axis=1)
        self.xt += rows_x @ rows_t.T
        self.tt += rows_t @ rows_t.T
        self.shape = (1,) + tuple(np.shape(x)[1:])

    def fit(self, ridge: float = REFIT_RIDGE) -> tuple[np.ndarray, np.ndarray, float]:
        """``M`` (size x kept), ``c`` (size) and the fraction of the variance of ``x`` left unexplained."""
        n = max(self.count, 1)
        mx, mt = self.sum_x / n, self.sum_t / n
        ctt = self.tt / n - np.outer(mt, mt)
        cxt = self.xt / n - np.outer(mx, mt)
        lam = ridge * max(float(np.trace(ctt)) / max(self.kept.size, 1), 1e-12)
        matrix = np.linalg.solve(ctt + lam * np.eye(self.kept.size), cxt.T).T
        total = float(np.maximum(self.sum_xx / n - mx * mx, 0.0).sum())
        explained = float(np.einsum("ij,ij->", matrix, cxt))
        return matrix, mx - matrix @ mt, max(total - explained, 0.0) / total if total > 0 else 0.0


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
        site = found[0]
        reason = (f"reads {len(found)} activations through consumer slices" if len(found) != 1 else
                  unsupported_consumer(index.nodes[name], site.input_index, index))
        if reason is None and not maps_one_to_one(state.analysis, site.activation, site.weight):
            reason = "its weight axis does not map one to one onto the activation (grouped or shared weight)"
        if reason is None and state.group_of(site.activation).sizes[site.activation] > GRAM_LIMIT:
            reason = f"its activation has more than {GRAM_LIMIT} positions"
        if reason:
            skipped[name] = reason
        else:
            by_space.setdefault(site.activation, []).append(Consumer(name, site.weight, site.input_index))
    return [ReconstructionSite(s, tuple(c)) for s, c in sorted(by_space.items())], skipped


def depths(index, sites: list[ReconstructionSite]) -> dict[Space, int]:
    """For every site: the number of re-fitted consumers on the longest path above its activation."""
    refitted = {c.node for s in sites for c in s.consumers}
    tensor_depth: dict[str, int] = {}
    for name in index.node_order:
        node = index.nodes[name]
        depth = max((tensor_depth.get(t, 0) for t in inputs(node) if t), default=0)
        for out in outputs(node):
            tensor_depth[out] = depth + (name in refitted)
    return {s.space: tensor_depth.get(s.space.tensor, 0) for s in sites}


def _measure(state: RepairState, reference: onnx.ModelProto, sites, feeds, progress: bool) -> dict:
    tensors = sorted({s.space.tensor for s in sites})
    original = make_session(expose(reference, tensors), exact=True, label="original model")
    pruned = make_session(expose(state.pruned_proto(), tensors), exact=True, label="pruned model")
    moments = {s.space: CrossMoments(s.space, state.group_of(s.space).sizes[s.space], state.kept(s.space))
               for s in sites}
    for i, feed in enumerate(progress_iter(feeds(), desc="reconstructing", enabled=progress, unit="sample")):
        x = run_session(original, feed, label="original model", sample=i)
        t = run_session(pruned, feed, label="pruned model", sample=i)
        for space, m in moments.items():
            m.update(x[space.tensor], t[space.tensor], i)
    return moments


def _constant(moments: CrossMoments, values: np.ndarray, dtype) -> np.ndarray:
    shape = [1] * len(moments.shape)
    shape[moments.space.axis] = -1
    return np.broadcast_to(values.reshape(shape), moments.shape).astype(dtype)


def _write_weight(state: RepairState, original: np.ndarray, consumer: Consumer, moments, matrix) -> None:
    """Kept positions of the consumer axis become ``W M`` (``W`` as before any repair)."""
    current = np.asarray(state.analysis.index.array(consumer.weight.tensor))
    moved = np.moveaxis(current.astype(np.float64), consumer.weight.axis, -1).copy()
    moved[..., moments.kept] = np.moveaxis(original.astype(np.float64), consumer.weight.axis, -1) @ matrix
    updated = np.moveaxis(moved, -1, consumer.weight.axis).astype(current.dtype)
    edit.write_initializer(state.model.graph.initializers[consumer.weight.tensor], updated)


def _refit_round(state: RepairState, reference, sites, moments, ridge, report, added: dict) -> list[float]:
    """Re-fit every consumer of ``sites``; returns the unexplained variance of each activation.

    ``added`` holds, per consumer, the offset already added after it by earlier rounds (folded into
    its bias or not), so that each round adds only the difference."""
    index, reference_model = state.analysis.index, reference["model"]
    planned, probes, unexplained = [], [], []
    for site in sites:
        m = moments[site.space]
        matrix, intercept, left = m.fit(ridge)
        unexplained.append(left)
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(index.elem_type(site.space.tensor) or 1))
        for consumer in site.consumers:
            if consumer.weight.tensor not in reference_model.graph.initializers:
                report.skipped[consumer.node] = "its weight was replaced by an earlier repair"
                continue
            before = reference["nodes"][consumer.node]
            probes.append(Probe(before, consumer.input_index, _constant(m, intercept, dtype), reference_model))
            planned.append((consumer, m, matrix))
    offsets = []
    for (consumer, m, matrix), delta in zip(planned, responses(state.model, probes)):
        if delta is None:
            report.skipped[consumer.node] = "not affine in its input"
            continue
        original = np.asarray(reference_model.graph.initializers[consumer.weight.tensor].const_value.numpy())
        _write_weight(state, original, consumer, m, matrix)
        offsets.append((index.nodes[consumer.node], delta - added.get(consumer.node, 0.0)))
        added[consumer.node] = delta
        if consumer.node not in report.refitted:
            report.refitted.append(consumer.node)
    add_offsets(state.model, state.analysis, offsets, fold_batchnorm=state.fold_batchnorm)
    state.refresh()
    return unexplained


def reconstruct(state: RepairState, reference: onnx.ModelProto, feeds, *, rounds: int | None = DEFAULT_ROUNDS,
                ridge: float = REFIT_RIDGE, progress: bool = False) -> SequentialReport:
    """Re-fit every consumer downstream of a removed channel on the pruned model's inputs (edits
    ``state.model``); ``reference`` is the model before any repair, ``feeds()`` a new calibration stream."""
    report = SequentialReport()
    affected = state.affected_nodes()
    sites, report.skipped = reconstruction_sites(state, affected)
    if not sites:
        return report
    depth = depths(state.analysis.index, sites)
    needed = max(depth.values()) + 1
    report.rounds = needed if rounds is None else min(rounds, needed)
    report.exact = report.rounds == needed
    ref = {"model": from_proto(reference), "nodes": {n.name: n for n in reference.graph.node}}
    added: dict = {}
    for r in range(report.rounds):
        active = [s for s in sites if depth[s.space] >= r]
        moments = _measure(state, reference, active, feeds, progress)
        left = _refit_round(state, ref, active, moments, ridge, report, added)
        report.unexplained.append(float(np.mean(left)))
        sites, _ = reconstruction_sites(state, affected)
        sites = [s for s in sites if s.space in depth]
    index = state.analysis.index
    report.refitted.sort(key=lambda n: index.node_pos.get(n, 0))
    log.info("%s", report.summary_line())
    return report
