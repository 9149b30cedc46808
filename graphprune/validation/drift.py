"""Drift: how far a candidate's outputs moved from the original's, as one number per metric.

For every output ``k`` and sample ``s`` (one feed), with ``y`` the candidate's and ``y₀`` the
original's output flattened per sample (computed in float64):

* ``cosine`` = 1 − mean over samples of cos(y, y₀) (two zero vectors have cosine 1, exactly one
  zero vector cosine 0), so ``--max-drift 0.01 --metric cosine`` means a mean cosine ≥ 0.99;
* ``top1`` = 1 − the fraction of rows whose arg-max over the class axis (the last axis, after
  dropping trailing axes of size 1) agrees with the original's; only outputs that look like
  class scores (float, ``N x K`` with ``K ≥ 2``: :func:`~.metrics.looks_like_scores`) have one;
* ``rel`` = ‖y − y₀‖ / ‖y₀‖ with both norms taken over all samples (‖y − y₀‖ when y₀ is 0).

The drift of a model is the worst (largest) output's. A non-finite value where the original's
is finite (or a different non-finite value) makes that output's drift infinite.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..vocabulary import DRIFT_METRICS
from .metrics import cosine_of, dot, looks_like_scores

#: what each metric means, for summaries and help
METRIC_WORDS = {"cosine": "1 - mean cosine similarity", "top1": "1 - top-1 agreement",
                "rel": "relative L2 error"}


def check_metric(metric: str) -> str:
    if metric not in DRIFT_METRICS:
        raise UsageError(f"--metric must be one of {', '.join(DRIFT_METRICS)}, got {metric!r}")
    return metric


@dataclass(frozen=True)
class OutputDrift:
    """The drift of one output by every metric (``top1`` is None for outputs that are not scores)."""

    name: str
    cosine: float
    rel: float
    top1: float | None = None

    def value(self, metric: str) -> float | None:
        return getattr(self, metric)


@dataclass(frozen=True)
class Drift:
    """The drift of every output over ``samples`` samples; :meth:`value` is the worst output's."""

    outputs: tuple[OutputDrift, ...]
    samples: int

    def value(self, metric: str) -> float | None:
        """The worst output's drift by ``metric`` (None: no output has a value, e.g. top1 without scores)."""
        values = [v for v in (o.value(metric) for o in self.outputs) if v is not None]
        return max(values) if values else None

    def worst(self, metric: str) -> str | None:
        """The name of the output with the largest drift by ``metric``."""
        ranked = [(o.value(metric), o.name) for o in self.outputs if o.value(metric) is not None]
        return max(ranked)[1] if ranked else None

    def require(self, metric: str) -> float:
        """:meth:`value`, or a usage error naming the outputs when the metric does not apply."""
        value = self.value(metric)
        if value is None:
            shapes = ", ".join(o.name for o in self.outputs)
            raise UsageError(f"--metric {metric} needs an output of class scores (shape N x K); this model's "
                             f"outputs ({shapes}) have none: use --metric cosine or rel")
        return value

    def to_dict(self) -> dict:
        return {"samples": self.samples,
                **{m: _jsonable(self.value(m)) for m in DRIFT_METRICS},
                "outputs": [{"name": o.name, **{m: _jsonable(o.value(m)) for m in DRIFT_METRICS}}
                            for o in self.outputs]}


def _jsonable(value):
    if value is None or np.isfinite(value):
        return value
    return str(value)


class _OutputSums:
    """Running sums of one output over samples."""

    def __init__(self, name: str):
        self.name = name
        self.cosine_sum = 0.0
        self.squared_error = 0.0
        self.squared_reference = 0.0
        self.rows = 0
        self.agreeing = 0
        self.scores = True
        self.broken = False

    def update(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        reference, candidate = np.asarray(reference), np.asarray(candidate)
        if reference.shape != candidate.shape:
            self.broken = True
            return
        r = reference.astype(np.float64, copy=False).ravel()
        c = candidate.astype(np.float64, copy=False).ravel()
        rr, cc = dot(r, r), dot(c, c)
        if not (math.isfinite(rr) and math.isfinite(cc)):  # a NaN or inf somewhere (or an overflow)
            if not _same_nonfinite(r, c):
                self.broken = True
                return
            finite = np.isfinite(r)
            r, c = r[finite], c[finite]
            rr, cc = dot(r, r), dot(c, c)
        difference = c - r
        error = dot(difference, difference)
        # identical samples have cosine exactly 1, whatever the rounding of the norms
        self.cosine_sum += 1.0 if error == 0.0 else cosine_of(rr, cc, dot(r, c))
        self.squared_error += error
        self.squared_reference += rr
        self._update_top1(reference, candidate)

    def _update_top1(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        if not self.scores or not looks_like_scores(reference.shape, reference.dtype):
            self.scores = False
            return
        classes = reference.shape[1]
        r = reference.reshape(reference.shape[0], classes)
        c = candidate.reshape(candidate.shape[0], classes)
        self.agreeing += int((np.argmax(r, axis=1) == np.argmax(c, axis=1)).sum())
        self.rows += r.shape[0]

    def result(self, samples: int) -> OutputDrift:
        if self.broken:
            return OutputDrift(self.name, float("inf"), float("inf"), float("inf") if self.scores else None)
        cos = 1.0 - self.cosine_sum / samples if samples else 0.0
        num = np.sqrt(self.squared_error)
        rel = float(num / np.sqrt(self.squared_reference)) if self.squared_reference > 0 else float(num)
        # disagreeing rows over rows (not 1 - agreeing / rows: 1 - 0.98 is 0.020000000000000018)
        top1 = (self.rows - self.agreeing) / self.rows if self.scores and self.rows else None
        return OutputDrift(self.name, max(float(cos), 0.0), rel, top1)


def _same_nonfinite(r: np.ndarray, c: np.ndarray) -> bool:
    """True when the candidate is non-finite exactly where the reference is, with the same values."""
    bad_r, bad_c = ~np.isfinite(r), ~np.isfinite(c)
    if not bad_r.any() and not bad_c.any():
        return True
    if not np.array_equal(bad_r, bad_c):
        return False
    same = (np.isnan(r[bad_r]) & np.isnan(c[bad_c])) | (r[bad_r] == c[bad_c])
    return bool(same.all())


class DriftAccumulator:
    """Feed it each sample's outputs (original, candidate); :meth:`result` gives the :class:`Drift`."""

    def __init__(self, names: Sequence[str]):
        self.sums = [_OutputSums(n) for n in names]
        self.samples = 0

    def update(self, reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> None:
        if len(reference) != len(self.sums) or len(candidate) != len(self.sums):
            raise ValueError(f"expected {len(self.sums)} outputs, got {len(reference)} and {len(candidate)}")
        for sums, r, c in zip(self.sums, reference, candidate):
            sums.update(r, c)
        self.samples += 1

    def result(self) -> Drift:
        return Drift(tuple(s.result(self.samples) for s in self.sums), self.samples)


def measure_drift(references: Sequence[Sequence[np.ndarray]], candidates: Sequence[Sequence[np.ndarray]],
                  names: Sequence[str] | None = None) -> Drift:
    """The drift of ``candidates`` (per sample, a list of outputs) against ``references``."""
    if len(references) != len(candidates):
        raise ValueError(f"{len(references)} reference samples but {len(candidates)} candidate samples")
    count = len(references[0]) if references else 0
    acc = DriftAccumulator(list(names) if names is not None else [f"output{k}" for k in range(count)])
    for r, c in zip(references, candidates):
        acc.update(r, c)
    return acc.result()
