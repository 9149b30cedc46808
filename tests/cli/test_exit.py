"""How the console entry point exits: the objects left are frozen out of the collector's last walk;
with no other thread alive, the exit handlers run, the standard streams are flushed and the process
ends without tearing its modules down; a thread Python would wait for is waited for."""
from __future__ import annotations

import subprocess
import sys

import onnx

from tests.helpers.models import small_cnn

SCRIPT = """
import atexit, gc, os, sys, threading, time
from graphprune import cli
atexit.register(lambda: os.write(1, f"frozen at exit: {gc.get_freeze_count()}".encode()))
if os.environ.get("BUSY_THREAD"):
    def late():
        time.sleep(1.0)
        open(os.environ["BUSY_THREAD"], "w").write("done")
    threading.Thread(target=late).start()
sys.argv = ["graphprune", *sys.argv[1:]]
cli.run()
"""


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_the_objects_left_at_exit_are_frozen_and_the_code_and_output_are_the_command_s(tmp_path):
    model = tmp_path / "m.onnx"
    onnx.save(small_cnn(), model)
    done = _run("prune", str(model), "-o", str(tmp_path / "slim.onnx"), "--ratio", "0.5")
    assert done.returncode == 0 and (tmp_path / "slim.onnx").exists()
    report, frozen = done.stdout.rsplit("frozen at exit: ", 1)
    assert int(frozen) > 10_000   # numpy's, onnx's and graphprune's objects, at least
    assert "exactness: pruned model equals its oracle" in report and report.rstrip().endswith(
        f"wrote {tmp_path / 'slim.onnx'}")          # everything printed reached the pipe before the exit
    missing = _run("prune", str(tmp_path / "none.onnx"), "-o", str(tmp_path / "x.onnx"), "--ratio", "0.5")
    assert missing.returncode == 3 and missing.stderr.startswith("graphprune: error:")
    assert int(missing.stdout.rsplit("frozen at exit: ", 1)[1]) > 0


def test_a_thread_python_waits_for_is_waited_for(tmp_path):
    model, marker = tmp_path / "m.onnx", tmp_path / "late.txt"
    onnx.save(small_cnn(), model)
    done = _run("inspect", str(model), BUSY_THREAD=str(marker))
    assert done.returncode == 0 and "groups" in done.stdout
    assert marker.read_text() == "done"
