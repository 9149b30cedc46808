"""``graphprune profile``: tables, --json, --compare/--bench, --per-node, --report, errors."""
from __future__ import annotations

import json

import pytest

from graphprune.cli import main
from tests.helpers.models import save, small_cnn


@pytest.fixture
def paths(tmp_path):
    return save(small_cnn(width=8), tmp_path / "big.onnx"), save(small_cnn(width=4), tmp_path / "small.onnx")


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_profile_table(paths, capsys):
    code, out, err = _run(capsys, "profile", paths[0])
    lines = out.splitlines()
    assert code == 0 and err == ""
    assert lines[0].startswith("big.onnx: 314 params, 62k MACs, activations ")
    assert lines[1].split() == ["op_type", "nodes", "params", "MACs", "MACs", "%", "activations"]
    assert lines[3].split()[:2] == ["Conv", "1"]


def test_json_matches_the_api(paths, capsys):
    code, out, _ = _run(capsys, "profile", paths[0], "--json", "--input-shape", "x:2x3x16x16")
    data = json.loads(out)
    assert code == 0 and data["input_shapes"] == {"x": [2, 3, 16, 16]}
    assert data["total_macs"] == 2 * 62042 and "nodes" not in data
    code, out, _ = _run(capsys, "profile", paths[0], "--json", "--per-node")
    assert [n["name"] for n in json.loads(out)["nodes"]] == ["conv", "relu", "pool", "gap", "flatten", "fc"]


def test_compare_with_bench_in_one_run(paths, capsys, tmp_path):
    report = tmp_path / "p.json"
    code, out, _ = _run(capsys, "profile", paths[0], "--compare", paths[1], "--bench", "--runs", "3",
                        "--threads", "1", "--warmup", "0", "--report", str(report))
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == ["metric", "big.onnx", "small.onnx", "ratio"]
    assert any(ln.startswith("latency median (ms)") for ln in lines)
    assert any(ln.startswith("MAC ratio ") and "(3 interleaved runs, 1 thread(s))" in ln for ln in lines)
    data = json.loads(report.read_text())["profile"]
    assert data["latency"]["runs"] == 3 and data["compare"]["latency"]["runs"] == 3
    assert data["mac_ratio"] == pytest.approx(data["compare"]["total_macs"] / data["total_macs"])


def test_html_report(paths, capsys, tmp_path):
    code, _, _ = _run(capsys, "profile", paths[0], "--compare", paths[1], "--report", str(tmp_path / "p.html"))
    html = (tmp_path / "p.html").read_text()
    assert code == 0 and html.startswith("<!DOCTYPE html>") and "MACs per op type" in html


@pytest.mark.parametrize("argv,code,message", [
    (["--runs", "5"], 2, "--runs only apply with --bench"),
    (["--bench", "--runs", "0"], 2, "--runs must be at least 1"),
    (["--input-shape", "x:1x3"], 2, "input 'x' has rank 4"),
    (["--compare", "missing.onnx"], 3, "missing.onnx: no such file"),
    (["--report", "p.csv"], 2, "the file name must end in .json or .html"),
])
def test_errors_are_one_line(paths, capsys, argv, code, message):
    got, _, err = _run(capsys, "profile", paths[0], *argv)
    assert got == code and message in err and err.count("\n") == 1


def test_not_a_model_exits_3(tmp_path, capsys):
    (tmp_path / "junk.onnx").write_bytes(b"\x00garbage")
    code, _, err = _run(capsys, "profile", str(tmp_path / "junk.onnx"))
    assert code == 3 and "not an ONNX model" in err
