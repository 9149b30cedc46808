"""What compensation needs from calibration: the mean of every removed position of every
activation space a consumer reads (and the activation's shape for evaluating the consumer)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..analysis.types import Analysis
from ..calibration.sites import consumer_sites
from ..calibration.stats import CalibrationStats
from ..errors import DataError
from ..rules.base import Space


@dataclass(frozen=True)
class SpaceMeans:
    """Removed ``positions`` of ``space`` are replaced by ``values`` (the activation is ``shape``)."""

    space: Space
    positions: np.ndarray
    values: np.ndarray
    shape: tuple

    def to_dict(self) -> dict:
        return {"tensor": self.space.tensor, "axis": self.space.axis, "shape": list(self.shape),
                "positions": [int(p) for p in self.positions], "mean": [float(v) for v in self.values]}


def compensation_data(analysis: Analysis, removed: dict, stats: CalibrationStats) -> list[SpaceMeans]:
    """For every consumer site of every pruned group: removed positions and their calibration mean."""
    out: dict[Space, SpaceMeans] = {}
    groups = {g.id: g for g in analysis.groups}
    for gid, slots in removed.items():
        slots = np.asarray(slots, dtype=np.int64)
        if slots.size == 0:
            continue
        group = groups[gid]
        for site in consumer_sites(group, analysis.index):
            st = stats.get(site.activation)
            if site.activation in out or st is None or st.count == 0:
                continue
            positions = np.nonzero(np.isin(group.slot_of[site.activation], slots))[0].astype(np.int64)
            if positions.size:
                shape = (1,) + tuple(st.shape[1:]) if st.shape else ()
                out[site.activation] = SpaceMeans(site.activation, positions, st.mean[positions], shape)
    return [out[s] for s in sorted(out)]


def data_to_dict(data: list[SpaceMeans]) -> dict:
    return {"mode": "mean", "spaces": [d.to_dict() for d in data]}


def data_from_dict(entry: dict | None, source: str = "plan") -> list[SpaceMeans]:
    if not entry:
        return []
    try:
        return [SpaceMeans(Space(str(d["tensor"]), int(d["axis"])), np.asarray(d["positions"], dtype=np.int64),
                           np.asarray(d["mean"], dtype=np.float64), tuple(int(v) for v in d["shape"]))
                for d in entry.get("spaces", ())]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{source}: malformed compensation entry ({exc})") from exc
