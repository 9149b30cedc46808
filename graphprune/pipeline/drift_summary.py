"""How far the outputs moved, in the words of a summary: every drift metric, where it was
measured, and (on random inputs) how to measure it on real data."""
from __future__ import annotations

from ..report.text import num
from ..vocabulary import DRIFT_METRICS

#: said whenever a drift comes from random inputs
RANDOM_HINT = ("random inputs say little about accuracy on real data: measure on yours with --data DIR (checks "
               "only) or --calib DIR (data-driven pruning with repair, checked on held-out samples)")
#: what each metric is, in a summary
METRIC_TEXT = {"cosine": "1 - mean cosine", "top1": "1 - top-1 agreement", "rel": "relative L2 error"}


def per_output_text(report) -> str:
    parts = []
    for o in report.outputs:
        text = f"{o.name}: cosine {o.cosine:.4f}"
        if getattr(o, "top1", None) is not None:
            text += f", top-1 agreement {100 * o.top1:.1f}%"
        parts.append(text)
    return "; ".join(parts[:4]) + (f" (+{len(parts) - 4} outputs)" if len(parts) > 4 else "")


def drift_lines(report, metric: str = "cosine") -> list[str]:
    """The drift lines of a summary: per output (lowest cosine, top-1), then every metric with ``metric`` first."""
    lines = ["drift vs original: " + per_output_text(report)]
    drift = getattr(report, "drift", None)
    if drift is None:
        return lines
    order = [metric] + [m for m in DRIFT_METRICS if m != metric]
    values = ", ".join(f"{m} {num(drift.value(m), 4)} ({METRIC_TEXT[m]})" for m in order if drift.value(m) is not None)
    data = str(report.data)
    where = data if "sample" in data or "inputs" in data else f"samples of {data}"  # a file name alone
    lines.append(f"outputs moved by {values}, worst output, on {report.samples} {where}")
    if str(report.data).startswith("seeded random inputs"):
        lines.append(f"note: {RANDOM_HINT}")
    return lines
