"""Lay out a report page in headless Chromium and read back what `render_check.js` measured.

Chromium is the Debian package `chromium` (`.ci/run` installs it). Without it the rendering tests
fail when the environment variable CI is set (CI must have it) and are skipped, naming what is
missing, otherwise. Chromium opens local files only, with background networking off, in a throw-away
profile and home directory.
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHECK_SCRIPT = (Path(__file__).parent / "render_check.js").read_text()
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")
RESULT = re.compile(r'<pre id="render-check">(.*?)</pre>', re.S)


def chromium() -> str:
    """The Chromium executable; fails the test when there is none."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = ("headless Chromium is needed to lay out the HTML reports and none is on PATH "
               "(Debian: apt-get install -y chromium; .ci/run installs it)")
    pytest.fail(message, pytrace=False)


def _run(args: list[str], work: Path) -> str:
    """Chromium with its profile, home and caches inside ``work`` (it writes crash-report settings
    to ~/.config/chromium even with --user-data-dir, unless HOME and XDG_CONFIG_HOME point elsewhere)."""
    home = work / "chromium-home"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_CACHE_HOME": str(home / "cache")}
    command = [chromium(), *FLAGS, f"--user-data-dir={home / 'profile'}", *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout


def check_layout(page: Path, work: Path, width: int = 1000) -> dict:
    """``{"problems": [...], "counts": {...}}`` of ``page`` laid out in a window ``width`` px wide."""
    text = page.read_text(encoding="utf-8")
    assert "</body>" in text, f"{page} has no </body>"
    probe = work / f"{page.stem}.probe.html"
    probe.write_text(text.replace("</body>", f"<script>{CHECK_SCRIPT}</script></body>"), encoding="utf-8")
    dom = _run([f"--window-size={width},900", "--dump-dom", probe.resolve().as_uri()], work)
    found = RESULT.search(dom)
    assert found, f"render_check.js left no result in the page (chromium output starts {dom[:300]!r})"
    return json.loads(html.unescape(found.group(1)))


def screenshot(page: Path, shot: Path, work: Path, width: int = 1000, height: int = 1400) -> Path:
    """A PNG of the top of ``page`` (to look at while changing the report's layout)."""
    _run([f"--window-size={width},{height}", f"--screenshot={shot}", page.resolve().as_uri()], work)
    return shot
