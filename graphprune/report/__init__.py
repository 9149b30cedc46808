"""Reports: every result as JSON data, or as one self-contained HTML page.

    from graphprune.report import write_report
    write_report("out.html", {"title": "resnet50 @ 0.5", "validation": report, "profile": prof,
                              "channels": [{"node": "conv1", "before": 64, "after": 32}],
                              "groups": [{"group": 0, "size": 64, "barriers": ["graph output"]}]})

Any subset of sections works; known ones are ``summary`` (lines), ``validation``
(:class:`~graphprune.validation.ValidationReport` or its dict), ``profile``
(:class:`~graphprune.profiling.ModelProfile` or its dict), ``latency`` (stats or name -> stats),
``channels`` (list of {node, before, after}), ``groups`` (list of {group, size, barriers}) and
``sensitivity`` (:class:`~graphprune.planning.sensitivity.SensitivityResult` or its dict); anything
else is shown generically. Objects with ``to_dict()`` are converted first. Long lines and names
wrap, and chart labels are placed so that none is cut or overlaps another (``tests/report`` checks
every page kind in headless Chromium).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import OutputError, UsageError
from .jsonable import to_jsonable

SUFFIXES = (".json", ".html", ".htm")


def check_report_path(path: str | os.PathLike) -> Path:
    """Fail early (before any work) on a report path with an unknown suffix or a missing directory."""
    out = Path(path)
    if out.suffix.lower() not in SUFFIXES:
        raise UsageError(f"--report {out}: the file name must end in .json or .html")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--report {out}: directory {parent} does not exist (create it first)")
    if out.is_dir():
        raise OutputError(f"--report {out}: is a directory")
    return out


def render(sections: dict, fmt: str) -> str:
    data = to_jsonable(sections)
    if not isinstance(data, dict):
        raise UsageError("report sections must be a dict of section name -> data")
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False) + "\n"
    from .html import render_html

    return render_html(data)


def write_report(path: str | os.PathLike, sections: dict) -> Path:
    """Write ``sections`` as JSON (``.json``) or a self-contained HTML page (``.html``/``.htm``), atomically."""
    out = check_report_path(path)
    text = render(sections, "json" if out.suffix.lower() == ".json" else "html")
    parent = out.parent if str(out.parent) else Path(".")
    tmp = parent / f".{out.name}.{os.getpid()}.tmp"  # same directory: the rename is atomic
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"--report {out}: cannot write ({exc.strerror or exc})") from exc
    return out


__all__ = ["write_report", "render", "to_jsonable", "check_report_path"]
