"""The ``sensitivity`` section of HTML reports: a line chart (drift against ratio, one line per
group, the most sensitive ones labelled) and the table behind it.

:func:`register` adds the section to :mod:`graphprune.report.html` through its renderer table
(``report.html.register_section``), so ``write_report(path, {"sensitivity": result})`` draws it. The
chart is inline SVG with inline colours (no script, no external reference), like the rest of
the report.
"""
from __future__ import annotations

from html import escape

WIDTH, HEIGHT, MARGIN = 640, 320, 48
#: groups labelled at the right end of the chart (the most sensitive at the largest ratio)
LABELLED = 5
LABEL_GAP = 12
PALETTE = ("#c62828", "#2f6fdf", "#1a7f37", "#8e24aa", "#ef6c00")
MUTED = "#b0b8c4"


def _xy(ratio: float, drift: float, r_max: float, d_max: float) -> tuple[float, float]:
    x = MARGIN + (WIDTH - 2 * MARGIN) * (ratio / r_max if r_max else 0.0)
    y = HEIGHT - MARGIN - (HEIGHT - 2 * MARGIN) * (drift / d_max if d_max else 0.0)
    return round(x, 2), round(y, 2)


def chart(data: dict) -> str:
    """Inline SVG: one ``<polyline class="group" data-group=... >`` per group, axes and labels."""
    ratios = [float(r) for r in data.get("ratios", [])]
    rows = data.get("groups", [])
    r_max = max(ratios, default=1.0)
    d_max = max((max(r["drift"], default=0.0) for r in rows), default=0.0) or 1.0
    ranked = sorted(rows, key=lambda r: -(r["drift"][-1] if r["drift"] else 0.0))[:LABELLED]
    colour = {r["group"]: PALETTE[i % len(PALETTE)] for i, r in enumerate(ranked)}
    parts = [f'<svg class="chart" id="chart-sensitivity" role="img" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-label="output drift against ratio, per group">']
    x0, y0 = _xy(0.0, 0.0, r_max, d_max)
    x1, y1 = _xy(r_max, d_max, r_max, d_max)
    parts.append(f'<path d="M{x0} {y1} L{x0} {y0} L{x1} {y0}" stroke="#56606e" fill="none"/>')
    for r in ratios:
        x, _ = _xy(r, 0.0, r_max, d_max)
        parts.append(f'<text x="{x}" y="{y0 + 16}" text-anchor="middle">{r:g}</text>')
    parts.append(f'<text x="{x0 - 6}" y="{y1 + 4}" text-anchor="end">{d_max:.3g}</text>')
    parts.append(f'<text x="{x0 - 6}" y="{y0}" text-anchor="end">0</text>')
    parts.append(f'<text x="{(x0 + x1) / 2}" y="{HEIGHT - 8}" text-anchor="middle">ratio removed from the group '
                 'alone</text>')
    for row in sorted(rows, key=lambda r: r["group"] in colour):
        points = " ".join(f"{x},{y}" for x, y in (_xy(r, d, r_max, d_max) for r, d in zip(ratios, row["drift"])))
        stroke = colour.get(row["group"], MUTED)
        parts.append(f'<polyline class="group" data-group="{row["group"]}" points="{points}" fill="none" '
                     f'stroke="{stroke}" stroke-width="{2 if row["group"] in colour else 1}">'
                     f'<title>group {row["group"]}: {escape(str(row.get("first", "")))}</title></polyline>')
    parts += _labels(ranked, colour, ratios, r_max, d_max)
    parts.append("</svg>")
    return "".join(parts)


def _labels(ranked, colour, ratios, r_max, d_max) -> list[str]:
    """Names of the labelled groups at the right end, pushed apart so they never overlap."""
    out, last_y = [], None
    for row in ranked:  # most sensitive first = highest first (smallest y)
        if not row["drift"]:
            continue
        x, y = _xy(ratios[-1], row["drift"][-1], r_max, d_max)
        y = y + 4 if last_y is None else max(y + 4, last_y + LABEL_GAP)
        last_y = y
        out.append(f'<text class="label" x="{x + 4}" y="{y}" fill="{colour[row["group"]]}">group {row["group"]}</text>')
    return out


def render_sensitivity(data: dict) -> str:
    ratios = data.get("ratios", [])
    head = "".join(f"<th>drift @{escape(format(float(r), 'g'))}</th>" for r in ratios)
    body = []
    for row in data.get("groups", []):
        cells = "".join(f"<td>{float(d):.4f}</td>" for d in row["drift"])
        body.append(f'<tr><td class="t">{row["group"]}</td><td>{row["slots"]}</td>{cells}'
                    f'<td class="t">{escape(str(row.get("first", "")))}</td></tr>')
    table = (f"<table><thead><tr><th>group</th><th>slots</th>{head}<th>first parameter</th></tr></thead>"
             f"<tbody>{''.join(body)}</tbody></table>")
    intro = (f"<p>{escape(str(data.get('metric', 'drift')))} when one group alone is pruned by "
             f"{escape(str(data.get('importance', '')))}, on {data.get('samples', '?')} samples of "
             f"{escape(str(data.get('data', '?')))}.</p>")
    return f"<section><h2>Sensitivity</h2>{intro}{chart(data)}{table}</section>"


def _accepts(data) -> bool:
    return isinstance(data, dict) and isinstance(data.get("groups"), list) and isinstance(data.get("ratios"), list)


def register() -> None:
    """Make ``sensitivity`` a known section of HTML reports (idempotent)."""
    from ..report import html

    html.register_section("sensitivity", render_sensitivity, _accepts)
