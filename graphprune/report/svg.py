"""Inline SVG bar charts (no scripts, no external references, no xmlns URL).

Every bar is a ``<rect class="bar <series>" data-label=... data-value=...>`` whose width is
``value / max_value * PLOT_WIDTH``, so tests (and curious readers) can check a chart against
its data.
"""
from __future__ import annotations

from collections.abc import Sequence
from html import escape

PLOT_WIDTH = 480.0
LABEL_WIDTH = 220
VALUE_WIDTH = 90
BAR_HEIGHT = 12
ROW_GAP = 6
LABEL_CHARS = 32


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 1] + "\u2026"


def _exact(value: float) -> str:
    """The value as written in ``data-value``: integers in full, floats round-trippable."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def bar_width(value: float, max_value: float) -> float:
    """Width of a bar in the plot (rounded to 0.01 px; the contract the tests check)."""
    return round(PLOT_WIDTH * value / max_value, 2) if max_value > 0 else 0.0


def paired_bars(rows: Sequence[tuple[str, Sequence[float | None]]], series: Sequence[str], *, chart: str,
                fmt=lambda v: f"{v:g}", title: str = "") -> str:
    """Horizontal bars, one group of ``len(series)`` bars per row label (None values draw no bar).

    The ``<svg>`` gets ``id="chart-<chart>"``.
    """
    values = [v for _, vals in rows for v in vals if v is not None]
    top = max(values, default=0.0)
    row_height = BAR_HEIGHT * len(series) + ROW_GAP
    height = row_height * len(rows) + ROW_GAP
    width = LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH
    parts = [f'<svg class="chart" id="chart-{escape(chart)}" role="img" width="{width:g}" height="{height}" '
             f'viewBox="0 0 {width:g} {height}" aria-label="{escape(title)}">']
    for i, (label, vals) in enumerate(rows):
        y0 = ROW_GAP + i * row_height
        parts.append(f'<text class="label" x="{LABEL_WIDTH - 6}" y="{y0 + row_height / 2:g}" text-anchor="end" '
                     f'dominant-baseline="middle"><title>{escape(label)}</title>{escape(_short(label))}</text>')
        for j, (name, value) in enumerate(zip(series, vals)):
            if value is None:
                continue
            y = y0 + j * BAR_HEIGHT
            w = bar_width(value, top)
            parts.append(f'<rect class="bar {escape(name)}" x="{LABEL_WIDTH}" y="{y}" width="{w:g}" '
                         f'height="{BAR_HEIGHT - 1}" data-label="{escape(label)}" data-value="{_exact(value)}">'
                         f'<title>{escape(label)} {escape(name)}: {escape(fmt(value))}</title></rect>')
            parts.append(f'<text class="value" x="{LABEL_WIDTH + w + 4:g}" y="{y + BAR_HEIGHT / 2:g}" '
                         f'dominant-baseline="middle">{escape(fmt(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def legend(series: Sequence[str], names: Sequence[str]) -> str:
    items = "".join(f'<span class="key {escape(s)}"></span>{escape(n)} ' for s, n in zip(series, names))
    return f'<p class="legend">{items}</p>'
