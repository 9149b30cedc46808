"""The budget search's evaluation engine: candidates measured through an executor.

Two ways to measure a :class:`~graphprune.execution.candidates.Candidate` (which slots each
group loses), both independent tasks over the search's calibration samples:

* **zeroed slices** (:mod:`graphprune.execution.candidates`): the removed slots' consumer slices
  are zeroed in one shared session, exactly the pruning oracle's model. Fast; used for the
  per-group sensitivity curves, and for everything when nothing is repaired (then it *is* the
  pruned model);
* **pruned and repaired** (:func:`repaired_drift`): a worker copies the prepared model, computes
  the candidate's repair data (:func:`.repair.repair_data`), runs the ``apply`` stage on it (the
  code that writes the model) and measures the result. Used for every combined candidate when
  the prune repairs, so the search measures what it would write.

Every worker receives the prepared model's bytes, the samples (and, to repair, the calibration
statistics) once; a task is a candidate.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import onnx

from ..errors import PruningError
from ..execution.candidates import (Candidate, analysis_signature, drift_of, measure, run_feeds, zeroed_drift,
                                    zeroing_context)
from ..execution.executor import Context, Executor
from ..validation.drift import Drift
from ..validation.runner import make_session
from .apply import apply
from .options import Options
from .repair import repair_data, repairs
from .values import Analyzed, Prepared, Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepairPayload:
    """What every worker of a pruned-and-repaired evaluation receives once."""

    model: bytes
    feeds: tuple
    signature: tuple
    stats: object
    options: Options
    #: the samples the sequential and statistics repairs are fitted on (not the measured ``feeds``)
    repair_feeds: tuple = ()


class RepairState:
    """A worker's prepared model, the original's outputs, and what a repair needs."""

    def __init__(self, payload: RepairPayload):
        self.proto = onnx.load_from_string(payload.model)
        self.payload = payload
        self.feeds = list(payload.feeds)
        self.outputs = [o.name for o in self.proto.graph.output]
        session = make_session(self.proto, exact=False, threads=1, label="candidate model")
        self.reference = run_feeds(session, self.feeds, self.outputs)

    def analyzed(self) -> Analyzed:
        """A fresh editable copy of the prepared model and its analysis (the copy shares the weights' bytes)."""
        from ..analysis.builder import analyze
        from ..graph.index import GraphIndex
        from ..graph.model import from_proto

        graph = from_proto(self.proto)
        strict = self.payload.options.strict_initializer_inputs
        analysis = analyze(GraphIndex(graph, strict_initializer_inputs=strict))
        if analysis_signature(analysis) != self.payload.signature:
            raise PruningError("internal error: a worker's analysis of the model differs from the caller's")
        return Analyzed(Prepared(Source(self.proto, "candidate"), graph), analysis)


def repair_state(payload: RepairPayload) -> RepairState:
    return RepairState(payload)


def repaired_drift(state: RepairState, candidate: Candidate) -> Drift:
    """Task function: prune a copy by ``candidate`` with its repair, run it, and measure its drift."""
    from ..graph.model import to_proto

    analyzed = state.analyzed()
    removed = {g: np.asarray(s, dtype=np.int64) for g, s in candidate.removed.items()}
    options = state.payload.options
    pruned = apply(analyzed, removed, options, feeds=list(state.payload.repair_feeds) or None,
                   compensation=repair_data(analyzed.analysis, removed, state.payload.stats, options))
    count = len(state.feeds) if candidate.samples is None else min(candidate.samples, len(state.feeds))
    session = make_session(to_proto(pruned.model), exact=False, threads=1, label="candidate model")
    return drift_of(state.reference[:count], run_feeds(session, state.feeds[:count], state.outputs), state.outputs)


def repair_context(analyzed: Analyzed, feeds: Sequence[dict], stats, options: Options,
                   repair_feeds: Sequence[dict] = ()) -> Context:
    """Workers that prune and repair candidates and measure them on ``feeds``; the sequential and
    statistics repairs are fitted on ``repair_feeds``."""
    from ..graph.model import to_proto

    # what a worker's apply reads, without the data arrays (the statistics travel on their own)
    calib = options.calib if isinstance(options.calib, (str, os.PathLike)) else "calibration arrays"
    quiet = replace(options, validate=False, count_macs=False, progress=False, executor=None, ray_address=None,
                    max_drift=None, search=False, objective=None, data=None, calib=calib)
    payload = RepairPayload(to_proto(analyzed.prepared.model).SerializeToString(), tuple(feeds),
                            analysis_signature(analyzed.analysis), stats, quiet, tuple(repair_feeds))
    return Context(repair_state, payload, label="pruned-and-repaired evaluations")


class Engine:
    """Measures the search's candidates: solo steps by zeroed slices on the first ``curve_samples``
    samples, combined candidates on all of them as they would be written (repaired when the
    prune repairs)."""

    def __init__(self, analyzed: Analyzed, stats, feeds: Sequence[dict], options: Options, executor: Executor,
                 curve_samples: int, repair_feeds: Sequence[dict] = ()):
        if not feeds:
            raise PruningError("internal error: the budget search has no calibration samples to measure on")
        self.executor = executor
        self.feeds = len(feeds)
        self.first_feed = dict(feeds[0])
        self.curve_samples = min(curve_samples, len(feeds))
        self.repaired = repairs(options, stats)
        self.zeroing = zeroing_context(analyzed.prepared.model, analyzed.analysis, feeds,
                                       strict_initializer_inputs=options.strict_initializer_inputs)
        self.repairing = repair_context(analyzed, feeds, stats, options, repair_feeds) if self.repaired else None
        self.progress = options.progress

    def solo(self, removed: Sequence[dict], label: str = "sensitivity") -> list[Drift]:
        """The drift of each slot selection with its consumer slices zeroed (curve samples)."""
        tasks = [Candidate.of(r, self.curve_samples) for r in removed]
        return measure(self.executor, self.zeroing, tasks, fn=zeroed_drift, progress=self._bar(label))

    def combined(self, removed: Sequence[dict], label: str = "search") -> list[Drift]:
        """The drift of each slot selection as it would be written (all search samples)."""
        tasks = [Candidate.of(r) for r in removed]
        if self.repairing is not None:
            return measure(self.executor, self.repairing, tasks, fn=repaired_drift, progress=self._bar(label))
        return measure(self.executor, self.zeroing, tasks, fn=zeroed_drift, progress=self._bar(label))

    def _bar(self, label: str) -> str | None:
        return label if self.progress else None
