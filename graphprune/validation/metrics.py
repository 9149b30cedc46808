"""Per-output comparison metrics, accumulated over samples without keeping the outputs.

For reference ``r`` and candidate ``c`` (all samples of one output, computed in float64):

* ``max_abs``  = max |c - r|;  ``mean_abs`` = mean |c - r| over every element of every sample.
* ``max_rel``  = max |c - r| / max |r| — error relative to the output's scale (a per-element
  ratio explodes near zero and says nothing); 0 when both are 0, inf when only ``r`` is 0.
* ``cosine``   = the *lowest* per-sample cosine similarity of the flattened outputs (1 for two
  zero vectors, 0 when exactly one is zero).
* ``violation`` = max |c - r| / (atol + rtol |r|): the tolerance test of ``numpy.allclose``
  as a number, element by element.
* ``scale_violation`` = max |c - r| / (atol + rtol_of_scale max |r|) (see :func:`scale_violation`;
  None when no ``rtol_of_scale`` is given): the error measured against the output's scale,
  which is what float rounding grows with.
* the output passes when either ratio is <= 1 (``tolerance_ratio``, the smaller of the two),
  its shape agrees and its non-finite values agree.
* ``top1`` / ``top5`` (outputs that look like class scores, see :func:`looks_like_scores`):
  the fraction of rows whose reference arg-max is the candidate's arg-max / is among the
  candidate's five highest scores (top-5 only when there are more than five classes).

Non-finite values agree when both are NaN or both are the same infinity; they are excluded
from the error statistics and every disagreement is counted in ``nonfinite_mismatch``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: top-5 agreement needs more classes than this to mean anything
TOPK = 5


@dataclass(frozen=True)
class OutputMetrics:
    """How one output of the candidate compares with the reference (see module docstring)."""

    name: str
    shape: tuple[int, ...]
    passed: bool
    max_abs: float
    mean_abs: float
    max_rel: float
    cosine: float
    violation: float
    top1: float | None = None
    top5: float | None = None
    nonfinite_mismatch: int = 0
    problem: str | None = None
    scale_violation: float | None = None

    @property
    def tolerance_ratio(self) -> float:
        """How far the output is from passing (<= 1 passes): the more lenient of the two criteria."""
        if self.scale_violation is None:
            return self.violation
        return min(self.violation, self.scale_violation)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["shape"] = list(self.shape)
        out["tolerance_ratio"] = self.tolerance_ratio
        return {k: _jsonable_float(v) for k, v in out.items()}


def _jsonable_float(value):
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)  # JSON has no inf/nan
    return value


def looks_like_scores(shape: tuple[int, ...], dtype: np.dtype) -> bool:
    """Float output of shape (N, K) or (N, K, 1, ...) with K >= 2: scores over K classes."""
    if np.dtype(dtype).kind != "f":
        return False
    dims = list(shape)
    while len(dims) > 2 and dims[-1] == 1:
        dims.pop()
    return len(dims) == 2 and dims[1] >= 2


def scale_violation(max_abs: float, max_ref: float, *, atol: float, rtol_of_scale: float) -> float:
    """``max_abs / (atol + rtol_of_scale * max_ref)``: <= 1 when an output's largest error is within
    ``rtol_of_scale`` of its largest reference magnitude (plus ``atol``); 0 for no error at all."""
    if max_abs == 0:
        return 0.0
    allowed = atol + rtol_of_scale * max_ref
    return max_abs / allowed if allowed > 0 else float("inf")


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """Dot product of two flat vectors without BLAS (whose threads spin: 20x slower on a busy machine)."""
    return float(np.einsum("i,i->", a, b))


def cosine(r: np.ndarray, c: np.ndarray) -> float:
    """Cosine similarity of two flat vectors (1 for two zero vectors, 0 when exactly one is zero)."""
    return cosine_of(dot(r, r), dot(c, c), dot(r, c))


def cosine_of(rr: float, cc: float, rc: float) -> float:
    """The cosine from the squared norms ``rr``, ``cc`` and the dot product ``rc``."""
    if rr == 0.0 and cc == 0.0:
        return 1.0
    if rr == 0.0 or cc == 0.0:
        return 0.0
    return float(np.clip(rc / (np.sqrt(rr) * np.sqrt(cc)), -1.0, 1.0))


class OutputAccumulator:
    """Feed it (reference, candidate) pairs of one output; :meth:`result` gives the metrics."""

    def __init__(self, name: str, *, rtol: float, atol: float, rtol_of_scale: float | None = None):
        self.name, self.rtol, self.atol, self.rtol_of_scale = name, rtol, atol, rtol_of_scale
        self.shape: tuple[int, ...] = ()
        self.problem: str | None = None
        self.max_abs = 0.0
        self.sum_abs = 0.0
        self.count = 0
        self.max_ref = 0.0
        self.cosine = 1.0
        self.violation = 0.0
        self.nonfinite_mismatch = 0
        self.rows = 0
        self.top1_hits = 0
        self.top5_hits = 0
        self.scores = True
        self.classes = 0

    def update(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        reference, candidate = np.asarray(reference), np.asarray(candidate)
        self.shape = tuple(reference.shape)
        if self.problem:
            return
        if reference.shape != candidate.shape:
            self.problem = f"shape {_fmt(candidate.shape)} differs from the reference's {_fmt(reference.shape)}"
            return
        r = reference.astype(np.float64, copy=False).ravel()
        c = candidate.astype(np.float64, copy=False).ravel()
        finite = np.isfinite(r) & np.isfinite(c)
        if not finite.all():
            same = (np.isnan(r) & np.isnan(c)) | (r == c)
            self.nonfinite_mismatch += int((~finite & ~same).sum())
            r, c = r[finite], c[finite]
        self._update_errors(r, c)
        self._update_topk(reference, candidate)

    def _update_errors(self, r: np.ndarray, c: np.ndarray) -> None:
        if r.size == 0:
            return
        diff = np.abs(c - r)
        worst = float(diff.max())
        self.max_abs = max(self.max_abs, worst)
        self.sum_abs += float(diff.sum())
        self.count += diff.size
        self.max_ref = max(self.max_ref, float(np.abs(r).max()))
        if worst > 0:  # identical samples have cosine exactly 1, whatever the rounding of the norms
            self.cosine = min(self.cosine, cosine(r, c))
        allowed = self.atol + self.rtol * np.abs(r)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(diff == 0, 0.0, diff / allowed)
        self.violation = max(self.violation, float(ratio.max()))

    def _update_topk(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        if not self.scores or not looks_like_scores(reference.shape, reference.dtype):
            self.scores = False
            return
        self.classes = reference.shape[1]
        r = reference.reshape(reference.shape[0], self.classes)
        c = candidate.reshape(candidate.shape[0], self.classes)
        ref_top = np.argmax(r, axis=1)
        self.top1_hits += int((np.argmax(c, axis=1) == ref_top).sum())
        if self.classes > TOPK:
            cand_top5 = np.argpartition(-c, TOPK - 1, axis=1)[:, :TOPK]
            self.top5_hits += int((cand_top5 == ref_top[:, None]).any(axis=1).sum())
        self.rows += r.shape[0]

    def result(self) -> OutputMetrics:
        if self.problem:
            nan = float("nan")
            return OutputMetrics(self.name, self.shape, False, nan, nan, nan, nan, float("inf"), problem=self.problem)
        if self.max_ref > 0:
            max_rel = self.max_abs / self.max_ref
        else:
            max_rel = 0.0 if self.max_abs == 0 else float("inf")
        top1 = top5 = None
        if self.scores and self.rows:
            top1 = self.top1_hits / self.rows
            top5 = self.top5_hits / self.rows if self.classes > TOPK else None
        problem = (f"{self.nonfinite_mismatch} NaN/inf value(s) differ from the reference"
                   if self.nonfinite_mismatch else None)
        by_scale = None
        if self.rtol_of_scale is not None:
            by_scale = scale_violation(self.max_abs, self.max_ref, atol=self.atol, rtol_of_scale=self.rtol_of_scale)
        passed = min(self.violation, by_scale if by_scale is not None else self.violation) <= 1.0
        return OutputMetrics(self.name, self.shape, passed and not self.nonfinite_mismatch, self.max_abs,
                             self.sum_abs / self.count if self.count else 0.0, max_rel, self.cosine,
                             self.violation, top1, top5, self.nonfinite_mismatch, problem, by_scale)


def _fmt(shape) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def compare_arrays(name: str, references, candidates, *, rtol: float = 1e-4, atol: float = 1e-5,
                   rtol_of_scale: float | None = None) -> OutputMetrics:
    """Metrics of one output over paired lists of samples (convenience for tests and callers)."""
    acc = OutputAccumulator(name, rtol=rtol, atol=atol, rtol_of_scale=rtol_of_scale)
    for r, c in zip(references, candidates, strict=True):
        acc.update(r, c)
    return acc.result()
