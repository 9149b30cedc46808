"""The console entry point leaves the interpreter's objects to reference counting at exit: they are
frozen out of the collector's last walk, and the exit code is the command's."""
from __future__ import annotations

import subprocess
import sys

import onnx

from tests.helpers.models import small_cnn

SCRIPT = """
import atexit, gc, os, sys
from graphprune import cli
atexit.register(lambda: os.write(1, f"frozen at exit: {gc.get_freeze_count()}".encode()))
sys.argv = ["graphprune", *sys.argv[1:]]
cli.run()
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120)


def test_the_objects_left_at_exit_are_frozen_and_the_code_is_the_command_s(tmp_path):
    model = tmp_path / "m.onnx"
    onnx.save(small_cnn(), model)
    done = _run("prune", str(model), "-o", str(tmp_path / "slim.onnx"), "--ratio", "0.5")
    assert done.returncode == 0 and (tmp_path / "slim.onnx").exists()
    frozen = int(done.stdout.rsplit("frozen at exit: ", 1)[1])
    assert frozen > 10_000   # numpy's, onnx's and graphprune's objects, at least
    missing = _run("prune", str(tmp_path / "none.onnx"), "-o", str(tmp_path / "x.onnx"), "--ratio", "0.5")
    assert missing.returncode == 3 and missing.stderr.startswith("graphprune: error:")
    assert int(missing.stdout.rsplit("frozen at exit: ", 1)[1]) > 0
