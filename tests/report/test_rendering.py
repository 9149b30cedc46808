"""Every HTML report the CLI writes, laid out by headless Chromium: no text is cut, hidden or overlapping.

`render_check.js` compares each text fragment with its box, each box that clips with its content,
each chart text with its chart's viewport and with every other text of that chart (see
`tests/report/chromium.py` for how Chromium is found and run).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from graphprune.cli import main
from graphprune.report import write_report
from graphprune.report.sensitivity import LABELLED
from tests.helpers.paths import ROOT, shared_model
from tests.helpers.chromium import check_layout, screenshot

MODELS = {"demo": lambda: ROOT / "models" / "demo.onnx", "ultraface": lambda: shared_model("ultraface-slim-320.onnx")}


def _commands(kind: str, model: Path, work: Path) -> list[list]:
    """CLI runs that end with ``kind --report work/report.html`` (earlier ones make its inputs)."""
    report = ["--report", work / "report.html"]
    slim, folded, plan = work / "slim.onnx", work / "folded.onnx", work / "plan.json"
    return {
        "prune": [["prune", model, "-o", slim, "--ratio", "0.3", *report]],
        "apply": [["plan", model, "-o", plan, "--ratio", "0.3"], ["apply", model, plan, "-o", slim, *report]],
        "fold": [["fold", model, "-o", folded, *report]],
        "validate": [["fold", model, "-o", folded], ["validate", model, folded, *report]],
        "profile": [["prune", model, "-o", slim, "--ratio", "0.3", "--no-validate"],
                    ["profile", model, "--compare", slim, *report]],
        "sensitivity": [["sensitivity", model, "--ratios", "0.2,0.5,0.8", "--samples", "2", *report]],
    }[kind]


#: headings each kind's page must have, and how many charts it draws
PAGES = {
    "prune": (("Summary", "Exactness (pruned model vs its oracle)", "Drift vs the original (informative)",
               "Channels per layer", "Dependency groups"), 1),
    "apply": (("Summary", "Exactness (pruned model vs its oracle)", "Channels per layer", "Dependency groups"), 1),
    "fold": (("Summary", "Validation"), 0),
    "validate": (("Validation",), 0),
    "profile": (("Profile",), 1),
    "sensitivity": (("Sensitivity",), 1),
}


def _assert_laid_out(page: Path, work: Path, width: int = 1000) -> dict:
    result = check_layout(page, work, width)
    if result["problems"]:
        shot = screenshot(page, work / f"{page.stem}-{width}.png", work, width)
        lines = "\n".join(f"  {p['kind']}: <{p['element']}> {p['text']!r} at {p['box']} in {p['container']}"
                          for p in result["problems"][:20])
        pytest.fail(f"{len(result['problems'])} layout problem(s) in {page} at {width}px (screenshot {shot}):\n{lines}")
    return result["counts"]


#: every kind on the bundled demo; on a third-party model the kinds with the most text (long summary
#: lines, 217 profiled nodes, sensitivity groups numbered past 10 whose labels collide)
CASES = [(kind, "demo") for kind in PAGES] + [("prune", "ultraface"), ("profile", "ultraface"),
                                               ("sensitivity", "ultraface")]


@pytest.mark.parametrize(("kind", "model"), CASES)
def test_no_text_is_clipped(kind, model, tmp_path, capsys):
    for args in _commands(kind, MODELS[model](), tmp_path):
        code = main([str(a) for a in args])
        assert code == 0, f"{args[0]} exited {code}: {capsys.readouterr().err}"
    page = tmp_path / "report.html"
    text = page.read_text()
    headings, charts = PAGES[kind]
    assert [h for h in headings if f"<h2>{h}</h2>" in text] == list(headings)
    assert text.count('<svg class="chart"') == charts
    counts = _assert_laid_out(page, tmp_path)
    assert counts["svgs"] == charts and counts["text_nodes"] >= 10
    if kind == "sensitivity":  # the most sensitive groups are named next to their lines, all of them readable
        groups = len(re.findall(r'<polyline class="group"', text))
        assert text.count('<text class="label"') == min(LABELLED, groups) and groups >= 9
        assert counts["svg_texts"] >= min(LABELLED, groups) + 4   # labels, ticks, axis title


LONG = "/backbone/backbone/dark3/dark3.1/m/m.0/conv1/conv/Conv_output_0_quantized_dequantized_transposed"


def _outputs(count: int) -> list[dict]:
    return [{"name": f"{LONG}_{i}", "shape": [1, 4420, 2], "max_abs": 1234567.0, "mean_abs": 1e-9, "max_rel": 0.5,
             "cosine": 0.999999, "top1": 0.5, "top5": 1.0, "violation": 123.4, "passed": False,
             "problem": "max_abs above tolerance " * 3} for i in range(count)]


def _profile(name: str, by_op_type: list[dict], nodes: int) -> dict:
    return {"name": name, "total_params": 291256, "total_macs": 87521920, "activation_bytes": 1034000,
            "peak_activation_bytes": 3 * 10**9, "file_size": 1023, "by_op_type": by_op_type,
            "nodes": [{"name": f"{LONG}{i}", "op_type": "Conv", "output_shape": [1, 64, 160, 120], "params": 1234,
                       "macs": 12345678, "activation_bytes": 4915200} for i in range(nodes)]}


def hostile_sections() -> dict:
    """Every section with names longer than the page is wide, and sensitivity labels that all collide."""
    validation = {"passed": False, "samples": 2, "data": "/data/" + "x" * 150, "rtol": 1e-4, "atol": 1e-5,
                  "worst": f"{LONG}_0", "outputs": _outputs(3), "notes": ["note " + "y" * 200]}
    profile = _profile(LONG + ".onnx", [{"op_type": "Conv", "macs": 81_700_000},
                                        {"op_type": "CustomOpWithAVeryLongName" * 3, "macs": 35_400}], 3)
    profile["compare"] = _profile("slim-" + LONG + ".onnx", [{"op_type": "Conv", "macs": 48_400_000}], 0)
    tied = [{"group": g, "slots": 16, "drift": [0.01, 0.02, 0.05, 0.1], "first": LONG}
            for g in (1, 11, 12, 16, 111, 112)]
    return {
        "title": "prune " + "/very/long/path" * 12 + ".onnx",
        "summary": ["kept whole: " + "; ".join(f"Concat node {LONG} does not explain axis 1" for _ in range(6)),
                    "x" * 300, "", "parameters: 264,732 -> 168,588 (63.7% kept)"],
        "exactness": validation, "drift": validation, "validation": validation, "profile": profile,
        "latency": {LONG: {"median_ms": 12.345, "p10_ms": 12.0, "p90_ms": 13.0, "stdev_ms": 0.5, "runs": 10,
                           "threads": 2}, "b": {"median_ms": 1.0}},
        "channels": [{"node": f"{LONG}/{i}", "before": 256, "after": 128 + i} for i in range(4)]
        + [{"node": "WWWWMMMMmmmmwwww" * 4, "before": 10**9, "after": 10**8}],
        "groups": [{"group": 1391, "size": 64,
                    "barriers": ["graph output " + LONG, "op NonMaxSuppression has no rule"]}],
        "sensitivity": {"ratios": [0.1, 0.12, 0.5, 0.9], "metric": "relative L2", "importance": "l2", "samples": 2,
                        "data": "random", "groups": tied + [{"group": 2, "slots": 8, "drift": [0.0, 0.0, "nan", 0.0],
                                                             "first": "x"}]},
        "notes": {"key_" + "z" * 120: "v" * 300},
    }


@pytest.mark.parametrize("width", [1000, 600])
def test_hostile_names_wrap_and_tied_labels_spread(width, tmp_path):
    page = write_report(tmp_path / "hostile.html", hostile_sections())
    counts = _assert_laid_out(page, tmp_path, width)
    assert counts["svgs"] == 4                        # op MACs, latency, sensitivity, channels
    assert counts["text_nodes"] >= 200 and counts["svg_texts"] >= 30


BROKEN = """<!DOCTYPE html><html><head><style>body{margin:0;width:600px}</style></head><body>
<pre style="overflow:auto;width:300px">{line}</pre>
<table style="table-layout:fixed;width:120px">
<tr><td style="width:60px;white-space:nowrap">{cell}</td><td>x</td></tr></table>
<svg width="100" height="40" viewBox="0 0 100 40" style="font:11px sans-serif">
<text x="60" y="12">group 11</text><text x="5" y="30">first</text><text x="8" y="32">second</text></svg>
</body></html>"""


def test_the_check_finds_cut_and_overlapping_text(tmp_path):
    """The check itself: a page with one problem of each kind gets exactly those problems."""
    page = tmp_path / "broken.html"
    page.write_text(BROKEN.replace("{line}", "long line " * 60).replace("{cell}", "a cell wider than its column"))
    problems = check_layout(page, tmp_path, 800)["problems"]
    found = sorted((p["kind"], p["element"], p["text"]) for p in problems)
    assert [(kind, element) for kind, element, _ in found] == [
        ("chart text cut at the chart edge", "text"), ("chart texts overlap", "text"),
        ("content scrolls or is clipped", "pre"), ("text outside its box", "pre"), ("text outside its box", "td")]
    assert found[0][2] == "group 11" and found[1][2] == "first / second"
    assert "long line" in found[2][2] and found[4][2] == "a cell wider than its column"
