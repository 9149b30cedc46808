"""The sensitivity section of HTML reports: one line per group, the numbers of the scan, no script."""
from __future__ import annotations

from graphprune.api import sensitivity
from graphprune.report import render
from models.zoo import build


def test_html_section_plots_one_line_per_group():
    result = sensitivity(build("resnet18"), ratios=(0.2, 0.6), samples=2)
    page = render({"title": "s", "sensitivity": result.to_dict()}, "html")
    assert page.count('class="group"') == len(result.rows)
    assert 'id="chart-sensitivity"' in page and "<script" not in page
    first = result.rows[0]
    assert f'data-group="{first["group"]}"' in page and f"{first['drift'][1]:.4f}" in page
