"""What compensation needs from calibration, per activation space a consumer reads:

* the removed positions and their calibration **mean** (plain compensation), and the
  activation's shape (for evaluating the consumer);
* with ``refit``, the ridge least-squares **reconstruction** of the removed positions from the
  kept ones, ``x_R ≈ A x_K + b`` (``A`` is removed x kept, ``b`` the intercept), from the
  covariance of the calibration activations. A consumer whose weight maps one to one onto the
  space then folds ``W_R A`` into its kept weights and ``b`` into its bias, which minimizes its
  output's mean squared error on the calibration data (exactly so for 1x1 convs and dense
  layers); other consumers use the mean.

Plans carry these arrays (``to_dict``: lists for means, base64 float32 for matrices).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from ..analysis.types import Analysis
from ..calibration.sites import axis_slots, consumer_sites, whole
from ..calibration.stats import REFIT_RIDGE, CalibrationStats
from ..errors import DataError
from ..rules.base import Space


@dataclass(frozen=True)
class SpaceMeans:
    """Removed ``positions`` of ``space`` are replaced by ``values`` (the activation is ``shape``)."""

    space: Space
    positions: np.ndarray
    values: np.ndarray
    shape: tuple
    #: re-fit: kept positions, reconstruction matrix (removed x kept) and intercept (per removed position)
    kept: np.ndarray | None = None
    matrix: np.ndarray | None = None
    intercept: np.ndarray | None = None

    @property
    def refit(self) -> bool:
        return self.matrix is not None

    def to_dict(self) -> dict:
        out = {"tensor": self.space.tensor, "axis": self.space.axis, "shape": list(self.shape),
               "positions": [int(p) for p in self.positions], "mean": [float(v) for v in self.values]}
        if self.refit:
            out.update(kept=[int(k) for k in self.kept], intercept=[float(v) for v in self.intercept],
                       matrix=_encode(self.matrix))
        return out


def _encode(matrix: np.ndarray) -> dict:
    data = np.ascontiguousarray(matrix, dtype="<f4")
    return {"shape": list(data.shape), "float32_base64": base64.b64encode(data.tobytes()).decode("ascii")}


def _decode(entry: dict) -> np.ndarray:
    raw = base64.b64decode(entry["float32_base64"].encode("ascii"), validate=True)
    return np.frombuffer(raw, dtype="<f4").reshape([int(d) for d in entry["shape"]]).astype(np.float64)


def reconstruction(covariance: np.ndarray, mean: np.ndarray, removed: np.ndarray, kept: np.ndarray,
                   ridge: float = REFIT_RIDGE) -> tuple[np.ndarray, np.ndarray]:
    """``A`` (removed x kept) and ``b`` minimizing E‖x_R − A x_K − b‖² + λ‖A‖² (ridge λ relative)."""
    ckk = covariance[np.ix_(kept, kept)]
    crk = covariance[np.ix_(removed, kept)]
    lam = ridge * max(float(np.trace(ckk)) / max(kept.size, 1), 1e-12)
    matrix = np.linalg.solve(ckk + lam * np.eye(kept.size), crk.T).T
    return matrix, mean[removed] - matrix @ mean[kept]


def removed_mask(analysis: Analysis, removed: dict, space: Space, size: int) -> np.ndarray:
    """Which of the ``size`` positions of the whole axis ``space`` go: a position goes when its slot
    goes in any group with a space on that axis (the axis itself, or its heads or head dims)."""
    mask = np.zeros(size, dtype=bool)
    for group in analysis.groups:
        slots = np.asarray(removed.get(group.id, ()), dtype=np.int64)
        positions = axis_slots(group, space, size) if slots.size else None
        if positions is not None:
            mask |= np.isin(positions, slots)
    return mask


def compensation_data(analysis: Analysis, removed: dict, stats: CalibrationStats,
                      refit: bool = False) -> list[SpaceMeans]:
    """For every consumer site of every pruned group: removed positions, their mean (and re-fit).

    Positions are those of the activation's whole axis (a head removes all its dimensions)."""
    out: dict[Space, SpaceMeans] = {}
    groups = {g.id: g for g in analysis.groups}
    for gid, slots in removed.items():
        if len(slots) == 0:
            continue
        for site in consumer_sites(groups[gid], analysis.index):
            space = whole(site.activation)
            st = stats.get(space)
            if space in out or st is None or st.count == 0:
                continue
            mask = removed_mask(analysis, removed, space, st.size)
            if not mask.any():
                continue
            positions = np.nonzero(mask)[0].astype(np.int64)
            shape = (1,) + tuple(st.shape[1:]) if st.shape else ()
            extra = {}
            if refit and st.covariance is not None:
                kept = np.nonzero(~mask)[0].astype(np.int64)
                matrix, intercept = reconstruction(st.covariance, st.mean, positions, kept)
                matrix = matrix.astype("<f4").astype(np.float64)  # what a plan file carries (prune = plan + apply)
                extra = {"kept": kept, "matrix": matrix, "intercept": intercept}
            out[space] = SpaceMeans(space, positions, st.mean[positions], shape, **extra)
    return [out[s] for s in sorted(out)]


def data_to_dict(data: list[SpaceMeans]) -> dict:
    return {"mode": "refit" if any(d.refit for d in data) else "mean", "spaces": [d.to_dict() for d in data]}


def data_from_dict(entry: dict | None, source: str = "plan") -> list[SpaceMeans]:
    if not entry:
        return []
    try:
        out = []
        for d in entry.get("spaces", ()):
            extra = {}
            if d.get("matrix") is not None:
                extra = {"kept": np.asarray(d["kept"], dtype=np.int64), "matrix": _decode(d["matrix"]),
                         "intercept": np.asarray(d["intercept"], dtype=np.float64)}
            out.append(SpaceMeans(Space(str(d["tensor"]), int(d["axis"])), np.asarray(d["positions"], dtype=np.int64),
                                  np.asarray(d["mean"], dtype=np.float64), tuple(int(v) for v in d["shape"]), **extra))
        return out
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{source}: malformed compensation entry ({exc})") from exc
