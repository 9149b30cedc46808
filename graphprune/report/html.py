"""One self-contained HTML page from report sections (already converted by :func:`to_jsonable`).

Inline CSS and SVG only: no scripts, no links, no images, no fonts, no URLs, so the file can be
mailed, archived or opened offline and shows the same thing everywhere. Known sections get a
dedicated view (see :data:`SECTION_ORDER`); any other section is shown as a table or as JSON.
"""
from __future__ import annotations

import json
import logging
from html import escape

from .sensitivity import accepts_sensitivity, render_sensitivity
from .svg import legend, paired_bars
from .text import binary_bytes, num, percent, si

#: known sections, in page order; unknown ones follow in the order given
SECTION_ORDER = ("summary", "exactness", "validation", "drift", "profile", "latency", "sensitivity", "channels",
                 "groups")
log = logging.getLogger(__name__)
#: headers longer than this may break anywhere; shorter ones (column names) stay whole
LONG_HEADER = 16
BARRIER_KEYS = ("barriers", "barrier_reasons", "barrier reasons", "reasons")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:980px;color:#1d2430;padding:0 1em;overflow-wrap:break-word}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #d8dee6;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0}
td,th{padding:.2em .7em;border-bottom:1px solid #e6eaf0;text-align:right;white-space:nowrap}th{background:#f3f5f8}
td:first-child,th:first-child,.t{text-align:left}
td.t,th.long{white-space:normal;overflow-wrap:anywhere}td.t{min-width:5em}
pre,.lines{background:#f6f8fa;padding:.8em;white-space:pre-wrap;overflow-wrap:anywhere}
.lines{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:13px;margin:1em 0}
.lines div{padding-left:2em;text-indent:-2em}
.pass{color:#1a7f37;font-weight:600}.fail{color:#c62828;font-weight:600}
tr.worst td{background:#fff3e0}tr.kept td{background:#fbeff0}
svg.chart{display:block;max-width:100%;height:auto;margin:.6em 0}
.chart text{font-size:11px;fill:#1d2430}.chart .value{fill:#56606e;font-size:10px}
.bar.before{fill:#a7b0bc}.bar.after{fill:#2f6fdf}.bar.median{fill:#2f6fdf}
.key{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}
.legend{padding-left:1em}.legend .item{display:inline-block;max-width:calc(100% - 1.5em);margin-right:1.5em}
.key.before{background:#a7b0bc}.key.after{background:#2f6fdf}
.muted{color:#56606e}
@media (max-width:760px){body{font-size:13px;padding:0 .5em}td,th{padding:.2em .3em}td.t{min-width:3em}
th{white-space:normal;overflow-wrap:anywhere}}
"""


def _table(headers, rows, row_classes=None, text_cols=(0,)) -> str:
    """A table; columns in ``text_cols`` are left-aligned, the others (numbers) right-aligned."""
    head = "".join(f"<th{_header_class(j in text_cols, str(h))}>{escape(str(h))}</th>" for j, h in enumerate(headers))
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(f'<td class="t">{escape(str(c))}</td>' if j in text_cols else f"<td>{escape(str(c))}</td>"
                        for j, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _header_class(text: bool, header: str) -> str:
    """``t`` for a left-aligned column; ``long`` lets a header that names a model (or path) wrap anywhere."""
    classes = " ".join(c for c, on in (("t", text), ("long", len(header) > LONG_HEADER)) if on)
    return f' class="{classes}"' if classes else ""


def _section(title: str, body: str) -> str:
    return f'<section><h2>{escape(title)}</h2>{body}</section>'


# ------------------------------------------------------------------------------------ sections
def render_summary(data) -> str:
    """One block per line; a line too long for the page wraps (hanging indent), never scrolls."""
    lines = data if isinstance(data, list) else str(data).splitlines()
    blocks = "".join(f"<div>{escape(str(line)) or ' '}</div>" for line in lines)
    return _section("Summary", f'<div class="lines">{blocks}</div>')


def render_validation(v: dict, title: str = "Validation", verdict: bool = True, intro: str = "") -> str:
    """A comparison table; ``verdict=False`` for informative comparisons without a tolerance."""
    mark = ('<span class="pass">PASSED</span>' if v.get("passed") else '<span class="fail">FAILED</span>')
    tol = f", rtol={escape(str(v.get('rtol')))}, atol={escape(str(v.get('atol')))}" if verdict else ""
    head = (f"<p>{intro + ' ' if intro else ''}{mark + ' &mdash; ' if verdict else ''}{v.get('samples', '?')} "
            f"sample(s) of {escape(str(v.get('data', '?')))}{tol}; worst output: "
            f"<b>{escape(str(v.get('worst')))}</b></p>")
    rows, classes = [], []
    for m in v.get("outputs", []):
        rows.append((m["name"], "x".join(map(str, m.get("shape", []))), num(_f(m.get("max_abs"))),
                     num(_f(m.get("mean_abs"))), num(_f(m.get("max_rel"))), num(_f(m.get("cosine")), 6),
                     percent(m.get("top1")), percent(m.get("top5")), num(_f(m.get("tolerance_ratio", m.get("violation"))), 2),
                     "ok" if m.get("passed") else f"FAIL {m.get('problem') or ''}".strip()))
        classes.append("worst" if verdict and m["name"] == v.get("worst") and not v.get("passed") else "")
    headers = ("output", "shape", "max_abs", "mean_abs", "max_rel", "cosine", "top1", "top5", "tol_x", "status")
    if not verdict:
        headers, rows = headers[:8], [r[:8] for r in rows]
    table = _table(headers, rows, classes, text_cols=(0, 9))
    notes = "".join(f'<p class="muted">note: {escape(str(n))}</p>' for n in v.get("notes", []))
    return _section(title, head + table + notes)


def render_exactness(v: dict) -> str:
    return render_validation(v, "Exactness (pruned model vs its oracle)", intro=(
        "The original with every removed channel's consumers zeroed must compute what the pruned model computes."))


def render_drift(v: dict) -> str:
    return render_validation(v, "Drift vs the original (informative)", verdict=False, intro=(
        "How far the pruned model's outputs moved from the original's (no tolerance: pruning changes them)."))


def _f(value):
    """Floats stored as strings in JSON ('inf', 'nan') back to floats for formatting."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return value


def _totals_rows(p: dict, q: dict | None) -> list[tuple]:
    keys = (("params", "total_params", si), ("MACs", "total_macs", si),
            ("activations", "activation_bytes", binary_bytes),
            ("peak activations", "peak_activation_bytes", binary_bytes), ("file size", "file_size", binary_bytes))
    rows = []
    for label, key, fmt in keys:
        row = [label, fmt(p.get(key))]
        if q is not None:
            row += [fmt(q.get(key)), num(q[key] / p[key], 4) if p.get(key) else "-"]
        rows.append(tuple(row))
    return rows


def _op_mac_chart(p: dict, q: dict | None) -> str:
    ops_p = {o["op_type"]: o for o in p.get("by_op_type", [])}
    ops_q = {o["op_type"]: o for o in (q or {}).get("by_op_type", [])}
    rows = [(op, [ops_p.get(op, {}).get("macs", 0)] + ([ops_q.get(op, {}).get("macs", 0)] if q else []))
            for op in dict.fromkeys([*ops_p, *ops_q]) if ops_p.get(op, {}).get("macs") or ops_q.get(op, {}).get("macs")]
    series = ("before", "after") if q else ("after",)
    names = (p.get("name", "model"), q.get("name", "compared")) if q else (p.get("name", "model"),)
    return "<h3>MACs per op type</h3>" + legend(series, names) + paired_bars(rows, series, chart="op-macs", fmt=si,
                                                                    title="MACs per op type")


def _nodes_table(p: dict) -> str:
    nodes = p.get("nodes")
    if not nodes:
        return ""
    rows = [(n["name"], n["op_type"], "x".join(map(str, n.get("output_shape") or [])) or "-", si(n["params"]),
             "?" if n.get("macs") is None else si(n["macs"]), binary_bytes(n["activation_bytes"])) for n in nodes]
    table = _table(("node", "op_type", "output", "params", "MACs", "activations"), rows, text_cols=(0, 1))
    return f"<details><summary>{len(nodes)} nodes of {escape(str(p.get('name')))}</summary>{table}</details>"


def render_profile(p: dict) -> str:
    q = p.get("compare")
    headers = ("metric", p.get("name", "model")) + ((q.get("name", "compared"), "ratio") if q else ())
    body = _table(headers, _totals_rows(p, q))
    if q and p.get("speedup") is not None:
        body += (f"<p>MAC ratio <b>{num(p.get('mac_ratio'), 4)}</b>, measured speedup "
                 f"<b>{num(p.get('speedup'), 3)}x</b></p>")
    body += _op_mac_chart(p, q)
    if p.get("uncounted"):
        body += ('<p class="muted">MACs not counted (no formula or unknown shape): '
                 + escape(", ".join(f"{k} ({v})" for k, v in p["uncounted"].items())) + "</p>")
    body += _nodes_table(p) + (_nodes_table(q) if q else "")
    latency = {p.get("name", "model"): p.get("latency")}
    if q:
        latency[q.get("name", "compared")] = q.get("latency")
    latency = {k: v for k, v in latency.items() if v}
    if latency:
        body += render_latency(latency, heading=False)
    return _section("Profile", body)


def _latency_entries(data) -> list[tuple[str, dict]]:
    if isinstance(data, list):
        return [(str(d.get("name", f"model {i}")), d) for i, d in enumerate(data)]
    if isinstance(data, dict) and "median_ms" in data:
        return [("model", data)]
    return [(str(k), v) for k, v in data.items() if isinstance(v, dict)]


def render_latency(data, heading: bool = True) -> str:
    entries = _latency_entries(data)
    rows = [(name, f"{d['median_ms']:.3f}", _ms(d.get("p10_ms")), _ms(d.get("p90_ms")), _ms(d.get("stdev_ms")),
             d.get("runs", "-"), d.get("threads", "-")) for name, d in entries]
    chart = paired_bars([(name, [d["median_ms"]]) for name, d in entries], ("median",), chart="latency",
                        fmt=lambda v: f"{v:.3f} ms", title="median latency")
    body = "<h3>Latency (onnxruntime, CPU)</h3>" + chart + _table(
        ("model", "median ms", "p10 ms", "p90 ms", "sd ms", "runs", "threads"), rows)
    return _section("Latency", body) if heading else body


def _ms(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def render_channels(rows: list) -> str:
    before = sum(int(r.get("before") or 0) for r in rows)
    after = sum(int(r.get("after") or 0) for r in rows)
    kept = f"{100 * after / before:.1f}%" if before else "-"
    head = f"<p>{len(rows)} layers, {before} &rarr; {after} channels ({kept} kept)</p>"
    chart = paired_bars([(str(r["node"]), [r.get("before"), r.get("after")]) for r in rows], ("before", "after"),
                        chart="channels", title="channels per layer")
    return _section("Channels per layer", head + legend(("before", "after"), ("before", "after")) + chart)


def _barriers(group: dict) -> list[str]:
    for key in BARRIER_KEYS:
        if key in group and group[key]:
            value = group[key]
            return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return []


def render_groups(groups: list) -> str:
    rows, classes = [], []
    for g in groups:
        reasons = _barriers(g)
        rows.append((g.get("group", "?"), g.get("size", "-"), "; ".join(reasons) or "prunable"))
        classes.append("kept" if reasons else "")
    blocked = sum(1 for c in classes if c)
    head = f"<p>{len(groups)} groups, {blocked} kept whole by a barrier</p>"
    table = _table(("group", "size", "barrier reasons"), rows, classes, text_cols=(0, 2))
    return _section("Dependency groups", head + table)


def render_generic(title: str, data) -> str:
    if isinstance(data, list) and data and all(isinstance(d, dict) for d in data):
        headers = list(dict.fromkeys(k for d in data for k in d))
        body = _table(headers, [[_cell(d.get(h, "")) for h in headers] for d in data], text_cols=range(len(headers)))
    elif isinstance(data, dict) and all(not isinstance(v, (dict, list)) for v in data.values()):
        numeric = all(isinstance(v, (int, float)) or v is None for v in data.values())
        body = _table(("key", "value"), [(k, _cell(v)) for k, v in data.items()], text_cols=(0,) if numeric else (0, 1))
    else:
        text = json.dumps(data, indent=2)
        body = f"<pre>{escape(text)}</pre>"
        if text.count("\n") > 40:
            body = f"<details><summary>{text.count(chr(10)) + 1} lines of data</summary>{body}</details>"
    return _section(title.replace("_", " ").capitalize(), body)


def _cell(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


RENDERERS = {"summary": render_summary, "validation": render_validation, "exactness": render_exactness,
             "drift": render_drift, "profile": render_profile, "latency": render_latency,
             "channels": render_channels, "groups": render_groups, "sensitivity": render_sensitivity}


def _list_of_dicts(data, key: str) -> bool:
    return isinstance(data, list) and all(isinstance(d, dict) and key in d for d in data)


#: what a known section must look like to get its dedicated view (else it is shown generically)
ACCEPTS = {
    "summary": lambda d: isinstance(d, (list, str)),
    "validation": lambda d: isinstance(d, dict) and isinstance(d.get("outputs"), list),
    "exactness": lambda d: isinstance(d, dict) and isinstance(d.get("outputs"), list),
    "drift": lambda d: isinstance(d, dict) and isinstance(d.get("outputs"), list),
    "profile": lambda d: isinstance(d, dict) and isinstance(d.get("by_op_type"), list),
    "latency": lambda d: isinstance(d, (dict, list)),
    "channels": lambda d: _list_of_dicts(d, "node"),
    "groups": lambda d: _list_of_dicts(d, "group"),
    "sensitivity": accepts_sensitivity,
}


def render_section(key: str, data) -> str:
    """The dedicated view of a known section, or the generic one when the data does not fit it."""
    render = RENDERERS.get(key)
    if render is not None and ACCEPTS[key](data):
        try:
            return render(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("report section %r does not have the expected structure (%s); shown as data", key, exc)
    return render_generic(key, data)


def render_html(sections: dict) -> str:
    """The page for JSON-able ``sections`` (``title`` is the heading; other keys are sections)."""
    title = str(sections.get("title", "graphprune report"))
    keys = [k for k in SECTION_ORDER if k in sections] + [k for k in sections if k not in SECTION_ORDER and k != "title"]
    body = []
    for key in keys:
        if sections[key] is not None:
            body.append(render_section(key, sections[key]))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{escape(title)}</h1>{''.join(body)}</body></html>\n")
