"""Reports: JSON data, and an HTML page that is self-contained and draws the data it is given."""
from __future__ import annotations

import json

import numpy as np
import pytest

from graphprune.errors import OutputError, UsageError
from graphprune.profiling import profile
from graphprune.report import render, write_report
from graphprune.report.svg import PLOT_WIDTH, bar_width
from graphprune.validation import validate
from tests.helpers.html import Page
from tests.helpers.models import small_cnn, two_outputs

CHANNELS = [{"node": "conv1", "before": 64, "after": 32}, {"node": "layer1.0/conv2", "before": 128, "after": 96},
            {"node": "<script>alert(1)</script>", "before": 16, "after": 16}]
GROUPS = [{"group": 0, "size": 64, "barriers": []},
          {"group": 1, "size": 10, "barriers": ["graph output 'logits'", "op NonMaxSuppression has no rule"]},
          {"group": 2, "size": 32, "barrier_reasons": ["initializer shared with a non-constant use"]}]


@pytest.fixture(scope="module")
def sections():
    mask = np.zeros((2, 3), np.float32)
    mask[0, 0] = 1.0
    return {"title": "resnet <test> report", "channels": CHANNELS, "groups": GROUPS,
            "validation": validate(two_outputs(), two_outputs(mask), samples=2, progress=False),
            "profile": profile(small_cnn(), compare=small_cnn(width=4), bench=True, runs=2, warmup=0, progress=False),
            "notes": {"ratio": 0.5, "round_to": 8}}


@pytest.fixture(scope="module")
def page(sections):
    return render(sections, "html")


def test_no_external_resources(page):
    parsed = Page(page)
    tags = {t for t, _ in parsed.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "video", "audio", "base"}
    assert not [a for _, a in parsed.tags if {"src", "href", "srcset", "xlink:href", "action"} & set(a)]
    lowered = page.lower()
    for needle in ("http://", "https://", "url(", "@import", "//cdn", "javascript:"):
        assert needle not in lowered


def _chart(page: str, name: str) -> str:
    start = page.index(f'id="chart-{name}"')
    return page[start:page.index("</svg>", start)]


def test_channel_bars_match_the_data(page):
    parsed = Page(_chart(page, "channels"))
    top = max(max(c["before"], c["after"]) for c in CHANNELS)
    for series in ("before", "after"):
        bars = parsed.find("rect", series)
        assert [b["data-label"] for b in bars] == [c["node"] for c in CHANNELS]
        assert [float(b["data-value"]) for b in bars] == [c[series] for c in CHANNELS]
        assert [float(b["width"]) for b in bars] == [bar_width(c[series], top) for c in CHANNELS]
    assert float(parsed.find("rect", "before")[1]["width"]) == PLOT_WIDTH   # the largest bar spans the plot
    assert float(parsed.find("rect", "after")[0]["width"]) == PLOT_WIDTH / 4


def test_user_text_is_escaped(page):
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<title>resnet &lt;test&gt; report</title>" in page


def test_groups_and_barrier_reasons(page):
    parsed = Page(page)
    assert len(parsed.find("tr", "kept")) == 2
    assert "graph output &#x27;logits&#x27;; op NonMaxSuppression has no rule" in page
    assert "initializer shared with a non-constant use" in page
    assert "3 groups, 2 kept whole by a barrier" in page


def test_validation_profile_and_latency_sections(page, sections):
    parsed = Page(page)
    assert [a for t, a in parsed.tags if t == "tr" and a.get("class") == "worst"]
    assert "FAILED" in page and "worst output: <b>out</b>" in page
    assert "MACs per op type" in page and "Latency (onnxruntime, CPU)" in page
    op_bars = Page(_chart(page, "op-macs")).find("rect", "before")
    assert [b["data-label"] for b in op_bars] == [op for op, p in sections["profile"].by_op_type.items() if p.macs]
    assert [float(b["data-value"]) for b in op_bars] == [p.macs for p in sections["profile"].by_op_type.values() if p.macs]
    medians = Page(_chart(page, "latency")).find("rect", "median")
    assert len(medians) == 2
    values = [sections["profile"].latency.median_ms, sections["profile"].compare.latency.median_ms]
    assert [float(m["data-value"]) for m in medians] == pytest.approx(values, rel=1e-5)
    assert "<h2>Notes</h2>" in page and "round_to" in page                 # unknown sections shown generically


def test_headings_follow_the_section_order(page):
    order = [h for h in ("Validation", "Profile", "Channels per layer", "Dependency groups", "Notes")]
    positions = [page.index(f"<h2>{h}</h2>") for h in order]
    assert positions == sorted(positions)


@pytest.mark.parametrize("subset", [{}, {"groups": GROUPS}, {"channels": CHANNELS[:1]},
                                    {"latency": {"a": {"median_ms": 2.0}, "b": {"median_ms": 1.0}}},
                                    {"summary": ["line one", "line two"]}])
def test_any_subset_of_sections_renders(subset, tmp_path):
    """Each of prune/fold/validate/profile writes only the sections it has."""
    path = write_report(tmp_path / "r.html", subset)
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert text.count("<section>") == len(subset)


def test_sections_of_another_shape_fall_back_to_the_generic_view():
    text = render({"groups": {"total": 14, "pruned": 12}, "channels": "n/a", "validation": {"passed": True}}, "html")
    assert "<h2>Groups</h2><table>" in text and "<td class=\"t\">total</td><td>14</td>" in text
    assert "<h2>Channels</h2>" in text and "<svg" not in text
    assert "<h2>Validation</h2><table>" in text


def test_latency_bars_are_scaled_to_the_slowest(tmp_path):
    text = render({"latency": {"a": {"median_ms": 2.0}, "b": {"median_ms": 1.0}}}, "html")
    widths = [float(r["width"]) for r in Page(text).find("rect", "median")]
    assert widths == [PLOT_WIDTH, PLOT_WIDTH / 2]


def test_json_report_holds_the_result_dicts(sections, tmp_path):
    path = write_report(tmp_path / "r.json", sections)
    data = json.loads(path.read_text())
    assert data["validation"] == json.loads(json.dumps(sections["validation"].to_dict()))
    assert data["profile"]["total_macs"] == sections["profile"].total_macs
    assert data["channels"] == CHANNELS and data["title"] == "resnet <test> report"


def test_json_conversion_of_numpy_and_non_finite_values():
    data = json.loads(render({"x": {"a": np.float32(1.5), "b": np.arange(3), "c": float("inf"), "d": (1, 2)}}, "json"))
    assert data == {"x": {"a": 1.5, "b": [0, 1, 2], "c": "inf", "d": [1, 2]}}


def test_bad_report_paths(tmp_path):
    with pytest.raises(UsageError, match="must end in .json or .html"):
        write_report(tmp_path / "r.txt", {})
    with pytest.raises(UsageError, match="does not exist"):
        write_report(tmp_path / "missing" / "r.html", {})
    (tmp_path / "d.html").mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        write_report(tmp_path / "d.html", {})
