"""Plain-text tables and number formatting shared by every ``summary_lines``."""
from __future__ import annotations

import math
from collections.abc import Sequence

_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_BINARY = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))


def table(headers: Sequence[str], rows: Sequence[Sequence], *, left: int = 1) -> list[str]:
    """Align ``rows`` under ``headers``; the first ``left`` columns are left-aligned, the rest right."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row):
        parts = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return [line(cells[0]), rule, *(line(r) for r in cells[1:])]


def positional(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, never in exponent form, thousands separated,
    without trailing zeros: 1009.77 -> ``1,010``, 2.794 -> ``2.79``, 1.0 -> ``1``."""
    rounded = float(f"{value:.{digits}g}")
    if rounded == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
    text = f"{rounded:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def si(value: float, unit: str = "") -> str:
    """``1.23G``-style count (decimal prefixes, 3 significant digits): 999,999 -> ``1M``."""
    if value is None:
        return "-"
    rounded = float(f"{value:.3g}")  # round first, so 999,999 becomes 1M and not 1,000k
    for scale, prefix in _PREFIXES:
        if abs(rounded) >= scale:
            return f"{positional(rounded / scale)}{prefix}{unit}"
    return f"{int(value)}{unit}" if float(value).is_integer() else f"{positional(value)}{unit}"


def binary_bytes(value: float) -> str:
    """``12.3 MiB``-style byte count, 3 significant digits: 1,034,000 -> ``1,010 KiB``; under 1 KiB in full."""
    if value is None:
        return "-"
    for scale, prefix in _BINARY:
        if abs(value) >= scale:
            return f"{positional(value / scale)} {prefix}"
    return f"{int(value):,} B"


def num(value: float | None, digits: int = 3) -> str:
    """A float with ``digits`` significant digits; ``-`` for None; ``nan``/``inf`` spelled out.

    Exponent form only for magnitudes below 1e-4 or from 1e6: 123.4 with 2 digits is ``120``,
    not ``1.2e+02``."""
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = f"{value:.{digits}g}"
    if "e+" in text and abs(float(text)) < 1e6:
        return positional(value, digits)
    return text


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def nouns(count: int, noun: str) -> str:
    """``1 group``, ``2 groups``: a count and its noun (plural by adding an s)."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
