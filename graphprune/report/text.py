"""Plain-text tables and number formatting shared by every ``summary_lines``."""
from __future__ import annotations

import math
from collections.abc import Sequence

_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def table(headers: Sequence[str], rows: Sequence[Sequence], *, left: int = 1) -> list[str]:
    """Align ``rows`` under ``headers``; the first ``left`` columns are left-aligned, the rest right."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row):
        parts = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return [line(cells[0]), rule, *(line(r) for r in cells[1:])]


def si(value: float, unit: str = "") -> str:
    """``1.23G``-style count (decimal prefixes)."""
    if value is None:
        return "-"
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.3g}{prefix}{unit}"
    return f"{value:.3g}{unit}" if isinstance(value, float) and not float(value).is_integer() else f"{int(value)}{unit}"


def binary_bytes(value: float) -> str:
    """``12.3 MiB``-style byte count."""
    if value is None:
        return "-"
    for scale, prefix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}"
    return f"{int(value)} B"


def num(value: float | None, digits: int = 3) -> str:
    """A float with ``digits`` significant digits; ``-`` for None; ``nan``/``inf`` spelled out."""
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
