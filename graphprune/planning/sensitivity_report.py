"""Moved to :mod:`graphprune.report.sensitivity`: the HTML report draws the ``sensitivity`` section
itself. This name stays until its two callers (``cli/sensitivity_cmd.py``, ``tests/test_sensitivity.py``)
stop importing it."""
from __future__ import annotations

from ..report.sensitivity import chart, render_sensitivity

__all__ = ["chart", "render_sensitivity", "register"]


def register() -> None:
    """Nothing left to do: ``sensitivity`` is a built-in section of :mod:`graphprune.report.html`."""
