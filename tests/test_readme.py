"""The README's first commands and its Python example work as written."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers.paths import ROOT

README = (ROOT / "README.md").read_text()


def _block(lang: str, after: str) -> str:
    start = README.index(after)
    match = re.search(rf"```{lang}\n(.*?)```", README[start:], re.S)
    assert match, f"no ```{lang} block after {after!r}"
    return match.group(1)


def test_python_example_runs(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    code = _block("python", "## Python API")
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert re.search(r"^\d+ prunable groups$", out, re.M)
    assert "exactness: pruned model equals its oracle" in out
    kept = float(re.search(r"MACs kept: ([\d.]+)%", out).group(1))
    assert 40.0 < kept < 80.0


def test_first_command_prunes_the_demo(tmp_path):
    """The README's first line (after `pip install .`) on the bundled demo model."""
    first = _block("bash", "# graphprune").splitlines()[0]
    assert first.startswith("pip install . && graphprune prune models/demo.onnx -o demo-slim.onnx --ratio 0.3")
    cmd = first.split("&&", 1)[1].split()
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "graphprune", *cmd[1:]], cwd=ROOT, capture_output=True,
                          text=True, env=env)
    out_path = ROOT / "demo-slim.onnx"
    try:
        assert proc.returncode == 0, proc.stderr
        assert "exactness: pruned model equals its oracle" in proc.stdout
        assert out_path.stat().st_size < (ROOT / "models" / "demo.onnx").stat().st_size
    finally:
        out_path.unlink(missing_ok=True)


def test_ci_runs_the_readme_test_command():
    second = _block("bash", "# graphprune").splitlines()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert second in ci
    assert Path(ROOT / ".ci" / "run").stat().st_mode & 0o111
