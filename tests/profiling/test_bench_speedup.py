"""benchmarks/bench_speedup.py: its table, its usage errors (structure, not speed)."""
from __future__ import annotations

import importlib.util
import sys

from tests.helpers.paths import ROOT
from tests.helpers.models import save, small_cnn


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_speedup", ROOT / "benchmarks" / "bench_speedup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_speedup_prints_a_markdown_table(tmp_path, capsys):
    big = save(small_cnn(width=8), tmp_path / "big.onnx")
    small = save(small_cnn(width=4), tmp_path / "small.onnx")
    code = _bench_module().main([big, "--pruned", small, "--runs", "2", "--warmup", "0"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == "| model | params | MACs | MAC ratio | ORT median ms (p10-p90) | speedup |"
    cells = [row.strip("|").split("|") for row in out[2:4]]
    assert [c[0].strip() for c in cells] == ["big.onnx", "small.onnx"]
    assert cells[0][3].strip() == "1" and cells[0][5].strip() == "1.00x"
    from graphprune.profiling import profile

    ratio = profile(small).total_macs / profile(big).total_macs
    assert cells[1][3].strip() == f"{ratio:.3f}" and cells[1][5].strip().endswith("x")
    assert out[-1].startswith("command: python ") and "--pruned" in out[-1]


def test_bench_speedup_needs_exactly_one_pruned_source(tmp_path, capsys):
    big = save(small_cnn(), tmp_path / "big.onnx")
    assert _bench_module().main([big]) == 2
    assert "give exactly one of --pruned PATH or --ratio R" in capsys.readouterr().err


def test_bench_speedup_ratio_without_the_api_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphprune.api", None)          # as if graphprune.api did not exist
    big = save(small_cnn(), tmp_path / "big.onnx")
    assert _bench_module().main([big, "--ratio", "0.5"]) == 2
    assert "--ratio needs graphprune.api.prune" in capsys.readouterr().err
