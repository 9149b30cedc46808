"""The validation table: one row per output, the worst one marked."""
from __future__ import annotations

from ..report.text import num, percent, table
from .metrics import OutputMetrics

HEADERS = ("output", "shape", "max_abs", "mean_abs", "max_rel", "cosine", "top1", "top5", "tol_x", "status")


def _status(m: OutputMetrics) -> str:
    if m.problem:
        return f"FAIL ({m.problem})"
    return "ok" if m.passed else "FAIL"


def metrics_table(outputs: list[OutputMetrics], worst: str | None) -> list[str]:
    """``tol_x`` is the tolerance ratio (the more lenient criterion): 1.0 means exactly at the tolerance."""
    rows = []
    for m in outputs:
        name = f"{m.name} <- worst" if m.name == worst and len(outputs) > 1 else m.name
        rows.append((name, "x".join(map(str, m.shape)) or "scalar", num(m.max_abs), num(m.mean_abs), num(m.max_rel),
                     num(m.cosine, 6), percent(m.top1), percent(m.top5), num(m.tolerance_ratio, 2), _status(m)))
    return table(HEADERS, rows, left=2)
