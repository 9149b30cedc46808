"""The picture of a prune report in the README: the tour's prune, with its report, screenshot.

    python benchmarks/make_report_picture.py                      # -> docs/images/prune-report.png
    python benchmarks/make_report_picture.py --out P --height 1400

In a temporary directory, writes the tour's 400 digits (``make_digits.py``) and runs
``graphprune prune ../shared/models/mnist-cntk.onnx -o mnist-slim.onnx --calib digits.npz
--max-drift 0.05 --metric top1 --report mnist-slim.html``, then lays the page out in headless
Chromium (Debian package ``chromium``), with background networking off and a throw-away profile.
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
    parser.add_argument("--model", default=str(ROOT.parent / "shared" / "models" / "mnist-cntk.onnx"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "images" / "prune-report.png"))
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--height", type=int, default=1300)
    args = parser.parse_args(argv)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("headless Chromium is needed (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report = work / "mnist-slim.html"
        shutil.copy(args.model, work / "mnist-cntk.onnx")  # the page names files as the tour does
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_digits.py"), "digits.npz", "--count", "400"],
                       check=True, stdout=subprocess.DEVNULL, cwd=work)
        subprocess.run([sys.executable, "-m", "graphprune", "prune", "mnist-cntk.onnx", "-o", "mnist-slim.onnx",
                        "--calib", "digits.npz", "--max-drift", "0.05", "--metric", "top1", "--report", report.name],
                       check=True, stdout=subprocess.DEVNULL, cwd=work)
        home = work / "home"
        env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
        subprocess.run([browser, *FLAGS, f"--user-data-dir={home / 'profile'}",
                        f"--window-size={args.width},{args.height}", f"--screenshot={Path(args.out).resolve()}",
                        report.resolve().as_uri()], check=True, capture_output=True, env=env, timeout=120)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
