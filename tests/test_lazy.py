"""Modules imported on first use: what a command imports, and the deferred stand-in for sympy.

Each check runs in a fresh interpreter, since what is imported depends on everything the process
imported before.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.helpers.paths import ROOT

DEMO = ROOT / "models" / "demo.onnx"

#: modules a command imports only when it needs them (sympy: only for symbolic-dimension arithmetic)
HEAVY = ("sympy", "onnxruntime", "scipy", "tqdm", "PIL", "tokenizers", "ray", "graphprune.report.html",
         "graphprune.report.svg")


def _run(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _imported_by(argv: list[str]) -> dict:
    return _run(f"""
        import json, sys
        from graphprune.cli import main
        rc = main({argv!r})
        real = [m for m in {HEAVY!r} if m in sys.modules and type(sys.modules[m]).__name__ != "_Deferred"]
        print(json.dumps({{"rc": rc, "real": real}}))
    """)


def test_prune_without_checks_imports_no_heavy_module(tmp_path):
    out = _imported_by(["prune", str(DEMO), "-o", str(tmp_path / "slim.onnx"), "--ratio", "0.5", "--no-validate"])
    assert out == {"rc": 0, "real": []}
    assert (tmp_path / "slim.onnx").stat().st_size > 0


def test_inspect_imports_no_heavy_module():
    assert _imported_by(["inspect", str(DEMO)]) == {"rc": 0, "real": []}


def test_the_default_checks_import_onnxruntime_and_nothing_else_heavy(tmp_path):
    out = _imported_by(["prune", str(DEMO), "-o", str(tmp_path / "slim.onnx"), "--ratio", "0.5"])
    assert out == {"rc": 0, "real": ["onnxruntime"]}


def test_sympy_is_imported_when_a_symbolic_dimension_computes():
    out = _run("""
        import json, sys
        import graphprune, onnx_ir
        before = type(sys.modules["sympy"]).__name__
        total = str(onnx_ir.SymbolicDim("N") * 2 + 1)
        import sympy, sympy.abc
        print(json.dumps({"before": before, "after": type(sys.modules["sympy"]).__name__, "total": total,
                          "abc": str(sympy.abc.x + sympy.Symbol("y")), "real": sympy.Symbol is sys.modules["sympy"].Symbol}))
    """)
    assert out == {"before": "_Deferred", "after": "module", "total": "2*N + 1", "abc": "x + y", "real": True}


def test_nothing_is_deferred_when_sympy_or_onnx_ir_came_first():
    out = _run("""
        import json, sys
        import sympy
        import graphprune
        from graphprune.lazy import defer_imports
        print(json.dumps({"sympy": type(sys.modules["sympy"]).__name__, "again": defer_imports()}))
    """)
    assert out["sympy"] == "module" and out["again"] == []
    out = _run("""
        import json, sys
        import onnx_ir
        from graphprune.lazy import defer_imports
        print(json.dumps({"deferred": defer_imports(), "sympy": type(sys.modules["sympy"]).__name__}))
    """)
    assert out == {"deferred": [], "sympy": "module"}


def test_prune_imports_networkx_on_a_thread_while_it_reads_the_model(tmp_path):
    """The analysis imports networkx where it builds the groups; ``prune`` starts that import on a
    thread before it reads the model, so the two overlap."""
    out = _run(f"""
        import json, sys, threading
        import graphprune.api, graphprune.pipeline, graphprune.analysis.builder
        before = "networkx" in sys.modules
        import graphprune.lazy as lazy
        threads = []
        real = lazy.import_beside
        def recording(*names):
            thread = real(*names)
            threads.append((names, thread.name, thread.daemon, thread is not threading.current_thread()))
            return thread
        lazy.import_beside = recording
        from graphprune.cli import main
        rc = main(["prune", {str(DEMO)!r}, "-o", {str(tmp_path / "slim.onnx")!r}, "--ratio", "0.5", "--no-validate"])
        print(json.dumps({{"before": before, "rc": rc, "threads": threads, "after": "networkx" in sys.modules}}))
    """)
    assert out == {"before": False, "rc": 0, "threads": [[["networkx"], "graphprune-imports", True, True]],
                   "after": True}


def test_import_beside_leaves_a_failing_import_to_the_caller():
    out = _run("""
        import json, sys
        from graphprune.lazy import import_beside
        thread = import_beside("graphprune_no_such_module", "json")
        thread.join(30)
        print(json.dumps({"alive": thread.is_alive(), "missing": "graphprune_no_such_module" in sys.modules}))
    """)
    assert out == {"alive": False, "missing": False}
