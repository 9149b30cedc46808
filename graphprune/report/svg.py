"""Inline SVG bar charts (no scripts, no external references, no xmlns URL).

Every bar is a ``<rect class="bar <series>" data-label=... data-value=...>`` whose width is
``value / max_value * PLOT_WIDTH``, so tests (and curious readers) can check a chart against
its data. The label gutter is as wide as the longest label (see :func:`text_width`), so no
label is cut at the chart's edge.
"""
from __future__ import annotations

from collections.abc import Sequence
from html import escape

PLOT_WIDTH = 480.0
#: the label gutter is at least this wide (px), more when a label needs it
LABEL_WIDTH = 120
LABEL_PAD = 6
BAR_HEIGHT = 12
ROW_GAP = 6
#: labels longer than this lose their middle (full text in the label's tooltip and in the tables)
LABEL_CHARS = 60
#: font sizes of chart text (px), as set by the page's CSS (``.chart text``, ``.chart .value``)
FONT_SIZE = 11
VALUE_FONT_SIZE = 10

# Advance widths in em, rounded up from DejaVu Sans (the widest common sans-serif face; the one
# Debian's fontconfig picks for sans-serif/system-ui): measured per character with Pillow.
_WIDEST = set("mwMW@%")
_NARROW = set("ijlft.,:;|!'()[]/\\- ")


def _char_em(char: str) -> float:
    if char in _WIDEST or not char.isascii():
        return 1.0
    if char in _NARROW:
        return 0.42
    if char.isupper():
        return 0.8
    if char.isalnum() or char == "_":
        return 0.64
    return 0.84                          # other punctuation: # + < = > ^ ~ & * ...


def text_width(text: str, font_size: float = FONT_SIZE) -> float:
    """An upper bound of the rendered width (px) of ``text`` in a sans-serif face at ``font_size``."""
    return font_size * sum(_char_em(c) for c in text)


def short_label(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` itself, or its head and tail around an ellipsis (node paths differ at their end)."""
    if len(text) <= limit:
        return text
    tail = (limit - 1) * 2 // 3
    return text[:limit - 1 - tail] + "\u2026" + text[len(text) - tail:]


def _exact(value: float) -> str:
    """The value as written in ``data-value``: integers in full, floats round-trippable."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def bar_width(value: float, max_value: float) -> float:
    """Width of a bar in the plot (rounded to 0.01 px; the contract the tests check)."""
    return round(PLOT_WIDTH * value / max_value, 2) if max_value > 0 else 0.0


def svg_open(chart: str, width: float, height: float, title: str) -> str:
    """The ``<svg>`` start tag: a viewBox of the chart's own size that the page may scale down."""
    return (f'<svg class="chart" id="chart-{escape(chart)}" role="img" width="{width:g}" height="{height:g}" '
            f'viewBox="0 0 {width:g} {height:g}" aria-label="{escape(title)}">')


def paired_bars(rows: Sequence[tuple[str, Sequence[float | None]]], series: Sequence[str], *, chart: str,
                fmt=lambda v: f"{v:g}", title: str = "") -> str:
    """Horizontal bars, one group of ``len(series)`` bars per row label (None values draw no bar).

    The ``<svg>`` gets ``id="chart-<chart>"``.
    """
    values = [v for _, vals in rows for v in vals if v is not None]
    top = max(values, default=0.0)
    labels = [short_label(label) for label, _ in rows]
    gutter = max([LABEL_WIDTH] + [text_width(s) + 2 * LABEL_PAD for s in labels])
    value_width = max([40.0] + [text_width(fmt(v), VALUE_FONT_SIZE) + LABEL_PAD for v in values])
    row_height = BAR_HEIGHT * len(series) + ROW_GAP
    height = row_height * len(rows) + ROW_GAP
    parts = [svg_open(chart, round(gutter + PLOT_WIDTH + value_width), height, title)]
    for i, ((label, vals), shown) in enumerate(zip(rows, labels)):
        y0 = ROW_GAP + i * row_height
        parts.append(f'<text class="label" x="{gutter - LABEL_PAD:g}" y="{y0 + row_height / 2:g}" '
                     f'text-anchor="end" dominant-baseline="middle"><title>{escape(label)}</title>'
                     f'{escape(shown)}</text>')
        for j, (name, value) in enumerate(zip(series, vals)):
            if value is None:
                continue
            y = y0 + j * BAR_HEIGHT
            w = bar_width(value, top)
            parts.append(f'<rect class="bar {escape(name)}" x="{gutter:g}" y="{y}" width="{w:g}" '
                         f'height="{BAR_HEIGHT - 1}" data-label="{escape(label)}" data-value="{_exact(value)}">'
                         f'<title>{escape(label)} {escape(name)}: {escape(fmt(value))}</title></rect>')
            parts.append(f'<text class="value" x="{gutter + w + 4:g}" y="{y + BAR_HEIGHT / 2:g}" '
                         f'dominant-baseline="middle">{escape(fmt(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def legend(series: Sequence[str], names: Sequence[str]) -> str:
    items = "".join(f'<span class="item"><span class="key {escape(s)}"></span>{escape(n)}</span> '
                    for s, n in zip(series, names))
    return f'<p class="legend">{items}</p>'
