"""The picture of a prune report in the README: prune a real model with its report, screenshot it.

    python benchmarks/make_report_picture.py                      # -> docs/images/prune-report.png
    python benchmarks/make_report_picture.py --model M --out P --height 1400

Runs ``graphprune prune ../shared/models/ultraface-slim-320.onnx --ratio 0.2 --report r.html`` in
a temporary directory and lays the page out in headless Chromium (Debian package ``chromium``),
with background networking off and a throw-away profile.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT.parent / "shared" / "models" / "ultraface-slim-320.onnx"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "images" / "prune-report.png"))
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--height", type=int, default=1300)
    args = parser.parse_args(argv)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("headless Chromium is needed (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report = work / "prune.html"
        subprocess.run([sys.executable, "-m", "graphprune", "prune", args.model, "-o", str(work / "slim.onnx"),
                        "--ratio", "0.2", "--report", str(report)], check=True, stdout=subprocess.DEVNULL)
        home = work / "home"
        env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
        subprocess.run([browser, *FLAGS, f"--user-data-dir={home / 'profile'}",
                        f"--window-size={args.width},{args.height}", f"--screenshot={Path(args.out).resolve()}",
                        report.resolve().as_uri()], check=True, capture_output=True, env=env, timeout=120)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
