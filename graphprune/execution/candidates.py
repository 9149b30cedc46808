"""Candidate evaluations: the drift of a prepared model when some slots are removed.

A :class:`Candidate` says which slots each group loses (group id -> slot ids) and on how many of
the shared feeds to measure; it never carries a model. Its drift is measured the way the pruning
oracle defines removal: every consumer slice of every removed slot is zeroed
(:func:`graphprune.oracle.zeroed`). The zeroed weights are fed to one onnxruntime session
in which the consumer initializers are also graph inputs, so no model is rebuilt per candidate
(a candidate touching a group whose channels meet an activation-by-activation contraction gets
its own masked model). ``sensitivity`` and the budget search both measure through here, each
candidate an independent task of an :class:`~graphprune.execution.executor.Executor`.

Sessions run with onnxruntime's graph optimizations on and one thread, so a candidate's drift
is the same number whichever worker computes it (it differs from the exact, unoptimized
sessions of the final check by float rounding only).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..analysis.types import Analysis
from ..errors import PruningError
from ..rules.base import CONSUMER
from ..validation.drift import Drift, DriftAccumulator
from ..validation.runner import make_session
from .executor import Context, Executor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """Slots removed per group (group id -> sorted slot ids) and how many feeds to measure on (None: all)."""

    removed: Mapping = field(default_factory=dict)
    samples: int | None = None

    @staticmethod
    def of(removed: Mapping, samples: int | None = None) -> "Candidate":
        """A candidate with plain-int slot tuples (small to pickle), empty groups dropped."""
        clean = {int(g): tuple(int(s) for s in np.asarray(v).ravel()) for g, v in removed.items() if len(v)}
        return Candidate(clean, samples)


def analysis_signature(analysis: Analysis) -> tuple:
    """What identifies the prunable groups (ids, slots, first parameter): a worker's analysis must agree."""
    return tuple((g.id, g.n_slots, str(g.representative)) for g in analysis.prunable_groups)


def consumer_params(group) -> list:
    return [p for p in group.params if CONSUMER in p.roles]


def overridable(model: onnx.ModelProto, names: set[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose initializers ``names`` are also graph inputs (fed per candidate)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    declared = {i.name for i in out.graph.input}
    for init in out.graph.initializer:
        if init.name in names and init.name not in declared:
            out.graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    if out.ir_version < 4:
        out.ir_version = 4
    return out


def run_feeds(session, feeds: Sequence[dict], outputs: list[str], weights: Mapping | None = None) -> list[list]:
    """Every feed's outputs (in the session's dtypes); ``weights`` override initializers fed as inputs."""
    inputs = {i.name for i in session.get_inputs()}
    return [session.run(outputs, {**{k: v for k, v in feed.items() if k in inputs}, **(weights or {})})
            for feed in feeds]


@dataclass(frozen=True)
class ZeroingPayload:
    """What every worker of a zeroing evaluation receives once."""

    model: bytes
    feeds: tuple
    signature: tuple
    strict_initializer_inputs: bool = False


class ZeroingState:
    """A worker's session over the prepared model, its analysis and the original's outputs."""

    def __init__(self, payload: ZeroingPayload):
        from ..analysis.builder import analyze
        from ..graph.index import GraphIndex
        from ..graph.model import from_proto

        proto = onnx.load_from_string(payload.model)
        self.graph = from_proto(proto)
        self.analysis = analyze(GraphIndex(self.graph, strict_initializer_inputs=payload.strict_initializer_inputs))
        if analysis_signature(self.analysis) != payload.signature:
            raise PruningError("internal error: a worker's analysis of the model differs from the caller's")
        self.groups = {g.id: g for g in self.analysis.groups}
        self.feeds = list(payload.feeds)
        self.outputs = [o.name for o in proto.graph.output]
        names = {p.initializer for g in self.analysis.prunable_groups for p in consumer_params(g)}
        self.session = make_session(overridable(proto, names), exact=False, threads=1, label="candidate model")
        self.reference = run_feeds(self.session, self.feeds, self.outputs)

    def zeroed_weights(self, removed: Mapping) -> dict:
        weights: dict[str, np.ndarray] = {}
        for gid, slots in removed.items():
            group = self.groups[gid]
            for p in consumer_params(group):
                arr = weights.get(p.initializer)
                if arr is None:
                    arr = weights[p.initializer] = np.array(self.analysis.index.array(p.initializer), copy=True)
                where = [slice(None)] * arr.ndim
                where[p.axis] = group.removed_positions(p.space, np.asarray(slots, dtype=np.int64))
                arr[tuple(where)] = 0
        return weights

    def drift(self, candidate: Candidate) -> Drift:
        count = len(self.feeds) if candidate.samples is None else min(candidate.samples, len(self.feeds))
        feeds = self.feeds[:count]
        if any(self.groups[g].contractions for g in candidate.removed):
            from ..oracle import zeroed

            masked = zeroed(self.graph, self.analysis, dict(candidate.removed))
            values = run_feeds(make_session(masked, exact=False, threads=1, label="candidate model"), feeds,
                               self.outputs)
        else:
            values = run_feeds(self.session, feeds, self.outputs, self.zeroed_weights(candidate.removed))
        return drift_of(self.reference[:count], values, self.outputs)


def drift_of(reference: Sequence, values: Sequence, names: Sequence[str]) -> Drift:
    acc = DriftAccumulator(names)
    for r, v in zip(reference, values):
        acc.update(r, v)
    return acc.result()


def zeroing_state(payload: ZeroingPayload) -> ZeroingState:
    return ZeroingState(payload)


def zeroed_drift(state: ZeroingState, candidate: Candidate) -> Drift:
    """Task function: the drift of ``candidate`` with its removed slots' consumer slices zeroed."""
    return state.drift(candidate)


def zeroing_context(model, analysis: Analysis, feeds: Sequence[dict], *,
                    strict_initializer_inputs: bool = False) -> Context:
    """The shared part of zeroing evaluations of ``model`` (the analysed editable graph) on ``feeds``."""
    from ..graph.model import to_proto

    payload = ZeroingPayload(to_proto(model).SerializeToString(), tuple(feeds), analysis_signature(analysis),
                             strict_initializer_inputs)
    return Context(zeroing_state, payload, label="zeroed-slice evaluations")


def measure(executor: Executor, context: Context, candidates: Sequence[Candidate], *, fn=zeroed_drift,
            progress: str | None = None) -> list[Drift]:
    """The drift of every candidate, in order (``fn`` is the task function the context's state serves)."""
    return executor.map(fn, list(candidates), context=context, progress=progress)
