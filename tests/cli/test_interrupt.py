"""Ctrl-C: exit 130 at once, even while onnxruntime work runs on one of graphprune's worker threads."""
from __future__ import annotations

import subprocess
import sys
import time

import onnx

from tests.helpers.models import small_cnn

# the command is interrupted while a worker thread (named as graphprune names them) is still busy
# for two minutes: Python would wait for it at exit
SCRIPT = """
import sys, threading
import graphprune.api
from graphprune import cli

def interrupted(model, **options):
    threading.Thread(target=threading.Event().wait, args=(120,), name="graphprune-session_0").start()
    raise KeyboardInterrupt

graphprune.api.prune = interrupted
sys.argv = ["graphprune", "prune", sys.argv[1], "-o", sys.argv[2], "--ratio", "0.5"]
print("started", flush=True)
cli.run()
"""


def test_an_interrupted_prune_exits_130_without_waiting_for_a_busy_worker(tmp_path):
    model, out = tmp_path / "m.onnx", tmp_path / "slim.onnx"
    onnx.save(small_cnn(), model)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(model), str(out)], capture_output=True, text=True,
                          timeout=90)
    assert done.returncode == 130
    assert done.stdout == "started\n" and done.stderr.strip() == "graphprune: interrupted"
    assert time.monotonic() - start < 60   # not the worker's 120 s
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
