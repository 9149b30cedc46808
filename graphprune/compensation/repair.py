"""The repairs of a pruning decision, run in one place and in one order, before surgery.

    state = RepairState(model, analysis, removed)
    report = repair(state, methods, compensation=means, reference=reference, feeds=feeds)
    # state.model is repaired, state.analysis / state.removed describe it; then surgery

``methods`` are names of :data:`graphprune.vocabulary.REPAIR_NAMES`, in running order:

* ``mean`` / ``refit`` (:mod:`.apply`): the removed channels' calibration means (and, with
  ``refit``, their least-squares reconstruction from the kept channels of the original model) are
  folded into the consumers; their data comes with the decision (and travels in plan files);
* ``sequential`` (:mod:`.sequential`): consumers re-fitted on the pruned model's own inputs;
  ``mean``/``refit`` then only compensate the consumers it cannot re-fit;
* ``statistics`` (:mod:`.statistics`): producer outputs restored to their calibration mean and
  variance, last, so that it corrects whatever the repairs before it left.

``sequential`` and ``statistics`` measure the model as it is being repaired, so they need the
calibration samples themselves (``feeds()``: a new stream per pass) and the ``reference``
model: the graph before any repair, whose tensors keep their names through every repair.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .apply import CompensationReport, compensate
from .state import RepairState

log = logging.getLogger(__name__)


@dataclass
class RepairReport:
    methods: tuple = ()
    compensation: CompensationReport | None = None
    sequential: object = None   # SequentialReport
    statistics: object = None   # StatisticsReport
    samples: int | None = None

    def summary_lines(self) -> list[str]:
        parts = (self.compensation, self.sequential, self.statistics)
        lines = [p.summary_line() for p in parts if p is not None and not self._nothing_left_to_mean(p)]
        if self.samples is not None and (self.sequential is not None or self.statistics is not None):
            lines.append(f"repair measured on {self.samples} calibration samples")
        return lines

    def _nothing_left_to_mean(self, part) -> bool:
        """Mean compensation that found nothing to do because sequential reconstruction re-fitted
        every consumer (the summary would say "0 consumer nodes corrected")."""
        c = self.compensation
        return (part is c and self.sequential is not None and not c.compensated and not c.skipped
                and not c.refit)

    def to_dict(self) -> dict:
        out = {"methods": list(self.methods), "samples": self.samples}
        for name in ("compensation", "sequential", "statistics"):
            part = getattr(self, name)
            out[name] = part.to_dict() if part is not None else None
        return out


#: the sequential and statistics repairs read the first calibration samples: at least this many,
#: and more while their inputs total less than REPAIR_INPUT_BYTES. They keep every sample's live
#: tensors while they run: a convolution gives thousands of rows per sample, a dense layer one, so
#: small inputs (a digit, a sentence) are worth many samples and big images are not
REPAIR_SAMPLES = 64
REPAIR_INPUT_BYTES = 64 << 20


def counted(feeds, samples: int = REPAIR_SAMPLES, budget: int = REPAIR_INPUT_BYTES):
    """``feeds`` (a callable returning a new stream, or a list of feeds) as a callable giving the
    samples the repairs read (see :data:`REPAIR_SAMPLES`), and a way to read how many it gave."""
    seen = {"count": 0}
    source = feeds if callable(feeds) else (lambda: iter(feeds))

    def stream():
        seen["count"], size = 0, 0
        for feed in source():
            if seen["count"] >= samples and size >= budget:
                return
            seen["count"] += 1
            size += sum(np.asarray(v).nbytes for v in feed.values())
            yield feed

    return stream, seen


def _refitted_later(state: RepairState, methods) -> frozenset:
    """Consumer nodes that sequential reconstruction will re-fit (mean compensation leaves them)."""
    if "sequential" not in methods:
        return frozenset()
    from .sequential import reconstruction_sites

    sites, _ = reconstruction_sites(state, state.affected_nodes())
    return frozenset(c.node for site in sites for c in site.consumers)


def repair(state: RepairState, methods, *, compensation=None, reference=None, feeds=None,
           progress: bool = False) -> RepairReport:
    """Run ``methods`` on ``state`` (edited in place; its analysis and removed slots follow)."""
    from ..vocabulary import DATA_REPAIRS

    report = RepairReport(tuple(methods))
    if compensation:
        report.compensation = compensate(state.model, state.analysis, list(compensation),
                                         fold_batchnorm=state.fold_batchnorm, leave=_refitted_later(state, methods))
        state.refresh()
    if not DATA_REPAIRS & set(methods):
        return report
    if reference is None or feeds is None:
        raise ValueError("sequential and statistics repairs need the reference model and calibration feeds")
    stream, seen = counted(feeds)
    if "sequential" in methods:
        from .sequential import reconstruct

        report.sequential = reconstruct(state, reference, stream, progress=progress)
    if "statistics" in methods:
        from .statistics import correct_statistics

        report.statistics = correct_statistics(state, reference, stream, progress=progress)
    report.samples = seen["count"]
    return report
