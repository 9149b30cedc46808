"""Chart geometry without a browser: label spreading, the viewBox, and the text-width bound it rests on."""
from __future__ import annotations

import re
import string

import pytest

from graphprune.report import render
from graphprune.report.sensitivity import LABEL_GAP, LABELLED, LEADER, chart, spread
from graphprune.report.html import CSS
from graphprune.report.svg import FONT_SIZE, LABEL_CHARS, VALUE_FONT_SIZE, paired_bars, short_label, text_width


@pytest.mark.parametrize(("wanted", "placed"), [
    ([10.0, 50.0], [10.0, 50.0]),                  # far apart: not moved
    ([10.0, 10.0, 10.0], [10.0, 24.0, 38.0]),      # tied: stacked one gap apart, downwards
    ([95.0, 96.0, 99.0], [72.0, 86.0, 100.0]),     # at the bottom: pulled back up inside [0, 100]
    ([-5.0, 0.0], [0.0, 14.0]),                    # above the top: pushed inside
])
def test_spread_keeps_labels_apart_and_inside(wanted, placed):
    assert spread(wanted, 0.0, 100.0, 14.0) == placed


def _sensitivity(groups: dict[int, float]) -> dict:
    return {"ratios": [0.2, 0.5, 0.8], "groups": [{"group": g, "slots": 8, "drift": [d / 4, d / 2, d], "first": f"w{g}"}
                                                  for g, d in groups.items()]}


def _labels(svg: str) -> list[tuple[float, float, str]]:
    return [(float(x), float(y), name) for x, y, name in
            re.findall(r'<text class="label" x="([\d.]+)" y="([\d.]+)"[^>]*>group (\d+)</text>', svg)]


def test_tied_groups_get_distinct_readable_labels():
    """Groups 11, 12, 16, 111 and 112 end at the same point: five labels, one line apart, none cut."""
    data = _sensitivity({1: 0.01, 11: 0.3, 12: 0.3, 16: 0.3, 111: 0.3, 112: 0.3, 2: 0.02})
    svg = chart(data)
    width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg).group(1))
    labels = _labels(svg)
    assert sorted(name for _, _, name in labels) == ["11", "111", "112", "12", "16"]   # the 5 largest drifts
    ys = sorted(y for _, y, _ in labels)
    assert all(b - a >= LABEL_GAP for a, b in zip(ys, ys[1:]))
    assert all(x + text_width(f"group {name}") <= width for x, _, name in labels)
    assert svg.count('class="leader"') == LABELLED - 1                               # all but one were moved


def test_labels_name_the_most_sensitive_groups_in_order():
    data = _sensitivity({g: 0.01 * g for g in range(20)})
    labels = sorted(_labels(chart(data)), key=lambda label: label[1])             # top of the chart first
    assert [name for _, _, name in labels] == ["19", "18", "17", "16", "15"]
    assert 'class="leader"' not in chart(_sensitivity({3: 0.9, 4: 0.1}))            # far apart: no leaders
    x = labels[0][0]
    assert all(label[0] == x for label in labels) and x - LEADER > 0


def test_table_marks_the_labelled_groups_with_their_colour():
    data = _sensitivity({1: 0.5, 2: 0.1})
    page = render({"sensitivity": data}, "html")
    red = re.search(r'<polyline class="group" data-group="1"[^>]*stroke="(#[0-9a-f]{6})"', page).group(1)
    assert f'<td class="t"><span class="key" style="background:{red}"></span>1</td>' in page


def test_bar_labels_keep_their_distinguishing_end():
    name = "/backbone/backbone/dark3/dark3.1/m/m.0/conv1/conv/Conv_output_0_quantized/Conv_17"
    short = short_label(name)
    assert len(short) == LABEL_CHARS and short.endswith("quantized/Conv_17") and short.startswith("/backbone")
    svg = paired_bars([(name, [4.0])], ("after",), chart="c")
    gutter = float(re.search(r'<rect class="bar after" x="([\d.]+)"', svg).group(1))
    assert gutter >= text_width(short) + 6 and f"<title>{name}</title>" in svg


def test_text_width_bounds_dejavu_sans():
    """The width estimate is an upper bound of the real advance widths of DejaVu Sans (Debian's sans-serif)."""
    from PIL import ImageFont

    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 100)
    except OSError:
        pytest.fail("font DejaVuSans.ttf not found (Debian package fonts-dejavu-core; .ci/tools installs it)",
                    pytrace=False)
    samples = [*string.printable.strip(), "group 116", "WWWMMMmmm@@%%", "Conv_83_weight[axis 0]", "\u2026x"]
    for text in samples:
        assert font.getlength(text) * FONT_SIZE / 100 <= text_width(text) + 1e-9, text


def test_width_estimates_use_the_page_font_sizes():
    assert f".chart text{{font-size:{FONT_SIZE}px" in CSS and f".chart .value{{fill:#56606e;font-size:{VALUE_FONT_SIZE}px" in CSS
