"""Every script in benchmarks/ imports and answers --help (a helper moved between benchmark modules
once broke bench_budget and bench_minilm without any test noticing)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.paths import ROOT

SCRIPTS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if p.name != "quality_data.py")


def test_the_benchmark_folder_has_its_scripts():
    names = {p.name for p in SCRIPTS}
    assert {"bench_budget.py", "bench_quality.py", "bench_minilm.py", "bench_pipeline.py", "bench_cluster.py"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_answers_help(script, tmp_path):
    proc = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage:") and "Traceback" not in proc.stderr
