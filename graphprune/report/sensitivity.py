"""The ``sensitivity`` section: a line chart (drift against ratio, one line per group, the most
sensitive groups coloured and named at the right end) and the table behind it.

Labels never overlap and never leave the chart: they are stacked at least one line apart
(moved as little as possible, with a leader line to their line's end when moved), and the
viewBox is widened to the longest label (:func:`~graphprune.report.svg.text_width`).
"""
from __future__ import annotations

import math
from html import escape

from .svg import FONT_SIZE, svg_open, text_width

PLOT_WIDTH, PLOT_HEIGHT = 544, 224
TOP, BOTTOM = 12, 44                 # space above the plot; below it: tick labels and the axis title
LABEL_GAP = FONT_SIZE + 3            # least distance between two label centres
LEADER = 10                          # horizontal run from a line's end to its label
#: groups coloured and labelled (the most sensitive at the largest ratio)
LABELLED = 5
PALETTE = ("#c62828", "#2f6fdf", "#1a7f37", "#8e24aa", "#ef6c00")
MUTED = "#b0b8c4"


def _drift(row: dict) -> list[float | None]:
    """Drift values as floats; non-finite or missing ones (JSON 'nan', 'inf') as None."""
    out = []
    for value in row.get("drift", []):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        out.append(number if math.isfinite(number) else None)
    return out


def _last(drift: list[float | None]) -> float:
    return drift[-1] if drift and drift[-1] is not None else -math.inf


def spread(wanted: list[float], low: float, high: float, gap: float) -> list[float]:
    """Positions closest to ``wanted`` (sorted ascending) at least ``gap`` apart, within [low, high]
    when they fit (two sweeps: push down, then pull back up from the bottom)."""
    placed: list[float] = []
    for y in wanted:
        placed.append(max(y, low) if not placed else max(y, placed[-1] + gap))
    for i in range(len(placed) - 1, -1, -1):
        limit = high if i == len(placed) - 1 else placed[i + 1] - gap
        placed[i] = min(placed[i], limit)
    return placed


class Frame:
    """Data-to-pixel mapping of the plot, with the left margin sized for the y tick labels."""

    def __init__(self, r_max: float, d_max: float, y_label: str):
        self.r_max, self.d_max = r_max or 1.0, d_max or 1.0
        self.left = max(48.0, math.ceil(text_width(y_label)) + 12)
        self.right = self.left + PLOT_WIDTH
        self.top, self.bottom = TOP, TOP + PLOT_HEIGHT

    def xy(self, ratio: float, drift: float) -> tuple[float, float]:
        x = self.left + PLOT_WIDTH * ratio / self.r_max
        y = self.bottom - PLOT_HEIGHT * drift / self.d_max
        return round(x, 2), round(y, 2)


def _axes(frame: Frame, ratios: list[float], y_label: str) -> list[str]:
    left, right, top, bottom = frame.left, frame.right, frame.top, frame.bottom
    parts = [f'<path d="M{left:g} {top:g} L{left:g} {bottom:g} L{right:g} {bottom:g}" stroke="#56606e" fill="none"/>',
             f'<text class="tick" x="{left - 6:g}" y="{top + 4:g}" text-anchor="end">{escape(y_label)}</text>',
             f'<text class="tick" x="{left - 6:g}" y="{bottom:g}" text-anchor="end">0</text>']
    shown_right = -math.inf
    for r in ratios:  # ascending; a tick label that would touch the previous one is left out
        x, _ = frame.xy(r, 0.0)
        half = text_width(f"{r:g}") / 2
        parts.append(f'<path d="M{x:g} {bottom:g} L{x:g} {bottom + 4:g}" stroke="#56606e"/>')
        if x - half >= shown_right + 4:
            parts.append(f'<text class="tick" x="{x:g}" y="{bottom + 16:g}" text-anchor="middle">{r:g}</text>')
            shown_right = x + half
    parts.append(f'<text x="{(left + right) / 2:g}" y="{bottom + 34:g}" text-anchor="middle">'
                 'ratio removed from the group alone</text>')
    return parts


def _polyline(row: dict, drift, ratios, frame: Frame, stroke: str, width: int) -> str:
    points = " ".join(f"{x:g},{y:g}" for x, y in (frame.xy(r, d) for r, d in zip(ratios, drift) if d is not None))
    return (f'<polyline class="group" data-group="{escape(str(row["group"]))}" points="{points}" fill="none" '
            f'stroke="{stroke}" stroke-width="{width}"><title>group {escape(str(row["group"]))}: '
            f'{escape(_layer(row))}</title></polyline>')


def _layer(row: dict) -> str:
    """The layer a user recognises (``node (op_type): parameter``), or the parameter alone."""
    layer, first = row.get("layer"), str(row.get("first", ""))
    return f"{layer}: {first}" if layer else first


def _labels(ranked: list[tuple[dict, list]], colour: dict, r_last: float, frame: Frame) -> list[str]:
    """Names of the coloured groups right of their lines' ends, spread so they never overlap."""
    ends = sorted((frame.xy(r_last, d[-1])[1], str(row["group"])) for row, d in ranked)
    placed = spread([y for y, _ in ends], frame.top, frame.bottom, LABEL_GAP)
    parts = []
    for (y_end, group), y in zip(ends, placed):
        x = frame.right
        if abs(y - y_end) > 0.5:  # moved: a leader line shows which line it names
            parts.append(f'<path class="leader" d="M{x:g} {y_end:g} L{x + LEADER - 2:g} {y:g}" '
                         f'stroke="{colour[group]}" fill="none"/>')
        parts.append(f'<text class="label" x="{x + LEADER:g}" y="{y:g}" dominant-baseline="middle" '
                     f'fill="{colour[group]}">group {escape(group)}</text>')
    return parts


def _ranked(rows: list[tuple[dict, list]], ratios: list[float]) -> list[tuple[dict, list]]:
    """The LABELLED groups with the largest drift at the largest ratio (complete rows only)."""
    complete = [(row, d) for row, d in rows if len(d) == len(ratios) and d and d[-1] is not None]
    return sorted(complete, key=lambda item: -_last(item[1]))[:LABELLED]


def colours(data: dict) -> dict[str, str]:
    """Group name -> colour of the labelled (most sensitive) groups."""
    rows = [(row, _drift(row)) for row in data.get("groups", [])]
    ranked = _ranked(rows, [float(r) for r in data.get("ratios", [])])
    return {str(row["group"]): PALETTE[i % len(PALETTE)] for i, (row, _) in enumerate(ranked)}


def chart(data: dict) -> str:
    """Inline SVG: one ``<polyline class="group" data-group=... >`` per group, axes and labels."""
    ratios = [float(r) for r in data.get("ratios", [])]
    rows = [(row, _drift(row)) for row in data.get("groups", [])]
    d_max = max((d for _, drift in rows for d in drift if d is not None), default=0.0)
    y_label = f"{d_max or 1.0:.3g}"
    frame = Frame(max(ratios, default=1.0), d_max, y_label)
    ranked = _ranked(rows, ratios)
    colour = colours(data)
    label_width = max((text_width(f"group {g}") for g in colour), default=0.0)
    width = math.ceil(frame.right + LEADER + label_width + 8)
    parts = [svg_open("sensitivity", width, frame.bottom + BOTTOM, "output drift against ratio, per group")]
    parts += _axes(frame, sorted(ratios), y_label)
    for row, drift in sorted(rows, key=lambda item: str(item[0]["group"]) in colour):  # coloured lines on top
        name = str(row["group"])
        parts.append(_polyline(row, drift, ratios, frame, colour.get(name, MUTED), 2 if name in colour else 1))
    parts += _labels(ranked, colour, ratios[-1] if ratios else 0.0, frame)
    parts.append("</svg>")
    return "".join(parts)


def _swatch(colour: str | None) -> str:
    return f'<span class="key" style="background:{colour}"></span>' if colour else ""


def render_sensitivity(data: dict) -> str:
    svg, colour = chart(data), colours(data)
    ratios = data.get("ratios", [])
    head = "".join(f"<th>drift @{escape(format(float(r), 'g'))}</th>" for r in ratios)
    body = []
    for row in data.get("groups", []):
        cells = "".join(f"<td>{d:.4f}</td>" if d is not None else "<td>-</td>" for d in _drift(row))
        group = str(row["group"])
        body.append(f'<tr><td class="t">{_swatch(colour.get(group))}{escape(group)}</td><td>{row["slots"]}</td>'
                    f'{cells}<td class="t">{escape(_layer(row))}</td></tr>')
    table = (f"<table><thead><tr><th>group</th><th>slots</th>{head}<th class='t'>layer: first parameter</th></tr>"
             "</thead>"
             f"<tbody>{''.join(body)}</tbody></table>")
    intro = (f"<p>{escape(str(data.get('metric', 'drift')))} when one group alone is pruned by "
             f"{escape(str(data.get('importance', '')))}, on {escape(str(data.get('samples', '?')))} samples of "
             f"{escape(str(data.get('data', '?')))}. The {len(colour)} most sensitive groups at the largest ratio "
             "are coloured and named.</p>")
    return f"<section><h2>Sensitivity</h2>{intro}{svg}{table}</section>"


def accepts_sensitivity(data) -> bool:
    return isinstance(data, dict) and isinstance(data.get("groups"), list) and isinstance(data.get("ratios"), list)
