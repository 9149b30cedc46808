"""``--max-drift`` from the command line: a search writes, a miss exits 1 and writes nothing."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from graphprune.cli import main
from tests.helpers.budget import DEAD, calibration_arrays, planted_chain


@pytest.fixture()
def files(tmp_path):
    onnx.save(planted_chain(), tmp_path / "m.onnx")
    np.savez(tmp_path / "calib.npz", **calibration_arrays(40))
    return tmp_path


def _prune(files, *extra):
    return main(["prune", str(files / "m.onnx"), "-o", str(files / "slim.onnx"), "--calib", str(files / "calib.npz"),
                 "--jobs", "1", *extra])


def test_a_search_within_the_budget_writes_the_model(files, capsys):
    assert _prune(files, "--max-drift", "0.01", "--metric", "rel", "--report", str(files / "r.json")) == 0
    out = capsys.readouterr().out
    assert "drift budget: met: rel drift" in out and f"wrote {files / 'slim.onnx'}" in out
    slim = onnx.load(files / "slim.onnx")
    widths = {i.name: list(i.dims) for i in slim.graph.initializer}
    assert widths["w0"] == [16, 16] and widths["w1"] == [32, 16] and widths["w2"] == [16, 32]
    report = json.loads((files / "r.json").read_text())
    assert report["details"]["gate"]["passed"] is True
    rows = report["budget search"]
    assert [r["group"] for r in rows] == [0, 2] and rows[0]["removed"] == len(DEAD)


def test_a_budget_nothing_meets_exits_1_and_writes_nothing(files, capsys):
    assert _prune(files, "--max-drift", "1e-9", "--metric", "rel") == 1
    err = capsys.readouterr().err
    assert "no pruning meets --max-drift 1e-09" in err and "fc1 (Gemm)" in err and "nothing was written" in err
    assert not (files / "slim.onnx").exists()


def test_the_gate_on_a_ratio_exits_1_writes_nothing_and_reports_the_miss(files, capsys):
    code = _prune(files, "--ratio", "0.5", "--max-drift", "0.01", "--metric", "rel", "--report", str(files / "r.json"))
    captured = capsys.readouterr()
    assert code == 1 and not (files / "slim.onnx").exists()
    assert "drift budget: MISSED by" in captured.out and "wrote" not in captured.out
    assert "MISSED by" in captured.err and "nothing was written" in captured.err
    gate = json.loads((files / "r.json").read_text())["details"]["gate"]
    assert gate["passed"] is False and gate["missed_by"] == pytest.approx(gate["drift"] - 0.01)
    assert gate["samples"] == 10


def test_plan_with_a_budget_records_the_search(files, capsys):
    code = main(["plan", str(files / "m.onnx"), "-o", str(files / "plan.json"), "--calib", str(files / "calib.npz"),
                 "--max-drift", "0.01", "--metric", "rel", "--jobs", "1"])
    assert code == 0
    plan = json.loads((files / "plan.json").read_text())
    assert plan["options"]["how"].startswith("budget search: rel drift <= 0.01")
    assert plan["options"]["search"] and all("drift" in row for row in plan["options"]["search"])
    removed = {g["id"]: g.get("removed_slots") for g in plan["groups"] if g.get("status") == "pruned"}
    assert sorted(removed) == [0, 2]
    assert "drift budget: met" in capsys.readouterr().out


def test_usage_errors_before_any_work(files, capsys):
    code = main(["prune", str(files / "m.onnx"), "-o", str(files / "slim.onnx"), "--max-drift", "0.01"])
    assert code == 2 and "--calib" in capsys.readouterr().err
    code = main(["prune", str(files / "m.onnx"), "-o", str(files / "slim.onnx"), "--max-drift", "-2"])
    assert code == 2 and "--max-drift" in capsys.readouterr().err


def test_sensitivity_keeps_its_table_and_takes_a_metric(files, capsys):
    assert main(["sensitivity", str(files / "m.onnx"), "--calib", str(files / "calib.npz"), "--ratios", "0.5",
                 "--metric", "cosine", "--jobs", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["metric"] == "1 - mean cosine similarity of the worst output"
    assert [r["group"] for r in data["groups"]] == [0, 1, 2] and data["samples"] == 8
    drift = {r["group"]: r["drift"][0] for r in data["groups"]}
    assert drift[1] > 100 * max(drift[0], drift[2])  # half of the live layer vs. the dead halves
    assert main(["sensitivity", str(files / "m.onnx"), "--ratios", "0.25,0.5", "--jobs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:4] == ["group", "slots", "@0.25", "@0.5"] and lines[-1].startswith("most sensitive")


def test_apply_gates_a_plan_on_data(files, capsys):
    plan = files / "plan.json"
    assert main(["plan", str(files / "m.onnx"), "-o", str(plan), "--ratio", "0.5"]) == 0
    np.savez(files / "check.npz", **calibration_arrays(6, seed=7))
    base = ["apply", str(files / "m.onnx"), str(plan), "--data", str(files / "check.npz"), "--metric", "rel"]
    assert main(base + ["-o", str(files / "a.onnx"), "--max-drift", "0.01"]) == 1
    out = capsys.readouterr().out
    assert not (files / "a.onnx").exists() and "drift budget: MISSED by" in out and "on 6 samples of" in out
    assert main(base + ["-o", str(files / "b.onnx"), "--max-drift", "10"]) == 0
    assert (files / "b.onnx").exists() and "drift budget: met" in capsys.readouterr().out
