"""``graphprune fold``: output, validation gate, reports, and one-line errors with exit codes."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import helper

from graphprune.cli import main
from graphprune.errors import EXIT_BAD_MODEL, EXIT_OUTPUT, EXIT_USAGE, EXIT_VALIDATION_FAILED
from graphprune.graph import edit
from graphprune.graph.model import from_proto
from graphprune.passes.fold import count_batchnorm, fold
from tests.helpers.fold import GraphBuilder


@pytest.fixture()
def model_path(tmp_path):
    """Conv -> BN -> Relu -> Concat -> BN -> Relu: one BN folds, one stays."""
    b = GraphBuilder()
    h = b.op("Relu", [b.bn(b.conv(b.input([1, 3, 6, 6]), 3, 4), 4)])
    y = b.op("Relu", [b.bn(b.op("Concat", [h, h], axis=1), 8)])
    path = tmp_path / "model.onnx"
    onnx.save(b.model(y), str(path))
    return path


def _batchnorms(path) -> int:
    return count_batchnorm(from_proto(onnx.load(str(path))))


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_fold_writes_a_validated_model(model_path, tmp_path, capsys):
    out_path = tmp_path / "folded.onnx"
    code, out, err = _run(capsys, "fold", model_path, "-o", out_path)
    assert code == 0 and err == ""
    assert _batchnorms(out_path) == 1
    lines = out.splitlines()
    assert lines[0] == "folded 1 of 2 BatchNormalization nodes (1 into the node before, 0 into the nodes after); 1 left"
    assert lines[1] == "not folded (1):" and "Concat" in lines[2]
    assert any(line.startswith("validation PASSED") for line in lines) and lines[-1] == f"wrote {out_path}"


def test_json_and_report(model_path, tmp_path, capsys):
    report = tmp_path / "fold.json"
    code, out, _ = _run(capsys, "fold", model_path, "-o", tmp_path / "f.onnx", "--json", "--report", report)
    data = json.loads(out)
    assert code == 0 and data["fold"]["batchnorm"] == {"before": 2, "folded": 1, "after": 1}
    assert data["validation"]["passed"] is True and data["output"] == str(tmp_path / "f.onnx")
    saved = json.loads(report.read_text())
    assert saved["kept_batchnorm"] == data["fold"]["skipped"] and saved["folded"] == data["fold"]["folded"]
    assert saved["fold"]["batchnorm"] == data["fold"]["batchnorm"] and saved["validation"]["passed"] is True


def test_html_report_lists_kept_batchnorms(model_path, tmp_path, capsys):
    report = tmp_path / "fold.html"
    code, _, _ = _run(capsys, "fold", model_path, "-o", tmp_path / "f.onnx", "--report", report)
    page = report.read_text()
    assert code == 0 and page.startswith("<!DOCTYPE html>")
    assert "Kept batchnorm" in page and "Concat" in page and "validation" in page.lower()


def test_no_validate(model_path, tmp_path, capsys):
    code, out, _ = _run(capsys, "fold", model_path, "-o", tmp_path / "f.onnx", "--no-validate", "--json")
    assert code == 0 and json.loads(out)["validation"] is None


def _corrupting_fold(model, **kwargs):
    """fold, then perturb one weight: what a buggy fold would produce."""
    result = fold(model, **kwargs)
    weight = next(v for v in result.graph.graph.initializers.values() if len(v.shape) == 4)
    edit.write_initializer(weight, weight.const_value.numpy() * 1.5)
    return result


def test_mismatch_exits_1_and_writes_nothing(model_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("graphprune.passes.fold.fold", _corrupting_fold)  # fold_cmd imports it when it runs
    out_path = tmp_path / "bad.onnx"
    code, out, err = _run(capsys, "fold", model_path, "-o", out_path)
    assert code == EXIT_VALIDATION_FAILED and not out_path.exists()
    assert err.count("\n") == 1 and err.startswith("graphprune: error: validation failed")
    assert err.rstrip().endswith("nothing written (--force writes it anyway)")
    assert "validation FAILED" in out


def test_mismatch_with_force_writes_but_still_fails(model_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("graphprune.passes.fold.fold", _corrupting_fold)  # fold_cmd imports it when it runs
    out_path = tmp_path / "bad.onnx"
    code, _, err = _run(capsys, "fold", model_path, "-o", out_path, "--force")
    assert code == EXIT_VALIDATION_FAILED and out_path.exists() and "written anyway" in err


def test_refuses_to_overwrite_the_input(model_path, capsys):
    before = model_path.read_bytes()
    code, _, err = _run(capsys, "fold", model_path, "-o", model_path)
    assert code == EXIT_OUTPUT and model_path.read_bytes() == before
    assert "refusing to overwrite" in err and err.count("\n") == 1
    code, _, _ = _run(capsys, "fold", model_path, "-o", model_path, "--force")
    assert code == 0 and _batchnorms(model_path) == 1


def _invalid_graph(path):
    node = helper.make_node("Relu", ["missing"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(path))


@pytest.mark.parametrize("kind,message", [("missing", "no such file"), ("garbage", "not an ONNX model"),
                                          ("invalid", "not a valid ONNX model")])
def test_bad_input_is_one_line_exit_3(tmp_path, capsys, kind, message):
    path = tmp_path / "in.onnx"
    if kind == "garbage":
        path.write_bytes(np.arange(100, dtype=np.uint8).tobytes())
    elif kind == "invalid":
        _invalid_graph(path)
    code, out, err = _run(capsys, "fold", path, "-o", tmp_path / "out.onnx")
    assert code == EXIT_BAD_MODEL and out == "" and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out.onnx").exists()


def test_bad_report_suffix_is_a_usage_error_before_any_work(model_path, tmp_path, capsys):
    code, out, err = _run(capsys, "fold", model_path, "-o", tmp_path / "f.onnx", "--report", tmp_path / "r.txt")
    assert code == EXIT_USAGE and out == "" and ".json or .html" in err
    assert not (tmp_path / "f.onnx").exists()


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fold", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    assert "graphprune fold model.onnx -o folded.onnx" in out and "--no-validate" in out and "--force" in out
