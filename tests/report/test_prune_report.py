"""The HTML report of `graphprune prune`: exactness with a verdict, drift without one, real channel bars."""
from __future__ import annotations

import onnx

from graphprune.cli import main
from tests.helpers.paths import ROOT
from tests.helpers.html import Page


def test_prune_report_sections(tmp_path, capsys):
    out, report = tmp_path / "slim.onnx", tmp_path / "prune.html"
    code = main(["prune", str(ROOT / "models" / "demo.onnx"), "-o", str(out), "--ratio", "0.3", "--report", str(report)])
    assert code == 0, capsys.readouterr().err
    page = report.read_text()
    headings = [h for h in ("Summary", "Exactness (pruned model vs its oracle)", "Drift vs the original (informative)",
                            "Channels per layer", "Dependency groups", "Details") if f"<h2>{h}</h2>" in page]
    assert len(headings) == 6
    exact = page[page.index("<h2>Exactness"):page.index("<h2>Drift")]
    drift = page[page.index("<h2>Drift"):page.index("<h2>Channels")]
    assert "PASSED" in exact and "FAILED" not in drift and "PASSED" not in drift
    # one before- and one after-bar per pruned layer, with the pruned model's real channel counts
    chart = page[page.index('id="chart-channels"'):]
    parsed = Page(chart[:chart.index("</svg>")])
    before, after = parsed.find("rect", "before"), parsed.find("rect", "after")
    assert len(before) == len(after) >= 10
    pruned = onnx.load(str(out))
    kept = {n.name: n.input[1] for n in pruned.graph.node if n.op_type in ("Conv", "Gemm")}
    dims = {t.name: list(t.dims) for t in pruned.graph.initializer}
    for bar in after:
        weight = kept[bar["data-label"]]
        axis = 0  # Conv weight [out, in, k, k]; the zoo's Gemm uses transB=1: [out, in]
        assert float(bar["data-value"]) == dims[weight][axis]
    assert any(float(a["data-value"]) < float(b["data-value"]) for a, b in zip(after, before))
