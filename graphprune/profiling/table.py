"""Text rendering of a :class:`ModelProfile` (alone, or side by side with its ``compare``)."""
from __future__ import annotations

from ..report.text import binary_bytes, num, si, table


def _shape(shape) -> str:
    return "-" if shape is None else "x".join(map(str, shape)) or "scalar"


def _inputs(p) -> str:
    return ", ".join(f"{k}:{_shape(v)}" for k, v in p.input_shapes.items())


def _latency(lat) -> str:
    return (f"median {lat.median_ms:.3f} ms (p10 {lat.p10_ms:.3f}, p90 {lat.p90_ms:.3f}, sd {lat.stdev_ms:.3f}) "
            f"over {lat.runs} runs, {lat.threads} thread(s)")


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _op_rows(p) -> list[tuple]:
    return [(op.op_type, op.nodes, si(op.params), si(op.macs), _share(op.macs, p.total_macs),
             binary_bytes(op.activation_bytes)) for op in p.by_op_type.values()]


def _single(p) -> list[str]:
    lines = [f"{p.name}: {si(p.total_params)} params, {si(p.total_macs)} MACs, activations "
             f"{binary_bytes(p.activation_bytes)} (peak {binary_bytes(p.peak_activation_bytes)}), "
             f"file {binary_bytes(p.file_size)}, inputs {_inputs(p)}"]
    lines += table(("op_type", "nodes", "params", "MACs", "MACs %", "activations"), _op_rows(p))
    if p.latency:
        lines.append(f"latency: {_latency(p.latency)}")
    return lines


def _ratio(a, b) -> str:
    return num(b / a, 4) if a else "-"


def _side_by_side(p) -> list[str]:
    q = p.compare
    rows = [
        ("params", si(p.total_params), si(q.total_params), _ratio(p.total_params, q.total_params)),
        ("MACs", si(p.total_macs), si(q.total_macs), _ratio(p.total_macs, q.total_macs)),
        ("peak activations", binary_bytes(p.peak_activation_bytes), binary_bytes(q.peak_activation_bytes),
         _ratio(p.peak_activation_bytes, q.peak_activation_bytes)),
        ("file size", binary_bytes(p.file_size), binary_bytes(q.file_size), _ratio(p.file_size, q.file_size)),
    ]
    if p.latency and q.latency:
        rows.append(("latency median (ms)", f"{p.latency.median_ms:.3f}", f"{q.latency.median_ms:.3f}",
                     _ratio(p.latency.median_ms, q.latency.median_ms)))
    lines = [f"inputs {_inputs(p)}"]
    lines += table(("metric", p.name, q.name, "ratio"), rows)
    if p.speedup is not None:
        lines.append(f"MAC ratio {p.mac_ratio:.4f}, measured speedup {p.speedup:.2f}x "
                     f"({p.latency.runs} interleaved runs, {p.latency.threads} thread(s))")
    ops = list(dict.fromkeys([*p.by_op_type, *q.by_op_type]))
    op_rows = []
    for op in ops:
        a = p.by_op_type.get(op)
        b = q.by_op_type.get(op)
        op_rows.append((op, a.nodes if a else 0, b.nodes if b else 0, si(a.macs if a else 0), si(b.macs if b else 0),
                        _ratio(a.macs if a else 0, b.macs if b else 0)))
    lines += table(("op_type", "nodes", "nodes'", "MACs", "MACs'", "ratio"), op_rows)
    return lines


def _nodes(p) -> list[str]:
    rows = [(n.name, n.op_type, _shape(n.output_shape), si(n.params), "?" if n.macs is None else si(n.macs),
             binary_bytes(n.activation_bytes)) for n in p.nodes]
    return [f"{p.name}: per node", *table(("node", "op_type", "output", "params", "MACs", "activations"), rows, left=3)]


def profile_lines(p, per_node: bool = False) -> list[str]:
    lines = _side_by_side(p) if p.compare is not None else _single(p)
    uncounted = dict(p.uncounted)
    if p.compare is not None:
        for op, n in p.compare.uncounted.items():
            uncounted[op] = max(n, uncounted.get(op, 0))
    if uncounted:
        lines.append("MACs not counted (no formula or unknown shape): " + ", ".join(f"{op} ({n} nodes)" for op, n in uncounted.items()))
    if per_node:
        lines += _nodes(p)
        if p.compare is not None:
            lines += _nodes(p.compare)
    return lines
